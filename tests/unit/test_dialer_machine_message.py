"""A message left on an answering machine (``amd.on_machine: leave_message``): which
campaigns leave one, what the attempt's reason says, the ``beep`` extension of the AMD
context, and :func:`leave_message`'s ARI conversation against a fake that speaks the
client's protocol (the calls it makes, the events Asterisk sends back in its order).
The real call: ``tests/integration/test_dialer_machine_message.py``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.asterisk import variables as V
from callcenter.asterisk.ari.client import ARINotFound
from callcenter.asterisk.ari.events import Event, Playback, parse_event
from callcenter.config.campaign import Amd
from callcenter.dialer.amd import AMD_CONTEXT, BEEP_EXTEN, DIALER_APP, BeepSettings
from callcenter.dialer.machine_message import (
    MachineMessage,
    leave_message,
    message_for,
    summarise,
)
from callcenter.dialer.retry import after_attempt
from callcenter.storage import (
    default_sqlite_url,
    make_engine,
    make_sessionmaker,
    upgrade,
)
from callcenter.storage.campaigns import CampaignRepository, NewContact, with_note
from callcenter.storage.models import (
    REASON_MAX,
    AttemptOutcome,
    ContactAttempt,
    ContactState,
)
from callcenter.testing.carrier import carrier_files
from dialplan.dialer import amd_context

CHANNEL = "cc-dial-0123"


@dataclass(frozen=True)
class _Contact:
    number: str = "+15550104000"
    timezone: str | None = "UTC"
    attempts: int = 1
SOUND = "vm-tocallback"


# -- which campaigns leave a message --------------------------------------------------------

@pytest.mark.parametrize("amd, sound", [
    ({}, None),
    ({"enabled": True}, None),
    ({"enabled": True, "on_machine": "hangup", "message": SOUND}, None),
    ({"enabled": False, "on_machine": "leave_message", "message": SOUND}, None),
    ({"enabled": True, "on_machine": "leave_message", "message": SOUND}, SOUND),
])
def test_only_an_enabled_leave_message_amd_leaves_its_sound(amd: dict[str, object],
                                                            sound: str | None) -> None:
    assert message_for(Amd.model_validate(amd)) == sound


# -- what the attempt records ------------------------------------------------------------------

@pytest.mark.parametrize("seen, left, why", [
    ({"beep": "SILENCE", "playback": "done", "gone": False}, True, ""),
    ({"beep": "TIMEOUT", "playback": "done", "gone": False}, True, ""),
    ({"beep": "", "playback": "", "gone": True}, False, "hung up before the beep"),
    ({"beep": "SILENCE", "playback": "", "gone": True}, False, "hung up before the message"),
    ({"beep": "SILENCE", "playback": "playing", "gone": True}, False, "during the message"),
    ({"beep": "SILENCE", "playback": "failed", "gone": False}, False, "playback failed"),
    ({"beep": "SILENCE", "playback": "playing", "gone": False, "timed_out": True}, False,
     "took too long"),
    ({"beep": "", "playback": "", "gone": False}, False, "did not come back"),
])
def test_a_message_is_left_only_when_its_whole_playback_finished(
        seen: dict[str, object], left: bool, why: str) -> None:
    message = summarise(SOUND, **seen)  # type: ignore[arg-type]
    assert message.left is left
    assert why in message.why
    assert message.note.startswith(f"machine: message {SOUND} ")
    assert ("not left" in message.note) is not left


def test_the_note_says_whether_the_beep_was_heard() -> None:
    assert MachineMessage(SOUND, True, "SILENCE", "done").note == \
        f"machine: message {SOUND} left after the beep"
    assert MachineMessage(SOUND, True, "TIMEOUT", "done").note == \
        f"machine: message {SOUND} left with no pause heard for the beep"


def test_a_machine_with_leave_message_is_done_and_with_hangup_retried() -> None:
    from callcenter.config.campaign import Campaign

    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    base = {"mode": "progressive", "trunk": "carrier", "caller_id": "+15550100000",
            "calling_windows": {"mon-sun": "00:00-24:00"}}
    leave = Campaign.model_validate({**base, "amd": {
        "enabled": True, "on_machine": "leave_message", "message": SOUND}})
    hang = Campaign.model_validate({**base, "amd": {"enabled": True}})
    contact = _Contact()
    assert after_attempt(contact, leave, "machine", None, now).state == "done"
    assert after_attempt(contact, hang, "machine", None, now).state == "pending"
    # A message the machine did not get (hung up before the beep) is retried as hung up.
    missed = after_attempt(contact, leave, "machine", None, now, message_left=False)
    assert (missed.state, missed.next_attempt_at) == (
        "pending", now + timedelta(seconds=leave.retry.machine.delay))


def test_the_note_joins_the_attempts_reason_within_its_column() -> None:
    assert with_note(None, "machine: message x left") == "machine: message x left"
    assert with_note("window 09:00-20:00", "n") == "window 09:00-20:00; n"
    long = with_note("r" * REASON_MAX, "machine: message x left")
    assert len(long) == REASON_MAX and long.endswith("; machine: message x left")
    assert with_note("r", "n" * (REASON_MAX + 9)) == "n" * REASON_MAX


async def test_end_attempt_adds_the_note_to_the_reason(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    try:
        async with sessions.begin() as session:
            await CampaignRepository(session).import_contacts(
                "renewals", [NewContact("+15550104000", "UTC")])
        async with sessions.begin() as session:
            (due,) = await CampaignRepository(session).claim_due("renewals", now, 1)
        async with sessions.begin() as session:
            attempt = await CampaignRepository(session).start_attempt(
                due.id, at=now, rule="ok", reason="inside the window")
        async with sessions.begin() as session:
            await CampaignRepository(session).end_attempt(attempt, outcome=AttemptOutcome.MACHINE,
                                   at=now + timedelta(seconds=20),
                                   next_state=ContactState.DONE,
                                   reason_note="machine: message vm-tocallback left")
        async with sessions() as session:
            row = await session.scalar(select(ContactAttempt))
        assert row is not None and row.outcome is AttemptOutcome.MACHINE
        assert row.reason == "inside the window; machine: message vm-tocallback left"
    finally:
        await engine.dispose()


# -- the dialplan -----------------------------------------------------------------------------

def test_the_beep_extension_waits_for_silence_then_returns_to_the_dialer() -> None:
    text = amd_context(beep=BeepSettings(silence=1200, timeout=15))
    block = text.split(f"exten => {BEEP_EXTEN},1,", 1)[1].splitlines()
    assert block == [
        "NoOp(callcenter dialer waits for the beep on ${CHANNEL(name)})",
        " same => n,WaitForSilence(1200,1,15)",
        " same => n,Set(CC_AMD_BEEP=${WAITSTATUS})",
        " same => n,Stasis(cc-dialer,beep)",
        ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?failed)',
        " same => n,Hangup(16)",
        (" same => n(failed),Log(WARNING,dialer cc-dialer not running: ${CHANNEL(name)} hung "
         "up after the beep)"),
        " same => n,Hangup(41)",
    ]
    assert BeepSettings().arguments() == "1500,1,20"


def test_the_carrier_machine_records_what_it_hears_after_its_beep() -> None:
    plan = carrier_files("callcenter", "A" * 20,
                         recordings=Path("/srv/carrier/machine"))["extensions_callcenter.conf"]
    block = plan.split("exten => _+15550104XXX,1,", 1)[1].split("\nexten", 1)[0]
    assert "Playback(beep)\n same => n,Record(/srv/carrier/machine/machine-${EXTEN:1}-" \
           "${UNIQUEID}.wav,0,${IF($[\"${EXTEN:-2}\" = \"00\"]?10:${EXTEN:-2})},kqx)" in block
    for bad in ("relative/dir", "/srv/a,b", "/srv/${SHELL(id)}", "/srv/a;b", "/srv/a b"):
        with pytest.raises(ValueError, match="recordings"):
            carrier_files("callcenter", "A" * 20, recordings=Path(bad))


# -- leave_message's ARI conversation -----------------------------------------------------------

def _event(kind: str, **extra: object) -> Event:
    channel = {"id": CHANNEL, "name": "Local/+15550104000@cc-trunk-carrier-out-1;1",
               "state": "Up", "caller": {"name": "", "number": ""},
               "connected": {"name": "", "number": ""},
               "dialplan": {"context": AMD_CONTEXT, "exten": BEEP_EXTEN, "priority": 4}}
    return parse_event({"type": kind, "application": DIALER_APP, "channel": channel,
                        **extra})


def _playback_event(kind: str, playback_id: str, state: str) -> Event:
    return parse_event({"type": kind, "application": DIALER_APP, "playback": {
        "id": playback_id, "media_uri": f"sound:{SOUND}", "target_uri": f"channel:{CHANNEL}",
        "state": state}})


@dataclass
class FakeChannels:
    """``ari.channels`` as far as :func:`leave_message` uses it: each call is recorded
    and answered with what Asterisk would put in the channel's inbox next."""

    inbox: asyncio.Queue[Event]
    after_continue: list[Event]
    after_play: list[str | Event]  # a playback state ("done") or an event
    variable: str | None = None
    calls: list[tuple[object, ...]] = field(default_factory=list)

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str,
                                   priority: int) -> None:
        self.calls.append(("continue", channel_id, context, extension, priority))
        for event in self.after_continue:
            self.inbox.put_nowait(event)

    async def get_variable(self, channel_id: str, name: str) -> str:
        self.calls.append(("get", channel_id, name))
        if self.variable is None:
            raise ARINotFound(404, "Channel not found", "GET", f"/channels/{channel_id}/variable")
        return self.variable

    async def play(self, channel_id: str, media: str, *, playback_id: str) -> Playback:
        self.calls.append(("play", channel_id, media))
        for item in self.after_play:
            self.inbox.put_nowait(_playback_event("PlaybackFinished", playback_id, item)
                                  if isinstance(item, str) else item)
        return Playback(playback_id, media, f"channel:{channel_id}", "queued")


