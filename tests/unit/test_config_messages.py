"""Errors explain patterns in words and a typo gives one error, not its consequences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callcenter.config.models import PATTERN_WORDS
from callcenter.config.schema import json_schema
from tests.unit.test_checks import errors, find, lines

NAME_WORDS = ("a name: a lowercase letter, then lowercase letters, digits or _, "
              "at most 48 characters")


def test_a_bad_name_is_explained_in_words(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues="""\
        skills: [sales]
        queues:
          sales: {skills: [sales]}
          Sales-Team: {skills: [sales]}
        agents:
          alice: {extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    error = find(errs, "queues")
    assert error.message == f"invalid key 'Sales-Team': expected {NAME_WORDS}; got 'Sales-Team'"
    assert (error.line, error.column) == (4, 3)


@pytest.mark.parametrize("step, path, words", [
    ("{play: 'hello world'}", "flows.start.steps[0].play[0]", "a sound name: letters, digits"),
    ("{collect: {variable: account, prompts: x}}", "flows.start.steps[0].collect.variable",
     "a variable name: an uppercase letter"),
    ("{set_language: english}", "flows.start.steps[0].set_language",
     "a language: two lowercase letters"),
    ("{transfer: {external: '555-0100'}}", "flows.start.steps[0].transfer.external",
     "a phone number: an optional +, then 3 to 20 digits"),
])
def test_patterns_are_explained_in_words(tmp_path: Path, step: str, path: str,
                                         words: str) -> None:
    errs = errors(tmp_path, flows=f"""\
        flows:
          start:
            steps: [{step}, {{menu: main}}]
        """)
    message = find(errs, path).message
    assert message.startswith(f"expected {words}"), message
    assert "^" not in message and "pattern" not in message


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return own.union(*(_patterns(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(v) for v in node))
    return set()


def test_every_pattern_has_words() -> None:
    """A new pattern in the models must say in PATTERN_WORDS what it accepts."""
    schema = json_schema()
    # propertyNames of hours and the hours string are explained by their own validators
    hours = {p for p in _patterns(schema) if "closed" in p or p.startswith("^(mon")}
    assert _patterns(schema) - hours - set(PATTERN_WORDS) == set()


def test_one_bad_step_is_one_error(tmp_path: Path) -> None:
    """Not also "steps: tuple should have at least 1 item" (pydantic counts good items)."""
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - hangup: yes
        """)
    assert lines(errs) == [
        "flows.yaml:4:17: flows.start.steps[0].hangup: expected true, got 'yes' "
        "(only true/false are booleans)",
    ]
    assert "at least 1 item" not in json.dumps(lines(errs))


def test_empty_steps_is_still_an_error(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps: []
        """)
    assert "at least 1 item" in find(errs, "flows.start.steps").message
