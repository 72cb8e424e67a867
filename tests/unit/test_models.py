"""Model validation: the alphabets that keep YAML values safe in the dialplan."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from callcenter.config.models import (
    Agent,
    CallerIdRule,
    CollectSpec,
    Destination,
    ExtensionDest,
    Flow,
    Menu,
    PlayStep,
    QueueDest,
    Schedule,
    Step,
    expand_days,
)

DEST = TypeAdapter(Destination)
STEP = TypeAdapter(Step)


def _message(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(str(e["msg"]) for e in exc.value.errors())


# -- collect -----------------------------------------------------------------------------

def test_collect_min_greater_than_max() -> None:
    with pytest.raises(ValidationError) as exc:
        CollectSpec.model_validate({"variable": "PIN", "prompts": ["x"], "min_digits": 6,
                                    "max_digits": 4})
    assert "min_digits (6) is greater than max_digits (4)" in _message(exc)


def test_collect_defaults_and_single_prompt() -> None:
    spec = CollectSpec.model_validate({"variable": "PIN", "prompts": "enter-pin"})
    assert spec.prompts == ("enter-pin",)
    assert (spec.min_digits, spec.max_digits, spec.terminator, spec.retries) == (1, 16, "#", 3)


@pytest.mark.parametrize("pattern", ["^[0-9]{6,8}$", "^(1|2)[0-9]+$", "[0-9*#]{4}"])
def test_collect_pattern_accepted(pattern: str) -> None:
    CollectSpec.model_validate({"variable": "PIN", "prompts": ["x"], "pattern": pattern})


@pytest.mark.parametrize("pattern", [
    "${SHELL(id)}",      # dialplan function
    "^[0-9]${",          # variable expansion
    "^[a-z]+$",          # letters: not DTMF
    "^[0-9] $",          # blank
    "^[0-9]\\d$",        # backslash
    "^[0-9]+$;",         # comment character
    "^(0-9$",            # does not compile
])
def test_collect_pattern_rejected(pattern: str) -> None:
    with pytest.raises(ValidationError):
        CollectSpec.model_validate({"variable": "PIN", "prompts": ["x"], "pattern": pattern})


@pytest.mark.parametrize("variable", ["pin", "1PIN", "PIN-1", "A" * 33, "${X}"])
def test_variable_names(variable: str) -> None:
    with pytest.raises(ValidationError):
        CollectSpec.model_validate({"variable": variable, "prompts": ["x"]})


# -- numbers ---------------------------------------------------------------------------

def test_extension_int_becomes_string() -> None:
    agent = Agent.model_validate({"extension": 1001})
    assert agent.extension == "1001"
    assert isinstance(agent.extension, str)
    assert DEST.validate_python({"extension": 1001}) == ExtensionDest(extension="1001")


@pytest.mark.parametrize("extension", ["1", "10a1", "1001,1", "12345678901"])
def test_extension_rejected(extension: str) -> None:
    with pytest.raises(ValidationError):
        Agent.model_validate({"extension": extension})


def test_caller_id_rule_needs_an_effect() -> None:
    with pytest.raises(ValidationError) as exc:
        CallerIdRule.model_validate({"name": "x", "numbers": ["+15551234"]})
    assert "needs priority, block or destination" in _message(exc)
    with pytest.raises(ValidationError) as exc:
        CallerIdRule.model_validate({"name": "x", "block": True})
    assert "needs numbers or prefixes" in _message(exc)
    rule = CallerIdRule.model_validate({"name": "x", "numbers": ["+1 (555) 123-4567"],
                                        "block": True})
    assert rule.digits() == ("15551234567",)


# -- sounds ---------------------------------------------------------------------------

@pytest.mark.parametrize("sound", ["hello-world", "digits/1", "custom/welcome_2"])
def test_sound_names_accepted(sound: str) -> None:
    assert STEP.validate_python({"play": sound}) == PlayStep(play=(sound,))


@pytest.mark.parametrize("sound", [
    "../../etc/passwd", "custom/../secret", "hello world", "hello-world&rm", "/abs",
    "a/", "hello,world", "", "x" * 121,
])
def test_sound_names_rejected(sound: str) -> None:
    with pytest.raises(ValidationError):
        STEP.validate_python({"play": [sound]})


def test_too_many_prompts() -> None:
    with pytest.raises(ValidationError):
        STEP.validate_python({"play": ["beep"] * 21})


# -- destinations and steps ----------------------------------------------------------------

def test_destination_with_two_keys_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        DEST.validate_python({"menu": "main", "flow": "other"})
    assert any(e["type"] == "extra_forbidden" for e in exc.value.errors())


@pytest.mark.parametrize("value", [{}, {"colour": "red"}, "main", None])
def test_not_a_destination(value: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        DEST.validate_python(value)
    assert "expected a destination" in _message(exc)


def test_queue_destination() -> None:
    dest = DEST.validate_python({"queue": "sales", "skills": ["sales"], "priority": 5})
    assert dest == QueueDest(queue="sales", skills=("sales",), priority=5)
    with pytest.raises(ValidationError):
        DEST.validate_python({"queue": "sales", "priority": 101})


def test_back_must_be_true() -> None:
    with pytest.raises(ValidationError):
        DEST.validate_python({"back": False})


@pytest.mark.parametrize("name", ["Main", "1menu", "main-menu", "main menu", "a" * 49, "cc;x"])
def test_names_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        DEST.validate_python({"menu": name})


def test_step_with_two_keys_rejected() -> None:
    with pytest.raises(ValidationError):
        STEP.validate_python({"play": "beep", "menu": "main"})


def test_flow_needs_steps() -> None:
    with pytest.raises(ValidationError):
        Flow.model_validate({"steps": []})


def test_models_are_frozen() -> None:
    menu = Menu.model_validate({"prompts": "beep", "options": {"1": {"hangup": True}}})
    with pytest.raises(ValidationError):
        menu.timeout = 10  # type: ignore[misc]


def test_menu_key_must_be_dtmf() -> None:
    with pytest.raises(ValidationError):
        Menu.model_validate({"prompts": "beep", "options": {"A": {"hangup": True}}})
    with pytest.raises(ValidationError):
        Menu.model_validate({"prompts": "beep", "options": {"12": {"hangup": True}}})


# -- schedules ------------------------------------------------------------------------

def test_expand_days() -> None:
    assert expand_days("mon-fri") == [0, 1, 2, 3, 4]
    assert expand_days("fri-mon") == [4, 5, 6, 0]
    assert expand_days("sun") == [6]
    with pytest.raises(ValueError):
        expand_days("monday")


def test_holiday_ends_before_start() -> None:
    with pytest.raises(ValidationError) as exc:
        Schedule.model_validate({"hours": {"mon": "closed"},
                                 "holidays": [{"date": "2026-12-31", "until": "2026-12-01"}]})
    assert "before it starts" in _message(exc)


def test_schedule_hours_parsed() -> None:
    s = Schedule.model_validate({"hours": {"mon-fri": "08:00-12:00, 13:00-24:00",
                                           "sat": "closed"}})
    assert [str(r) for r in s.hours["mon-fri"]] == ["08:00-12:00", "13:00-24:00"]
    assert s.hours["sat"] == ()
    assert s.weekly()[4] == s.hours["mon-fri"]
