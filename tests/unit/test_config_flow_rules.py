"""What a reviewer would catch in a flow: branches on variables nothing sets, dead steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.asterisk import variables as V
from tests.unit.test_checks import errors, find, lines, load

LOOKUP = """\
    lookups:
      account: {source: database, by: phone}
    """


def branch_flow(variable: str, before: str = "") -> str:
    """A reachable flow: [before], a branch on ``variable``, then the menu."""
    return f"""\
        flows:
          start:
            steps:
              {before}
              - branch:
                  variable: {variable}
                  cases: {{"1": {{queue: sales}}}}
              - menu: main
        """.replace("              \n", "")


# -- branch variables --------------------------------------------------------------------------

def test_branch_on_a_misspelt_lookup_variable_is_an_error(tmp_path: Path) -> None:
    errs = errors(tmp_path, lookups=LOOKUP, flows=branch_flow(
        "CC_ACOUNT_VIP", "- lookup: {lookup: account, found: {menu: main}}"))
    error = find(errs, "flows.start.steps[1].branch.variable")
    assert error.message == ("variable 'CC_ACOUNT_VIP' is set by no step and is not an "
                             "Asterisk variable (did you mean 'CC_ACCOUNT_VIP'?)")
    assert (Path(error.file).name, error.line, error.column) == ("flows.yaml", 6, 21)
    assert len(errs.errors) == 1, lines(errs)


@pytest.mark.parametrize("variable", sorted(V.SET_BY_LOOKUP))
def test_branch_on_lookup_results_after_a_lookup(tmp_path: Path, variable: str) -> None:
    load(tmp_path, lookups=LOOKUP, flows=branch_flow(
        variable, "- lookup: {lookup: account, found: {menu: main}}"))


def test_branch_on_a_lookup_result_without_any_lookup(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows=branch_flow("CC_ACCOUNT_VIP"))
    assert find(errs, "flows.start.steps[0].branch.variable").message == (
        "variable 'CC_ACCOUNT_VIP' is set by a lookup step, and no flow has one")


@pytest.mark.parametrize("variable", sorted({*V.ASTERISK_VARIABLES, *V.SET_AT_ENTRY}))
def test_branch_on_asterisk_and_entry_variables(tmp_path: Path, variable: str) -> None:
    load(tmp_path, flows=branch_flow(variable))


def test_branch_on_a_collected_variable(tmp_path: Path) -> None:
    load(tmp_path, flows=branch_flow(
        "CHOICE", "- collect: {variable: CHOICE, prompts: vm-press, max_digits: 1}"))


def test_branch_on_a_misspelt_collected_variable(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows=branch_flow(
        "CHOISE", "- collect: {variable: CHOICE, prompts: vm-press, max_digits: 1}"))
    assert "(did you mean 'CHOICE'?)" in find(errs, "flows.start.steps[1].branch.variable").message


def test_branch_on_the_schedule_needs_a_schedule_check(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows=branch_flow("CC_SCHEDULE"))
    assert "set by a check_schedule step" in find(
        errs, "flows.start.steps[0].branch.variable").message


def test_every_variable_has_one_owner() -> None:
    """Each table names a variable once: the compiled model reads who sets what from here."""
    tables = [V.SET_AT_ENTRY, V.SET_BY_SCHEDULE, V.SET_BY_LOOKUP, V.ASTERISK_VARIABLES]
    names = [name for table in tables for name in table]
    assert len(names) == len(set(names))
    assert all(name.startswith("CC_") for table in tables[:3] for name in table)
    assert not any(name.startswith("CC_") for name in V.ASTERISK_VARIABLES)


# -- dead steps --------------------------------------------------------------------------------

@pytest.mark.parametrize("ender", [
    "- menu: main", "- transfer: {queue: sales}", "- goto: other", "- hangup: true",
])
def test_steps_after_a_step_that_ends_the_flow(tmp_path: Path, ender: str) -> None:
    errs = errors(tmp_path, flows=f"""\
        flows:
          start:
            steps:
              - play: hello-world
              {ender}
              - play: vm-goodbye
              - menu: main
          other:
            steps:
              - menu: main
        """)
    kind = ender[2:].split(":")[0]
    error = find(errs, "flows.start.steps[2]")
    assert error.message == f"step never runs: steps[1] ({kind}) ends the flow"
    assert (Path(error.file).name, error.line, error.column) == ("flows.yaml", 6, 9)
    # one error for the first dead step, not one per step
    assert [e.path for e in errs.errors if "never runs" in e.message] == ["flows.start.steps[2]"]


def test_terminal_last_step_is_fine(tmp_path: Path) -> None:
    load(tmp_path)
