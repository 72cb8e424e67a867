"""``load_config`` and ``callcenter validate`` never crash, whatever the files hold.

Property-based: hypothesis throws arbitrary bytes, YAML documents built from the config's
own vocabulary, mutated copies of the example, deep nesting, huge scalars and numbers at
the loader and the CLI. Every outcome must be a valid config or :class:`ConfigErrors`
(exit 0 or 1), each error located in a file of the directory and printable; never a
traceback, and within bounded time and memory. Runs are bounded (``max_examples``,
``deadline``) so the unit suite stays fast.

The inputs hypothesis found are pinned as plain tests below the properties.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callcenter.cli import main
from callcenter.config.errors import ConfigErrors
from callcenter.config.loader import load_config
from callcenter.config.source import load_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"

FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=10),  # generous: the machine is shared; LARGE bounds time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

#: Keys of the config's own vocabulary, so generated documents get past "unknown key".
VOCABULARY = [
    "settings", "entry_points", "caller_id_rules", "flows", "menus", "schedules", "lookups",
    "skills", "queues", "agents", "voicemail", "steps", "play", "collect", "lookup", "branch",
    "check_schedule", "transfer", "menu", "goto", "hangup", "flow", "queue", "extension",
    "external", "back", "repeat", "options", "prompts", "timeout", "max_retries", "numbers",
    "variable", "cases", "default", "schedule", "closed", "open", "holiday", "hours",
    "holidays", "special_days", "date", "until", "timezone", "source", "by", "url", "script",
    "priority", "block", "name", "mailbox", "pattern", "cause", "on_exhausted", "min_digits",
    "max_digits", "set_language", "language", "1", "*", "mon-fri", "main", "start", "sales",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(VOCABULARY),
    st.text(max_size=30),
    st.sampled_from(["08:00-20:00", "closed", "2026-12-25", "^[0-9]{6}$", "x{99999999999}",
                     "Europe/Paris", "../../etc/passwd", "\\ud800", "yes", "on", "1e400"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8)),
                        children, max_size=5),
    ),
    max_leaves=40,
)


def as_yaml(document: object) -> str:
    """A document as YAML flow text (JSON is YAML)."""
    return json.dumps(document, ensure_ascii=False, allow_nan=True).replace("NaN", ".nan") \
        .replace("-Infinity", "-.inf").replace("Infinity", ".inf")


@contextmanager
def config_dir(files: dict[str, bytes]) -> Iterator[Path]:
    """A fresh config directory per example (pytest's tmp_path is per test, not per example)."""
    directory = Path(tempfile.mkdtemp(prefix="cc-fuzz-"))
    try:
        for name, raw in files.items():
            (directory / name).write_bytes(raw)
        yield directory
    finally:
        shutil.rmtree(directory)


def assert_loads_or_reports(directory: Path) -> None:
    """A config, or errors that each name a file of ``directory`` and print as text."""
    try:
        load_config(directory)
    except ConfigErrors as errors:
        for error in errors.errors:
            assert error.file.startswith(str(directory)), error
            assert error.line >= 0 and error.column >= 0, error
            assert error.message, error
            str(error).encode("utf-8")  # a lone surrogate here would crash any print


def assert_cli_clean(directory: Path) -> None:
    """``callcenter validate`` exits 0 or 1 with a message and no traceback."""
    result = CliRunner().invoke(main, ["validate", str(directory)], catch_exceptions=True)
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.strip()
    if result.exit_code == 1:  # every line a located error, then the count
        *errors, summary = result.stderr.strip().splitlines()
        assert errors and summary.endswith(f" in {directory}") and "problem" in summary
        assert all(line.startswith(f"{directory}") for line in errors), result.stderr


@contextmanager
def bounded(seconds: float, megabytes: int) -> Iterator[None]:
    """Fail when the block takes longer than ``seconds`` or allocates past ``megabytes``."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < megabytes * 1024 * 1024, f"peak {peak / 2**20:.0f} MB"


# -- properties -----------------------------------------------------------------------------

@FUZZ
@given(raw=st.binary(max_size=300))
@example(raw=b"flows: \xff\n")
@example(raw=b"\x00")
@example(raw=b'flows:\n  "\\ud800": {steps: [{hangup: true}]}\n')
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with config_dir({"a.yaml": raw}) as directory:
        assert_loads_or_reports(directory)


@FUZZ
@given(document=documents)
@example(document={"flows": {"a": {"steps": [{"hangup": {"cause": 10**5000}}]}}})
@example(document={"flows": {"a": {"steps": [{"collect": {
    "variable": "A", "prompts": "a", "pattern": "1{99999999999}"}}]}}})
def test_yaml_documents_never_crash(document: object) -> None:
    text = as_yaml(document) if not _has_huge_int(document) else _huge_int_yaml(document)
    with config_dir({"a.yaml": text.encode("utf-8", "surrogatepass")}) as directory:
        assert_loads_or_reports(directory)


@FUZZ
@given(data=st.data())
def test_mutated_example_never_crashes(data: st.DataObject) -> None:
    """The example with one file spliced: what an admin's half-finished edit looks like."""
    files = {path.name: path.read_bytes() for path in EXAMPLE.glob("*.yaml")}
    name = data.draw(st.sampled_from(sorted(files)))
    raw = files[name]
    start = data.draw(st.integers(0, len(raw)))
    end = data.draw(st.integers(start, min(len(raw), start + 40)))
    insert = data.draw(st.one_of(
        st.binary(max_size=20),
        st.sampled_from([b"", b"  ", b"\n", b"- ", b": ", b"{", b"]", b"&a ", b"*a", b"<<: *a",
                         b"!!python/object:os.system", b"yes", b"true", b"9" * 5000]),
    ))
    files[name] = raw[:start] + insert + raw[end:]
    with config_dir(files) as directory:
        assert_loads_or_reports(directory)


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@FUZZ
@given(data=st.data())
def test_example_with_values_replaced_never_crashes(data: st.DataObject) -> None:
    """Valid files with a few values replaced, removed or added: the path where the rest
    of an invalid config is still cross-checked (config/partial.py)."""
    files = {path.name: load_file(path)[0] for path in EXAMPLE.glob("*.yaml")}
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(files)))
        paths = list(_paths(files[name]))
        if not paths:  # an earlier round emptied this file: nothing left to replace
            continue
        path = data.draw(st.sampled_from(paths))
        parent = files[name]
        for segment in path[:-1]:
            parent = parent[segment]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(documents)
    raw = {name: as_yaml(doc).encode("utf-8", "surrogatepass") for name, doc in files.items()}
    with config_dir(raw) as directory:
        assert_loads_or_reports(directory)


