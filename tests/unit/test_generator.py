"""Golden-file and safety tests for the dialplan generator.

``render(config/example)`` is compared byte for byte with the files in
``tests/golden/example/``. After an intended change to the generator or to
``config/example``, regenerate them and review the diff::

    UPDATE_GOLDEN=1 /work/venv/bin/pytest tests/unit/test_generator.py

With ``UPDATE_GOLDEN=1`` the golden test rewrites the files instead of
comparing (and still passes), so the diff of ``tests/golden/`` in the commit
is the review of what Asterisk will run.

The safety tests read the generated text the way Asterisk would: caller
controlled values only behind ``FILTER()``, no shell escapes, every ``Goto``
landing in a context that exists, and free text from the YAML unable to
leave its comment line.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.config.loader import LoadedConfig, load_config
from dialplan.generator import FILES, render
from tests.passwords import fake_passwords

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
GOLDEN = REPO / "tests" / "golden" / "example"

_CONTEXT_HEADER = re.compile(r"^\[([^\]]+)\]", re.MULTILINE)


def _render(directory: Path) -> dict[str, str]:
    loaded = load_config(directory)
    return render(loaded.config, loaded.where,
                  agent_passwords=fake_passwords(loaded.config))


@pytest.fixture(scope="module")
def loaded() -> LoadedConfig:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def files(loaded: LoadedConfig) -> dict[str, str]:
    return render(loaded.config, loaded.where, agent_passwords=fake_passwords(loaded.config))


@pytest.fixture(scope="module")
def extensions(files: dict[str, str]) -> str:
    return files["extensions_callcenter.conf"]


def _contexts(text: str) -> set[str]:
    return set(_CONTEXT_HEADER.findall(text))


# -- golden files --------------------------------------------------------------

def test_renders_every_file(files: dict[str, str]) -> None:
    assert sorted(files) == sorted(FILES)


@pytest.mark.parametrize("name", FILES)
def test_golden(name: str, files: dict[str, str]) -> None:
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(files[name].encode())
        return
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1 to create it"
    # Bytes, not text: a stray \r or trailing blank changes what Asterisk reads.
    assert files[name].encode() == golden.read_bytes(), (
        f"{name} differs from {golden}; if intended, rerun with UPDATE_GOLDEN=1 and review the diff"
    )


def test_render_is_deterministic(loaded: LoadedConfig) -> None:
    passwords = fake_passwords(loaded.config)
    assert (render(loaded.config, loaded.where, agent_passwords=passwords)
            == render(loaded.config, loaded.where, agent_passwords=passwords))


def test_render_does_not_depend_on_where_the_config_lives(
    tmp_path: Path, files: dict[str, str]
) -> None:
    # Comments name files relative to the config dir's parent: "example/flows.yaml:25".
    copy = tmp_path / "elsewhere" / "example"
    shutil.copytree(EXAMPLE, copy)
    assert _render(copy) == files


def test_comments_locate_the_yaml(extensions: str) -> None:
    assert "; flows.customer_service (example/flows.yaml:" in extensions
    assert "; menus.main (example/menus.yaml:" in extensions
    assert str(REPO) not in extensions


def test_render_without_locator(loaded: LoadedConfig) -> None:
    text = render(loaded.config, agent_passwords=fake_passwords(loaded.config))[
        "extensions_callcenter.conf"]
    assert "; flows.customer_service\n" in text


# -- safety --------------------------------------------------------------------

def test_caller_id_always_filtered(extensions: str) -> None:
    # Reads only: a trunk's Set(CALLERID(num)=<number from the YAML>) writes our own number.
    uses = [m.start() for m in re.finditer(r"(?<!Set\()CALLERID\(", extensions)]
    assert uses, "the example uses the caller's number"
    for start in uses:
        assert extensions[start - len("${FILTER(0-9,${"):start] == "${FILTER(0-9,${", (
            extensions[start - 40:start + 40]
        )


def test_collected_digits_stored_through_filter(extensions: str) -> None:
    lines = extensions.splitlines()
    reads = [i for i, line in enumerate(lines) if ",Read(" in line]
    assert reads
    for i in reads:
        raw = re.search(r"Read\(([A-Z0-9_]+),", lines[i]).group(1)
        # The raw variable is only ever read through FILTER().
        stored = lines[i + 1]
        assert re.search(rf"Set\([A-Z][A-Z0-9_]*=\$\{{FILTER\(0-9\*#,\$\{{{raw}\}}\)\}}\)$",
                         stored), stored
    raw_uses = re.findall(r"\$\{CC_RAW_DIGITS\}", extensions)
    filtered_uses = re.findall(r"FILTER\([^,]+,\$\{CC_RAW_DIGITS\}\)", extensions)
    assert len(raw_uses) == len(filtered_uses)


def test_lookup_input_filtered(extensions: str) -> None:
    for line in extensions.splitlines():
        if ",AGI(" in line:
            args = line.split("AGI(", 1)[1]
            assert "${" not in args or "${FILTER(" in args, line


def test_no_shell(files: dict[str, str]) -> None:
    for name, text in files.items():
        for forbidden in ("System(", "TrySystem(", "SHELL("):
            assert forbidden not in text, f"{forbidden} in {name}"


def test_every_goto_lands_in_an_existing_context(extensions: str) -> None:
    contexts = _contexts(extensions)
    targets = set(re.findall(r"Goto\((cc-[A-Za-z0-9_-]+),", extensions))
    targets |= set(re.findall(r"\?(cc-[A-Za-z0-9_-]+),", extensions))
    assert targets
    assert targets <= contexts, targets - contexts
    # Gosub targets too.
    assert set(re.findall(r"Gosub\(([^,]+),", extensions)) <= contexts
    # 'back' goes to a variable menu context: it must name one of our menus at run time,
    # and an empty variable is caught before the Goto.
    for m in re.finditer(r"Goto\(cc-menu-\$\{(CC_BACK_[a-z0-9_]+)\},s,1\)", extensions):
        guard = f'GotoIf($["${{{m.group(1)}}}" = ""]?cc-failure,s,1)'
        assert guard in extensions


def test_back_variable_only_set_to_menus(loaded: LoadedConfig, extensions: str) -> None:
    for var, value in re.findall(r"Set\((CC_BACK_[a-z0-9_]+)=([^)]*)\)", extensions):
        assert value in loaded.config.menus, (var, value)


def test_every_flow_and_menu_has_its_context(loaded: LoadedConfig, extensions: str) -> None:
    contexts = _contexts(extensions)
    c = loaded.config
    assert {f"cc-flow-{n}" for n in c.flows} <= contexts
    assert {f"cc-menu-{n}" for n in c.menus} <= contexts
    assert {f"cc-entrypoint-{n}" for n in c.entry_points} <= contexts
    assert {c.settings.entry_context, "cc-queue", "cc-voicemail", "cc-failure"} <= contexts


def test_entry_numbers_and_menu_keys_are_extensions(loaded: LoadedConfig, extensions: str) -> None:
    for ep in loaded.config.entry_points.values():
        for number in ep.numbers:
            assert f"exten => {number},1," in extensions
    for key in loaded.config.menus["tech_support"].options:
        assert f"exten => {key},1," in extensions


def test_every_extension_ends_in_a_jump_or_hangup(extensions: str) -> None:
    """A call never falls off the dialplan: each extension's last line leaves it."""
    block: list[str] = []
    blocks: list[list[str]] = []
    for line in extensions.splitlines() + [""]:
        if line.startswith("exten => "):
            if block:
                blocks.append(block)
            block = [line]
        elif line.startswith(" same => "):
            block.append(line)
        elif block:
            blocks.append(block)
            block = []
    assert blocks
    for b in blocks:
        last = b[-1].split(",", 2)[2] if b[-1].startswith("exten") else b[-1].split(",", 1)[1]
        # WaitExten: Asterisk then runs the menu's t (timeout) extension.
        assert re.match(r"(Goto|Hangup|Return|WaitExten)\(", last), b