@dataclass
class FakeAri:
    channels: FakeChannels


async def _leave(after_continue: list[Event], after_play: list[str | Event], *,
                 variable: str | None = None, budget: float = 5.0):  # type: ignore[no-untyped-def]
    inbox: asyncio.Queue[Event] = asyncio.Queue()
    ari = FakeAri(FakeChannels(inbox, after_continue, after_play, variable))
    result = await leave_message(ari, inbox, CHANNEL, SOUND, budget=budget)  # type: ignore[arg-type]
    return result, ari.channels.calls


BACK = _event("StasisStart", args=["beep"])
BEEP = _event("ChannelVarset", variable=V.AMD_BEEP, value="SILENCE")
GONE = _event("ChannelDestroyed", cause=16, cause_txt="Normal Clearing")


async def test_the_message_is_played_once_the_call_is_back_from_the_beep_wait() -> None:
    (message, gone), calls = await _leave([BEEP, BACK], ["done"])
    assert message == MachineMessage(SOUND, True, "SILENCE", "done")
    assert gone is None
    assert calls == [("continue", CHANNEL, AMD_CONTEXT, BEEP_EXTEN, 1),
                     ("play", CHANNEL, f"sound:{SOUND}")]


async def test_the_beep_status_is_asked_for_when_its_varset_was_not_seen() -> None:
    (message, _), calls = await _leave([BACK], ["done"], variable="TIMEOUT")
    assert (message.left, message.beep) == (True, "TIMEOUT")
    assert ("get", CHANNEL, V.AMD_BEEP) in calls


