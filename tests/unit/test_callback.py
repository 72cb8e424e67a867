"""Callbacks' pure parts: the number to call back (caller ID or keyed, from outside), the
caller's keys, when to call again, a callback's routing time; and the queue's ``callback``
config with located errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.config.models import Callback, Queue
from callcenter.routing.callback import (
    COLLECTING,
    CONFIRMED,
    LOST,
    REFUSED,
    RELEASE,
    RING,
    Dialog,
    callback_number,
    decision_time,
    dial_string,
    next_attempt,
    offer_start,
    result_from_cause,
    result_from_dialstatus,
)
from callcenter.routing.policy import QueuePolicy
from callcenter.storage.models import CallbackResult
from tests.unit.test_checks import errors, find, lines, load

SETTINGS = Callback(dial="PJSIP/{number}@trunk", retries=2, retry_delay=120)
#: What the dial string template's alphabet allows besides letters and digits: none of
#: them may come from the caller.
_SAFE = re.compile(r"\+?[0-9]+")


# -- the number -----------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "number"), [
    ("15551230001", "15551230001"),
    ("+15551230001", "+15551230001"),
    (" 5551234 ", "5551234"),
    ("123", "123"),
    ("12", None),
    ("1" * 16, None),
    ("", None),
    (None, None),
    ("anonymous", None),
    ("sip:15551230001@evil", None),
    ("1555&PJSIP/666", None),
    ("1555,30,tT", None),
    ("++1555123", None),
    ("1555\n123", None),
    ("١٢٣٤٥", None),  # Arabic-Indic digits are no dial digits
])
def test_a_callback_number_is_digits_with_an_optional_plus(raw: str | None,
                                                          number: str | None) -> None:
    assert callback_number(raw) == number


@given(st.text(max_size=40))
def test_whatever_the_caller_id_only_a_plus_and_ascii_digits_get_through(raw: str) -> None:
    number = callback_number(raw)
    if number is not None:
        assert _SAFE.fullmatch(number)
        assert 3 <= len(number.lstrip("+")) <= 15
        assert dial_string("PJSIP/{number}@trunk", number) == f"PJSIP/{number}@trunk"


@given(st.text(alphabet="0123456789+", min_size=1, max_size=25))
def test_a_well_formed_number_within_the_bound_is_taken_as_is(raw: str) -> None:
    well_formed = re.fullmatch(r"\+?[0-9]{3,15}", raw) is not None
    assert (callback_number(raw) == raw) is well_formed


@pytest.mark.parametrize("hostile", ["1555&PJSIP/evil", "123,30", "1$(SHELL)", ""])
def test_the_dial_string_refuses_what_is_no_number(hostile: str) -> None:
    with pytest.raises(ValueError, match="not a callback number"):
        dial_string("PJSIP/{number}@trunk", hostile)


# -- the caller's keys -----------------------------------------------------------------


def press(dialog: Dialog, keys: str) -> list[str]:
    return [dialog.press(key) for key in keys]


def test_1_confirms_the_caller_id() -> None:
    dialog = Dialog("15551230001")
    assert press(dialog, "1") == [CONFIRMED]
    assert dialog.number == "15551230001"


def test_another_number_is_keyed_and_ended_by_pound() -> None:
    dialog = Dialog("15551230001")
    assert press(dialog, "5551234#") == [COLLECTING] * 7 + [CONFIRMED]
    assert dialog.number == "5551234"


def test_without_a_usable_caller_id_1_starts_a_keyed_number() -> None:
    dialog = Dialog(None)
    assert press(dialog, "1234#") == [COLLECTING] * 4 + [CONFIRMED]
    assert dialog.number == "1234"


@pytest.mark.parametrize("keys", ["*", "12#", "#", "55*"])
def test_other_keys_and_short_numbers_are_refused(keys: str) -> None:
    dialog = Dialog("15551230001")
    assert press(dialog, keys)[-1] == REFUSED
    assert dialog.number is None


def test_a_keyed_number_longer_than_the_bound_is_refused() -> None:
    dialog = Dialog(None, max_digits=5)
    assert press(dialog, "123456") == [COLLECTING] * 5 + [REFUSED]


@given(st.lists(st.sampled_from(list("0123456789*#ABCD")), max_size=30))
def test_any_keys_end_in_a_safe_number_or_none(keys: list[str]) -> None:
    dialog = Dialog("+15551230001")
    for key in keys:
        step = dialog.press(key)
        assert step in (COLLECTING, CONFIRMED, REFUSED)
        if step != COLLECTING:
            break
    if dialog.number is not None:
        assert _SAFE.fullmatch(dialog.number)


# -- attempts --------------------------------------------------------------------------


@pytest.mark.parametrize(("result", "attempts", "expected"), [
    ("busy", 1, 1120.0),
    ("no_answer", 2, 1120.0),
    ("failed", 2, 1120.0),
    ("agent_gone", 1, 1120.0),
    ("no_answer", 3, None),  # first attempt + 2 retries used
    ("answered", 1, None),
    ("agent_missed", 5, 1000.0),  # the agent's miss: offered again at once
])
def test_retries_follow_the_queue_rules(result: str, attempts: int,
                                        expected: float | None) -> None:
    assert next_attempt(SETTINGS, attempts, result, 1000.0) == expected


def test_no_retries_means_one_attempt() -> None:
    once = SETTINGS.model_copy(update={"retries": 0})
    assert next_attempt(once, 1, "busy", 1000.0) is None


@pytest.mark.parametrize(("status", "result"), [
    ("NOANSWER", "no_answer"), ("BUSY", "busy"), ("CHANUNAVAIL", "failed"),
    ("CONGESTION", "failed"), ("RINGING", None), ("PROGRESS", None), ("ANSWER", None)])
def test_dial_statuses(status: str, result: str | None) -> None:
    assert result_from_dialstatus(status) == result


@pytest.mark.parametrize(("cause", "result"), [(17, "busy"), (19, "no_answer"),
                                               (18, "no_answer"), (1, "failed"), (34, "failed")])
def test_hangup_causes(cause: int, result: str) -> None:
    assert result_from_cause(cause) == result


def test_every_result_is_a_stored_value() -> None:
    for result in ("no_answer", "busy", "failed", "agent_gone", "agent_missed", "answered"):
        assert CallbackResult(result).value == result


def test_a_callback_is_routed_before_the_overflow_step_forever() -> None:
    queue = Queue.model_validate({"relax": [{"after": 60, "any_agent": True},
                                            {"after": 240, "overflow": {"voicemail": "x"}}]})
    policy = QueuePolicy.from_config("sales", queue)
    assert decision_time(policy, 1000.0, 1100.0) == 1100.0
    later = decision_time(policy, 1000.0, 5000.0)
    assert policy.stage_at(later - 1000.0).any_agent
    assert policy.stage_at(later - 1000.0).overflow is None
    no_overflow = QueuePolicy.from_config("sales", Queue())
    assert decision_time(no_overflow, 1000.0, 5000.0) == 5000.0


# -- config ----------------------------------------------------------------------------

QUEUES = """\
skills: [sales]
queues:
  sales:
    skills: [sales]
    callback: {value}