@settings(FUZZ, max_examples=15)
@given(document=documents)
def test_cli_validate_never_prints_a_traceback(document: object) -> None:
    with config_dir({"a.yaml": as_yaml(document).encode("utf-8", "surrogatepass")}) as directory:
        assert_cli_clean(directory)


# -- the inputs found, pinned --------------------------------------------------------------

def _has_huge_int(document: object) -> bool:
    if isinstance(document, int) and not isinstance(document, bool):
        return abs(document) > 10**100
    if isinstance(document, dict):
        return any(_has_huge_int(v) for v in document.values())
    if isinstance(document, list):
        return any(_has_huge_int(v) for v in document)
    return False


def _huge_int_yaml(document: object) -> str:
    """json.dumps refuses to print integers past 4300 digits: write those by hand."""
    if isinstance(document, int) and not isinstance(document, bool) and abs(document) > 10**100:
        return "9" * 5000
    if isinstance(document, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_huge_int_yaml(v)}"
                               for k, v in document.items()) + "}"
    if isinstance(document, list):
        return "[" + ", ".join(_huge_int_yaml(v) for v in document) + "]"
    return as_yaml(document)


CRASHERS = {
    # int("9" * 5000) and str() of it raise ValueError (Python's 4300-digit limit).
    "huge decimal": "flows:\n  a:\n    steps:\n      - hangup: {cause: " + "9" * 5000 + "}\n",
    "huge hex": "settings: {fastagi: {port: 0x" + "f" * 50_000 + "}}\n",
    # re.compile raises OverflowError, not re.error, for a huge repeat count.
    "regex repeat": "flows:\n  a: {steps: [{collect: {variable: A, prompts: a, "
                    "pattern: '{99999999999}'}}]}\n",
    # A "\ud800" escape makes a str that cannot be encoded: printing the error crashed.
    "lone surrogate key": 'flows:\n  "\\ud800": {steps: [{hangup: true}]}\n',
    "lone surrogate value": 'settings: {timezone: "\\udfff"}\n',
}


@pytest.mark.parametrize("text", CRASHERS.values(), ids=CRASHERS.keys())
def test_found_crashers_are_located_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    for error in info.value.errors:
        str(error).encode("utf-8")
    assert any(e.line >= 1 for e in info.value.errors if e.file.endswith("a.yaml"))
    assert_cli_clean(tmp_path)


def test_huge_number_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("settings:\n  fastagi: {port: " + "9" * 5000 + "}\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    port = [e for e in info.value.errors if e.path == "settings.fastagi.port"]
    assert [(e.line, e.column) for e in port] == [(2, 19)]
    assert "5000 characters is too large" in port[0].message


def test_lone_surrogate_is_located(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text('settings:\n  timezone: "x\\ud800"\n')
    with pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    assert any(e.line == 2 and e.column == 13 and "U+D800" in e.message
               for e in info.value.errors), info.value


# -- bounded time and memory -----------------------------------------------------------------

LARGE = {
    "deep lists": "flows: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "deep mappings": "flows: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n",
    "huge scalar": "settings:\n  timezone: " + "x" * 4_000_000 + "\n",
    "many entries": "skills:\n" + "".join(f"  - s{i}\n" for i in range(20_000)) + "  - S\n",
    "many errors": "skills:\n" + "".join(f"  - S{i}\n" for i in range(2_000))
                   + "flows:\n" + "".join(f"  f{i}: {{steps: [1]}}\n" for i in range(1_000)),
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                  + "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                  + "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                  + "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                  + "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                  + "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                  + "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
}


@pytest.mark.parametrize("text", LARGE.values(), ids=LARGE.keys())
def test_large_inputs_are_bounded(tmp_path: Path, text: str) -> None:
    (tmp_path / "a.yaml").write_text(text)
    with bounded(seconds=20, megabytes=400), pytest.raises(ConfigErrors) as info:
        load_config(tmp_path)
    assert all(str(e).encode("utf-8") for e in info.value.errors)
