"""A second opinion on the generated dialplan: asterisklint's ``dialplan-check``.

The golden files prove the generator is deterministic; they do not prove that
Asterisk reads what we meant. asterisklint (OSSO B.V., GPLv3, a test
dependency only) parses ``extensions.conf`` the way ``pbx_config`` does and
reports unknown applications or functions, unbalanced parentheses, duplicate
priorities (including two extension names Asterisk aliases because it ignores
``-`` in them), and ``Goto`` targets that do not exist. It does not parse
``$[...]`` expressions, and its application and function tables stop at
Asterisk 13: an application or function added later (``HANGUPCAUSE``,
``EVAL_EXTEN``) would be reported missing, a false ``E_`` to allow by name.

How it is run, as an admin would include our file (README): a throw-away
``extensions.conf`` holding ``[general]``, ``[globals]`` and
``#include "callcenter/extensions_callcenter.conf"``. Findings arrive on stderr
as ``FILE:LINE CODE: message``; ``E_`` are errors, ``W_`` warnings, ``H_``
hints; the exit status is 1 when anything was reported. The package ships a
console script but no ``__main__``, so the test calls its entry point through
this interpreter (``python -c 'from asterisklint.main import main; ...'``),
which works whatever ``PATH`` holds. ``ALINT_IGNORE`` (codes to mute) is
cleared and ``HOME`` points into the temporary directory, because asterisklint
also imports overrides from ``~/.asterisklint``.

Blocking: every ``E_`` finding, plus the warnings that mean Asterisk will not
run what the file says (see ``BLOCKING_WARNINGS``). The broken dialplans
below prove each of them fails the same assertion the clean ones pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter.config.loader import load_config
from dialplan.generator import render
from tests.passwords import fake_passwords

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
GENERATED = "extensions_callcenter.conf"
GOLDEN_FILES = sorted((REPO / "tests" / "golden").glob(f"*/{GENERATED}"))

#: The wrapper an admin writes (README: "Include them from an Asterisk you already run").
WRAPPER = f'[general]\n\n[globals]\n\n#include "callcenter/{GENERATED}"\n'

#: asterisklint's own entry point, as its console script calls it.
_RUN = ("import os, sys; from asterisklint.main import main; "
        "sys.exit(main(sys.argv[1:], os.environ))")

_FINDING = re.compile(r"^(?P<file>.+):(?P<line>\d+) (?P<code>[EWH]_[A-Z0-9_]+): (?P<message>.*)$")

#: Warnings that fail the test as errors do, and why.
BLOCKING_WARNINGS: dict[str, str] = {
    # W_PP_INCLUDE_MISSING means the generated file was never read: without
    # this, an E_-only check passes on nothing. W_PP_EXEC would be #exec.
    "W_PP_": "the file was not read as Asterisk would read it (#include, #exec)",
    # pbx_config logs "No closing parenthesis found?" for these and guesses.
    "W_APP_BALANCE": "unbalanced parentheses or quotes in application data",
    "W_FUNC_BALANCE": "unbalanced parentheses or quotes in function arguments",
    # Goto into a context we generate, to an extension or label it lacks:
    # at run time the call falls off the dialplan.
    "W_DP_GOTO_CONTEXT_NOEXTEN": "Goto to an extension or label that does not exist",
}


@dataclass(frozen=True)
class Finding:
    """One line of asterisklint's report, with the dialplan line it names."""

    file: Path
    line: int
    code: str
    message: str
    text: str

    @property
    def blocking(self) -> bool:
        return self.code.startswith(("E_", *BLOCKING_WARNINGS))

    def __str__(self) -> str:
        where = f"{self.file.name}:{self.line}"
        return f"{where} {self.code}: {self.message}" + (f"\n    {self.text}" if self.text else "")


def lint(dialplan: str | None, workdir: Path) -> list[Finding]:
    """Run ``asterisklint dialplan-check`` on ``dialplan`` included as an admin would.

    ``None`` leaves the included file out (to prove that is noticed). Fails the
    test if the linter itself breaks: a traceback, an unparsable line, or an
    exit status that disagrees with what it printed.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "extensions.conf").write_text(WRAPPER)
    if dialplan is not None:
        (workdir / "callcenter").mkdir(exist_ok=True)
        (workdir / "callcenter" / GENERATED).write_text(dialplan)
    env = {**os.environ, "ALINT_IGNORE": "", "HOME": str(workdir)}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, "dialplan-check", str(workdir / "extensions.conf")],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    findings: list[Finding] = []
    for raw in proc.stderr.splitlines():
        if not raw.strip():
            continue
        match = _FINDING.match(raw)
        assert match, (f"asterisklint printed something that is not a finding (is the test "
                       f"extra installed? pip install -e '.[test]'):\n{report}")
        findings.append(_finding(match, workdir))
    assert proc.returncode == (1 if findings else 0), f"asterisklint failed:\n{report}"
    return findings


def _finding(match: re.Match[str], workdir: Path) -> Finding:
    path = workdir / match["file"]  # an absolute name stays absolute
    line = int(match["line"])
    lines = path.read_text().splitlines() if path.is_file() else []
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return Finding(path, line, match["code"], match["message"], text)


def assert_no_blocking(findings: Iterable[Finding]) -> None:
    """The check every generated dialplan must pass; lists all findings on failure."""
    every = list(findings)
    blocking = [f for f in every if f.blocking]
    assert not blocking, (
        f"asterisklint: {len(blocking)} blocking finding(s) (E_*, {', '.join(BLOCKING_WARNINGS)}):\n"
        + "\n".join(map(str, blocking))
        + ("\nall findings:\n" + "\n".join(map(str, every)) if len(every) > len(blocking) else "")
    )


# -- what is linted -------------------------------------------------------------

#: Step kinds, destinations and options the example does not use, so that the
#: generator's other paths get the same second opinion.
ALL_PATHS_CONFIG = """\
settings:
  timezone: Europe/Amsterdam
  language: es
  outbound_trunk: trunk
  failure_prompts: [tt-somethingwrong, vm-goodbye]
