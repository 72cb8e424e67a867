"""Messages left after hours, the pure parts: who may leave one, what is a message, the
recording's name and the media the agent hears, the schedule gate that releases them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ari_apps.unavailable import Gate
from callcenter.config.models import (
    Callback,
    CallCenterConfig,
    Queue,
    Schedule,
    WhenUnavailable,
)
from callcenter.events import MessageCallbackRegistered, MessageTaken
from callcenter.recording.naming import message_name, split_path
from callcenter.reporting.queue_log import queue_log_lines
from callcenter.routing.after_hours import (
    MESSAGE_SOURCE,
    callback_number_of,
    is_message,
    message_media,
    overflow_to,
)
from tests.unit.test_availability import center

CALLBACK = Callback(dial="PJSIP/{number}@trunk", max_digits=12)


def queue(take: object = True, callback: Callback | None = CALLBACK) -> Queue:
    rule = WhenUnavailable.model_validate({"schedule": "office", "take_message": take})
    return Queue(when_unavailable=rule, callback=callback)


def test_only_a_caller_id_that_is_a_number_is_called_back() -> None:
    assert callback_number_of(queue(), "15551234") == "15551234"
    assert callback_number_of(queue(), " +4930123456 ") == "+4930123456"
    for hostile in ("anonymous", "sip:1555@evil", "1555$PJSIP/evil,tT", "", None,
                    "1234567890123"):  # the last: more digits than max_digits
        assert callback_number_of(queue(), hostile) is None, hostile


def test_a_queue_that_takes_no_message_sends_callers_on_as_before() -> None:
    assert callback_number_of(Queue(), "15551234") is None
    assert callback_number_of(Queue(when_unavailable=WhenUnavailable()), "15551234") is None
    assert callback_number_of(queue(callback=None), "15551234") is None


def test_a_recording_of_a_second_or_more_is_a_message() -> None:
    assert [is_message(d) for d in (None, 0.0, 0.99, 1.0, 42.5)] == [
        False, False, False, True, True]


def test_the_message_name_is_one_safe_path_under_the_queue() -> None:
    assert message_name("sales", "1733050000.12") == "sales/message-1733050000.12"
    for hostile in ("../../etc/passwd", "a/b", "x\nINVITE", ".hidden", "a" * 200):
        name = message_name("sales", hostile)
        assert split_path(name) is not None and name.count("/") == 1, name
        assert name.startswith("sales/"), name


def test_the_agent_hears_the_stored_recording() -> None:
    assert message_media("sales/message-1.2") == "recording:sales/message-1.2"
    for bad in ("../x", "sales/../../x", "sales/a b", "a,b/c&d"):
        with pytest.raises(ValueError):
            message_media(bad)


def test_a_caller_who_left_nothing_is_recorded_with_its_reason() -> None:
    assert overflow_to("closed") == "message:closed"
    assert MESSAGE_SOURCE == "message"


def _with_schedule(hours: str) -> CallCenterConfig:
    config = center(schedule="office", take_message=True)
    schedule = Schedule.model_validate({"timezone": "UTC", "hours": {"mon-sun": hours}})
    return config.model_copy(update={"schedules": {"office": schedule}})


def test_the_gate_opens_with_the_schedule() -> None:
    gate = Gate(_with_schedule("09:00-17:00"))
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    assert not gate.is_open("sales", monday.replace(hour=8, minute=59))
    assert gate.is_open("sales", monday.replace(hour=9))
    assert not gate.is_open("sales", monday.replace(hour=17))
    assert gate.is_open("nosuch", monday)  # no rule: always open


def test_message_events_write_no_queue_log_line() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert queue_log_lines(MessageTaken(at=at, queue="sales", call="1.2", reason="closed",
                                        recording="sales/message-1.2", seconds=4.0),
                           _device) == []
    assert queue_log_lines(MessageCallbackRegistered(at=at, queue="sales", call="1.2",
                                                     callback_id=7), _device) == []


def _device(agent: str) -> str:
    return f"PJSIP/{agent}"