agents:
  alice: {extension: "1001", skills: {sales: 5}}
voicemail:
  general: {mailbox: "8000", name: General}
"""


def test_defaults(tmp_path: Path) -> None:
    text = QUEUES.replace("{value}", '{dial: "PJSIP/{number}@trunk"}')
    callback = load(tmp_path, queues=text).config.queues["sales"].callback
    assert callback == Callback(key="5", after=30, dial="PJSIP/{number}@trunk", retries=2,
                                retry_delay=120, ring_timeout=30, prompt=None, max_digits=15)


def test_no_callback_by_default(tmp_path: Path) -> None:
    text = QUEUES.replace("    callback: {value}\n", "")
    assert load(tmp_path, queues=text).config.queues["sales"].callback is None


@pytest.mark.parametrize(("value", "path", "message"), [
    ('{key: "x", dial: "PJSIP/{number}@t"}', "queues.sales.callback.key", ""),
    ('{dial: "PJSIP/1555@trunk"}', "queues.sales.callback.dial", "{number} exactly once"),
    ('{dial: "PJSIP/{number}@{number}"}', "queues.sales.callback.dial", "{number} exactly once"),
    ('{dial: "PJSIP/{num}@trunk"}', "queues.sales.callback.dial", "{number} exactly once"),
    ('{dial: "PJSIP/{number},30"}', "queues.sales.callback.dial", "a dial string with {number}"),
    ('{dial: "PJSIP/{number}&PJSIP/x"}', "queues.sales.callback.dial",
     "a dial string with {number}"),
    ('{dial: "Local/{number}@ctx", retries: -1}', "queues.sales.callback.retries",
     "greater than or equal to 0"),
    ('{dial: "Local/{number}@ctx", ring_timeout: 500}', "queues.sales.callback.ring_timeout",
     "less than or equal to 120"),
    ("{after: 30}", "queues.sales.callback", "missing required key 'dial'"),
    ('{dail: "PJSIP/{number}"}', "queues.sales.callback", "did you mean 'dial'"),
])
def test_bad_values_are_located_errors(tmp_path: Path, value: str, path: str,
                                       message: str) -> None:
    found = errors(tmp_path, queues=QUEUES.replace("{value}", value))
    error = find(found, path)
    assert error.line == 5, lines(found)
    assert message in error.message, error.message


# -- events ----------------------------------------------------------------------------


def test_a_callback_request_is_app_queues_exitwithkey() -> None:
    """app_queue logs a caller who leaves by a key as EXITWITHKEY|key|position|
    origposition|waittime: reporting tools see a callback request the same way."""
    from datetime import UTC, datetime

    from callcenter.events import CallbackAttemptEnded, CallbackRequested
    from callcenter.reporting.queue_log import QueueLogLine, queue_log_lines

    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    event = CallbackRequested(at=at, queue="sales", call="pbx-1.7", key="5",
                              source="caller_id", position=2, original_position=3,
                              wait_seconds=41.6)
    assert queue_log_lines(event, lambda agent: f"PJSIP/{agent}") == [
        QueueLogLine("sales", "pbx-1.7", "NONE", "EXITWITHKEY", ("5", "2", "3", "42"))]
    attempt = CallbackAttemptEnded(at=at, queue="sales", call="pbx-1.7", agent="carmen",
                                   result="busy", cause=17)
    assert queue_log_lines(attempt, lambda agent: f"PJSIP/{agent}") == []


# -- the offer's start ------------------------------------------------------------------


@pytest.mark.parametrize(("reserved_for", "held", "offering", "under_way", "start"), [
    ("cb", True, True, False, RING),
    ("cb", True, True, True, RELEASE),  # ring_all: one attempt at a time
    ("cb", False, True, False, RELEASE),  # the callback is over
    ("cb", True, False, False, RELEASE),
    ("other", True, True, False, LOST),  # freed, then reserved for another
    (None, True, True, False, LOST),  # freed (the watchdog, another node)
    (None, False, False, True, LOST),
])
def test_a_callback_rings_only_an_agent_still_reserved_for_it(
        reserved_for: str | None, held: bool, offering: bool, under_way: bool,
        start: str) -> None:
    assert offer_start(call="cb", reserved_for=reserved_for, held=held, offering=offering,
                       attempt_under_way=under_way) == start
