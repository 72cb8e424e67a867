"""The compiled call flow that the generator renders and the simulator walks.

What used to drift between the two (lookup variables, branch extension names,
answering, ``back``) is decided once in :mod:`callcenter.flows.callflow`; these
tests pin those decisions. The real PBX side is in
``tests/integration/test_callflow_agreement.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.config.errors import ConfigErrors
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from callcenter.flows.callflow import Branch, compile_callflow
from callcenter.flows.lookup import LookupResult
from callcenter.flows.simulate import parse_lookup_stub, simulate, stubbed_lookups
from dialplan.generator import render
from tests.passwords import fake_passwords

REPO = Path(__file__).resolve().parents[2]
AGREEMENT = REPO / "tests" / "configs" / "agreement"
NOON = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def agreement() -> CallCenterConfig:
    return load_config(AGREEMENT).config


def _extension_key(name: str) -> str:
    """How Asterisk compares literal extension names: '-' is ignored."""
    return name.replace("-", "")


# -- branch extensions -----------------------------------------------------------

def _branch_config(cases_by_step: list[list[str]]) -> CallCenterConfig:
    steps = [{"branch": {"variable": "X", "cases": {v: {"hangup": True} for v in cases}}}
             for cases in cases_by_step]
    return CallCenterConfig.model_validate({
        "entry_points": {"e": {"numbers": ["100"], "flow": "f"}},
        "flows": {"f": {"steps": [
            {"collect": {"variable": "X", "prompts": ["beep"]}}, *steps, {"hangup": True}]}},
    })


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.from_regex(r"[A-Za-z0-9_*#+-]{1,4}", fullmatch=True),
                         min_size=1, max_size=6, unique=True),
                min_size=1, max_size=25))
def test_branch_extensions_are_distinct_as_asterisk_compares_them(cases: list[list[str]]) -> None:
    program = compile_callflow(_branch_config(cases)).flows["f"]
    labels = [e.label for e in program.edges()]
    keys = [_extension_key(label) for label in labels] + ["s"]
    assert len(set(keys)) == len(keys), labels
    # Every case has its own edge, and the edge goes where that case says.
    branches = [op for op in program.ops if isinstance(op, Branch)]
    assert [sorted(v for v, _ in b.cases) for b in branches] == [sorted(c) for c in cases]


def test_star_and_hash_cases_render_two_extensions(agreement: CallCenterConfig) -> None:
    text = render(agreement, agent_passwords=fake_passwords(agreement))["extensions_callcenter.conf"]
    flow = text.split("[cc-flow-keys]", 1)[1].split("\n[", 1)[0]
    gotos = re.findall(r'GotoIf\(\$\["\$\{CODE\}" = "([^"]+)"\]\?([a-z0-9-]+),1\)', flow)
    assert dict(gotos) == {"#1": "branch2-case1", "*1": "branch2-case2", "11": "branch2-case3"}
    assert "exten => branch2-case1,1,Goto(cc-flow-hash,s,1)" in flow
    assert "exten => branch2-case2,1,Goto(cc-flow-star,s,1)" in flow


# -- lookups set variables, in the simulator as on the PBX ---------------------------

@pytest.mark.parametrize("stub, flow", [
    ("by_phone=found:VIP=1", "vip"),
    ("by_phone=found:VIP=0", "regular"),
    ("by_phone=found:CC_ACCOUNT_VIP=1,NAME=Ada", "vip"),
])
async def test_branch_follows_the_lookup_result(agreement: CallCenterConfig, stub: str,
                                                flow: str) -> None:
    name, result = parse_lookup_stub(stub)
    sim = await simulate(agreement, "agree", caller_id="+15551230001", now=NOON,
                         lookup=stubbed_lookups({name: result}))
    assert sim.route == ["flow:start", f"flow:{flow}"]
    assert sim.variables["CC_LOOKUP_STATUS"] == "found"
    assert sim.variables["CC_ACCOUNT_VIP"] == result.fields["vip"]


async def test_lookup_sets_only_the_fields_it_returns(agreement: CallCenterConfig) -> None:
    async def lookup(name: str, key: str) -> LookupResult:
        assert (name, key) == ("by_phone", "15551230002")  # FILTER(0-9,...) of the caller
        return LookupResult("found", {"vip": "0"})

    sim = await simulate(agreement, "agree", caller_id="+1 555 123-0002", now=NOON,
                         lookup=lookup)
    assert "CC_ACCOUNT_NAME" not in sim.variables
    assert sim.route == ["flow:start", "flow:regular"]


async def test_not_found_and_backend_error(agreement: CallCenterConfig) -> None:
    sim = await simulate(agreement, "agree", keys=list("#1"), now=NOON,
                         lookup=stubbed_lookups({"by_phone": LookupResult("not_found")}))
    assert sim.route == ["flow:start", "flow:keys", "flow:hash"]
    sim = await simulate(agreement, "agree", now=NOON, lookup=None)  # FastAGI down
    assert str(sim.outcome) == "hangup 38"


# -- one answer policy ----------------------------------------------------------------

def test_every_route_into_the_router_is_answered(agreement: CallCenterConfig) -> None:
    text = render(agreement, agent_passwords=fake_passwords(agreement))["extensions_callcenter.conf"]
    rules = text.split("[cc-caller-rules]", 1)[1].split("\n[", 1)[0]
    matched = rules.split("(rule0)", 1)[1].splitlines()
    apps = [line.split(",", 1)[1] for line in matched[1:] if line.startswith(" same => ")]
    assert apps[apps.index("StackPop()") + 1] == "Answer()", apps
    queue = text.split("[cc-queue]", 1)[1].split("\n[", 1)[0]
    lines = [line for line in queue.splitlines() if "=>" in line]
    stasis = next(i for i, line in enumerate(lines) if ",Stasis(" in line)
    assert any(line.endswith(",Answer()") for line in lines[:stasis]), lines


def test_blocked_callers_are_still_rejected_before_answer(tmp_path: Path) -> None:
    config = CallCenterConfig.model_validate({
        "entry_points": {"e": {"numbers": ["100"], "flow": "f"}},
        "caller_id_rules": [{"name": "bad", "numbers": ["+15550000666"], "block": True}],
        "flows": {"f": {"steps": [{"hangup": True}]}},
    })
    text = render(config, agent_passwords=fake_passwords(config))["extensions_callcenter.conf"]
    block = text.split("(rule0)", 1)[1].split("\n\n", 1)[0]
    assert "Answer()" not in block and "Hangup(21)" in block


# -- 'back' only where a menu led -----------------------------------------------------

_BACK = {
    "entry.yaml": """\
        entry_points:
          e: {numbers: ["100"], flow: start}
        """,
    "flows.yaml": """\
        flows:
          start:
            steps:
              - menu: top
          direct:
            steps:
              - menu: sub
        """,
    "menus.yaml": """\
        menus:
          top:
            prompts: [beep]
            options:
              "1": {menu: sub}
              "2": {flow: direct}
          sub:
            prompts: [beep]
            options:
              "*": {back: true}
              "1": {hangup: true}
        """,
}


def test_back_in_a_menu_a_flow_enters_directly_is_an_error(tmp_path: Path) -> None:
    for name, text in _BACK.items():
        (tmp_path / name).write_text(dedent(text))
    with pytest.raises(ConfigErrors) as err:
        load_config(tmp_path)
    messages = [str(e) for e in err.value.errors]
    assert len(messages) == 1, messages
    assert re.match(r".*menus\.yaml:\d+:\d+: menus\.sub\.options\.\*: 'back' in menu 'sub', "
                    r"which flows\.direct\.steps\[0\]\.menu enters directly", messages[0]), messages


def test_back_from_a_sub_menu_still_accepted(tmp_path: Path) -> None:
    files = dict(_BACK)
    files["menus.yaml"] = files["menus.yaml"].replace('"2": {flow: direct}', '"2": {hangup: true}')
    files["flows.yaml"] = files["flows.yaml"].replace("          direct:\n            steps:\n"
                                                      "              - menu: sub\n", "")
    for name, text in files.items():
        (tmp_path / name).write_text(dedent(text))
    load_config(tmp_path)


# -- collect patterns checked at validate ----------------------------------------------

def test_pattern_asterisk_cannot_parse_is_refused_at_validate(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(dedent("""\
        entry_points:
          e: {numbers: ["100"], flow: f}
        flows:
          f:
            steps:
              - collect:
                  variable: X
                  prompts: [beep]
                  pattern: "^1]$"
        """))
    with pytest.raises(ConfigErrors) as err:
        load_config(tmp_path)
    text = "\n".join(str(e) for e in err.value.errors)
    assert "c.yaml:9:" in text and "flows.f.steps[0].collect.pattern" in text, text
    assert "']' can never be dialled" in text, text


# -- source locations only in harmless comments -----------------------------------------

@pytest.mark.parametrize("hostile", [
    "queues${SHELL(id)}.yaml",
    "q;--x.yaml",
    "q\nexten => 666,1,NoOp(x).yaml",
    "q\\;x[y]{z}\".yaml",
])
def test_file_names_only_reach_comments(tmp_path: Path, hostile: str) -> None:
    directory = tmp_path / "cfg${SHELL(id)}"
    directory.mkdir()
    (directory / "main.yaml").write_text(dedent("""\
        entry_points:
          e: {numbers: ["100"], flow: f}
        flows:
          f:
            steps:
              - transfer: {queue: q}
        """))
    (directory / hostile).write_text("queues:\n  q:\n    fallback: {hangup: true}\n")
    loaded = load_config(directory)
    text = render(loaded.config, loaded.where,
                  agent_passwords=fake_passwords(loaded.config))["extensions_callcenter.conf"]
    for line in text.splitlines():
        if line.startswith(";"):
            assert not re.search(r"[$\\{}\[\]\";]", line[1:]), line
        else:
            assert "SHELL" not in line and "666" not in line, line
    assert "; queues.q (cfg??SHELL(id)?/" in text


def test_what_steps_set_is_what_validate_knows() -> None:
    """The compiled ops and validate's variable check read the same tables."""
    from callcenter.asterisk import variables as V
    from callcenter.flows.callflow import LOOKUP_VARIABLES, CheckSchedule, Lookup

    lookup = Lookup(1, "x", "account_lookup", None, {}, ())
    assert set(lookup.sets) == set(V.SET_BY_LOOKUP)
    assert set(LOOKUP_VARIABLES.values()) <= set(V.SET_BY_LOOKUP)
    assert set(CheckSchedule.sets) == set(V.SET_BY_SCHEDULE)
