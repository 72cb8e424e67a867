"""What `callcenter call` reads off AMI events: the phone that answered."""

from __future__ import annotations

from callcenter.testing.route import answered_by


def _dial_end(**fields: str) -> dict[str, str]:
    event = {"Event": "DialEnd", "DialStatus": "ANSWER", "DestLinkedid": "node-1.7",
             "DestChannel": "PJSIP/carmen-0000000a"}
    event.update(fields)
    return event


def test_an_answered_leg_of_the_call_names_its_device() -> None:
    assert answered_by(_dial_end(), "node-1.7") == "PJSIP/carmen"
    assert answered_by(_dial_end(DestChannel="PJSIP/agent-x-y-00000001"),
                       "node-1.7") == "PJSIP/agent-x-y"


def test_other_calls_other_outcomes_and_other_events_name_nobody() -> None:
    assert answered_by(_dial_end(DestLinkedid="node-1.8"), "node-1.7") is None
    for status in ("NOANSWER", "BUSY", "CANCEL", "CHANUNAVAIL", ""):
        assert answered_by(_dial_end(DialStatus=status), "node-1.7") is None
    assert answered_by(_dial_end(Event="DialBegin"), "node-1.7") is None


def test_a_channel_name_without_a_sequence_is_kept_whole() -> None:
    assert answered_by(_dial_end(DestChannel="Local/1000@ctx"), "node-1.7") == "Local/1000@ctx"
    assert answered_by(_dial_end(DestChannel=""), "node-1.7") is None