entry_points:
  main:
    numbers: ["0201234567", "s", "+31201234567", "*99#"]
    flow: start
    language: en
  second:
    numbers: ["200"]
    flow: branchy
caller_id_rules:
  - name: partners
    prefixes: ["3120"]
    destination: {flow: branchy}
  - name: vip
    numbers: ["+31 (20) 555-0001"]
    priority: 20
  - name: blocked
    numbers: ["+15550000666"]
    block: true
flows:
  start:
    steps:
      - play: [hello-world, vm-press]
      - check_schedule:
          schedule: hours
          open: {flow: branchy}
          closed: {hangup: true, cause: 17}
      - hangup: true
  branchy:
    steps:
      - collect:
          variable: CHOICE
          prompts: [dir-pls-enter]
          max_digits: 4
          pattern: "^(1|2|3[0-9]*)#?$"
          terminator: "*"
          timeout: 2.5
          retries: 2
          on_failure: {external: "+15551234567"}
      - collect:
          variable: PIN
          prompts: [vm-password]
          terminator: ""
          max_digits: 4
      - lookup:
          lookup: crm
          input: CHOICE
          found: {menu: top}
          not_found: {extension: "1001"}
      - lookup:
          lookup: byphone
      - lookup:
          lookup: custom
          input: PIN
          error: {hangup: true, cause: 34}
      - branch:
          variable: CC_LOOKUP_STATUS
          cases:
            found: {menu: top}
            "1": {flow: start}
            "*#": {voicemail: box}
            "#*": {hangup: true}
            "a_b": {hangup: true, cause: 17}
            "a-b": {hangup: true, cause: 18}
          default: {queue: q, skills: [a, b], priority: 7}
  looper:
    steps:
      - set_language: es
      - goto: branchy
menus:
  top:
    prompts: [vm-press, digits/1]
    options:
      "1": {flow: looper}
      "2": {menu: sub}
      "#": {hangup: true, cause: 21}
      "*": {external: "5551234"}
      "3": {external: "+5551234"}
    timeout: 1.5
    max_retries: 1
    invalid_prompts: []
    timeout_prompts: [vm-sorry]
    exhausted_prompts: []
    on_invalid: {menu: sub}
    on_timeout: {flow: start}
  sub:
    prompts: [vm-press]
    options:
      "0": {back: true}
      "9": {repeat: true}
      "5": {queue: q}
    on_exhausted: {back: true}
schedules:
  hours:
    hours:
      mon: "00:00-24:00"
      tue-thu: "08:00-12:00, 13:00-17:30"
      fri: closed
    holidays:
      - {date: "2026-04-27"}
    special_days:
      - {date: "2026-05-05", hours: closed}
skills: [a, b]
queues:
  q:
    skills: [a, b]
agents:
  x:
    extension: "1001"
    skills: {a: 5, b: 5}
voicemail:
  box:
    mailbox: "9000"
    name: Box
    greeting: busy
lookups:
  crm:
    source: http
    url: "https://crm.example.invalid/lookup?n={value}&x=1"
    timeout: 1
  byphone:
    source: database
    by: phone
  custom:
    source: agi
    script: account_lookup