async def test_a_machine_that_hangs_up_before_the_beep_gets_nothing() -> None:
    (message, gone), calls = await _leave([GONE], [])
    assert not message.left and "before the beep" in message.why
    assert gone is not None and gone.cause == 16
    assert [c[0] for c in calls] == ["continue"]


async def test_a_machine_that_hangs_up_during_the_message_has_none_left() -> None:
    (message, gone), _ = await _leave([BEEP, BACK], [GONE])
    assert not message.left and "during the message" in message.why
    assert gone is not None


async def test_a_wait_that_never_ends_is_bounded() -> None:
    (message, gone), _ = await _leave([], [], budget=0.2)
    assert not message.left and message.why == "took too long" and gone is None


def test_an_answered_call_waits_for_a_disposition_only_when_an_agent_gives_one() -> None:
    from callcenter.config.campaign import Campaign

    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    base = {"trunk": "carrier", "caller_id": "+15550100000"}
    survey = Campaign.model_validate({**base, "mode": "agentless", "message": SOUND})
    agents = Campaign.model_validate({**base, "mode": "progressive"})
    assert after_attempt(_Contact(), survey, "answered", None, now).reason == "answered live"
    assert after_attempt(_Contact(), agents, "answered", None, now).reason == \
        "answered live, awaiting disposition"