INJECTION = "\nexten => 666,1,System(rm -rf /)"

_INJECT_CONFIG = {
    "entry.yaml": """\
        entry_points:
          main:
            description: {desc}
            numbers: ["100"]
            flow: start
        """,
    "flows.yaml": """\
        flows:
          start:
            description: {desc}
            steps:
              - play: hello-world
              - menu: main
        """,
    "menus.yaml": """\
        menus:
          main:
            description: {desc}
            prompts: [hello-world]
            options:
              "1": {{hangup: true}}
        """,
}


def test_description_cannot_inject_dialplan(tmp_path: Path) -> None:
    directory = tmp_path / "inject"
    directory.mkdir()
    desc = '"ok' + INJECTION.replace("\n", "\\n") + '"'  # YAML double-quoted: \n is a newline
    for name, text in _INJECT_CONFIG.items():
        (directory / name).write_text(dedent(text).format(desc=desc))
    loaded = load_config(directory)
    assert INJECTION in loaded.config.flows["start"].description
    files = render(loaded.config, loaded.where, agent_passwords=fake_passwords(loaded.config))
    text = files["extensions_callcenter.conf"]
    hits = [line for line in text.splitlines() if "System(" in line]
    assert len(hits) == 3, hits
    for line in hits:
        assert line.startswith("; "), line
    assert not re.search(r"^exten => 666", text, re.MULTILINE)
    for other in ("pjsip_callcenter.conf", "voicemail_callcenter.conf"):
        assert "System(" not in files[other]