"""


def _rendered(directory: Path) -> str:
    loaded = load_config(directory)
    return render(loaded.config, loaded.where,
                  agent_passwords=fake_passwords(loaded.config))[GENERATED]


@pytest.fixture(scope="module")
def example_dialplan() -> str:
    return _rendered(EXAMPLE)


def test_golden_files_exist() -> None:
    # An empty glob would silently lint nothing below.
    assert GOLDEN_FILES, f"no tests/golden/*/{GENERATED}"


#: Applications of the dialer's ``cc-dialer-amd`` context that asterisklint's tables lack
#: (both in Asterisk since 1.4 and loaded by the instance: autoload, not in modules.conf's
#: noload list): ``AMD`` (app_amd) and ``WaitForSilence`` (app_waitforsilence, the wait
#: for a machine's beep before a message is left).
DIALER_APPS_UNKNOWN_TO_LINT = ("AMD", "WaitForSilence")


def amd_findings(findings: list[Finding]) -> list[Finding]:
    """The findings allowed: asterisklint's application table has no AMD nor
    WaitForSilence, reported on exactly our ``cc-dialer-amd`` lines (one each); anything
    else still fails."""
    return [f for f in findings if f.code == "E_APP_MISSING" and any(
        f"'{app}'" in f.message and f.text.startswith(f" same => n,{app}(")
        for app in DIALER_APPS_UNKNOWN_TO_LINT)]


def assert_no_blocking_but_amd(findings: Iterable[Finding]) -> None:
    """:func:`assert_no_blocking`, allowing at most the AMD and WaitForSilence lines of a
    config with trunks (one each)."""
    findings = list(findings)
    amd = amd_findings(findings)
    assert len(amd) <= len(DIALER_APPS_UNKNOWN_TO_LINT), amd
    assert len({f.text.split("(", 1)[0] for f in amd}) == len(amd), amd
    assert_no_blocking(f for f in findings if f not in amd)


@pytest.mark.parametrize("golden", GOLDEN_FILES, ids=lambda p: p.parent.name)
def test_golden_dialplan_passes_asterisklint(golden: Path, tmp_path: Path) -> None:
    assert_no_blocking_but_amd(lint(golden.read_text(), tmp_path))


def test_example_dialplan_passes_asterisklint(example_dialplan: str, tmp_path: Path) -> None:
    assert_no_blocking_but_amd(lint(example_dialplan, tmp_path))


def test_every_generator_path_passes_asterisklint(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "callcenter.yaml").write_text(ALL_PATHS_CONFIG)
    assert_no_blocking(lint(_rendered(config), tmp_path / "lint"))


# -- the check can fail -----------------------------------------------------------

#: A context ``cc-lint-probe`` appended to the example: its lines, the code
#: expected, and on which of its lines.
BROKEN = {
    # The example: an unbalanced parenthesis, in a function call.
    "unbalanced-parenthesis-in-function": (
        ["exten => s,1,Set(CC_CALLER=${FILTER(0-9,${CALLERID(num)}})"], "E_FUNC_PARENS", 0),
    # ... and in application data: only a warning for asterisklint, and
    # Asterisk loads it with "No closing parenthesis found?".
    "unbalanced-parenthesis-in-application": (
        ["exten => s,1,Gosub(cc-lint-probe,s,1", " same => n,Hangup(16)"], "W_APP_BALANCE", 0),
    "unknown-application": (["exten => s,1,Payback(hello-world)"], "E_APP_MISSING", 0),
    "unknown-function": (["exten => s,1,Set(X=${FILTR(0-9,${CALLERID(num)})})"], "E_FUNC_MISSING", 0),
    "goto-missing-context": (["exten => s,1,Goto(cc-flow-nowhere,s,1)"], "E_DP_GOTO_NOCONTEXT", 0),
    "goto-missing-label": (["exten => s,1,Goto(cc-lint-probe,s,nolabel)"], "W_DP_GOTO_CONTEXT_NOEXTEN", 0),
    # Asterisk ignores '-' in extension names: these two are one extension,
    # the second is dropped at load ("already in use by aliased extension").
    "extensions-aliased-by-dashes": (
        ["exten => branch1-1x,1,Hangup(17)", "", "exten => branch11-x,1,Hangup(21)"],
        "E_DP_PRIO_DUPE", 2),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_broken_dialplan_fails_the_check(case: str, example_dialplan: str, tmp_path: Path) -> None:
    lines, code, at = BROKEN[case]
    dialplan = example_dialplan.rstrip("\n") + "\n\n[cc-lint-probe]\n" + "\n".join(lines) + "\n"
    line = dialplan.count("\n", 0, dialplan.index("[cc-lint-probe]")) + 2 + at
    findings = lint(dialplan, tmp_path)
    assert any(f.code == code and f.line == line for f in findings), (
        f"expected {code} at line {line}; got:\n" + "\n".join(map(str, findings)))
    with pytest.raises(AssertionError, match=code) as failed:
        assert_no_blocking(findings)
    assert lines[at] in str(failed.value), "the failure message must show the dialplan line"


def test_missing_include_fails_the_check(tmp_path: Path) -> None:
    findings = lint(None, tmp_path)
    assert [f.code for f in findings if f.blocking] == ["W_PP_INCLUDE_MISSING"], findings
    with pytest.raises(AssertionError, match="W_PP_INCLUDE_MISSING"):
        assert_no_blocking(findings)



#: Trunks bring the dial/DID contexts and the dialer's AMD context (``cc-dialer-amd``).
TRUNKS_CONFIG = """\
trunks:
  carrier:
    host: 127.0.0.2
    caller_id: "+15550100000"
    dids:
      "+15550109000": main
"""


def test_trunks_and_the_dialer_pass_asterisklint(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "callcenter.yaml").write_text(ALL_PATHS_CONFIG)
    (config / "trunks.yaml").write_text(TRUNKS_CONFIG)
    dialplan = _rendered(config)
    assert "[cc-dialer-amd]" in dialplan
    findings = lint(dialplan, tmp_path / "lint")
    assert len(amd_findings(findings)) == len(DIALER_APPS_UNKNOWN_TO_LINT), findings
    assert_no_blocking_but_amd(findings)
