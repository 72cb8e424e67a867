"""``pause_reasons:`` in the config: a tiny model, located errors, and the state machine's
rules built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.agents import (
    SYSTEM_PAUSE_REASONS,
    Login,
    Pause,
    UnknownPauseReason,
    logged_out,
    transition,
)
from callcenter.agents.rules import rules_from_config
from callcenter.config import models
from callcenter.config.loader import load_config
from tests.agent_store_scenarios import T0
from tests.unit.test_checks import errors, lines, write


def test_pause_reasons_feed_the_state_machine(tmp_path: Path) -> None:
    directory = write(tmp_path, pauses="""\
pause_reasons:
  lunch: {code: "1", description: Lunch break}
  training: {}
""")
    config = load_config(directory).config
    assert config.pause_reasons["lunch"] == models.PauseReason(description="Lunch break", code="1")
    rules = rules_from_config(config)
    available = transition(logged_out("alice", T0), Login(), T0, rules).state
    assert transition(available, Pause("training"), T0, rules).state.pause_reason == "training"
    with pytest.raises(UnknownPauseReason, match="'smoke'"):
        transition(available, Pause("smoke"), T0, rules)


def test_a_config_without_pause_reasons_is_valid(tmp_path: Path) -> None:
    assert load_config(write(tmp_path)).config.pause_reasons == {}


@pytest.mark.parametrize("text, expected", [
    ("pause_reasons:\n  lunch: {}\n  unregistered: {}\n",
     ("pauses.yaml:3:3: pause_reasons: invalid key 'unregistered': 'unregistered' is a pause "
      "reason the system sets by itself (reserved: no_answer, unregistered)")),
    ("pause_reasons:\n  lunch: {code: '1'}\n  coffee: {code: '1'}\n",
     "pauses.yaml:2:3: pause_reasons: pause reasons share a code: 1 (lunch, coffee)"),
    ("pause_reasons:\n  lunch: {code: 12x}\n",
     "pauses.yaml:2:17: pause_reasons.lunch.code: expected 1 to 4 digits; got '12x'"),
    ("pause_reasons:\n  lunch: {colour: red}\n",
     "pauses.yaml:2:11: pause_reasons.lunch: unknown key 'colour'"),
])
def test_bad_pause_reasons_are_located(tmp_path: Path, text: str, expected: str) -> None:
    assert lines(errors(tmp_path, pauses=text))[0].startswith(expected)


def test_the_config_reserves_exactly_the_system_reasons() -> None:
    assert set(models.SYSTEM_PAUSE_REASONS) == SYSTEM_PAUSE_REASONS
