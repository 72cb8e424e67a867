"""Messages left after hours, on real calls: a caller into sales while its schedule is
closed leaves a message, which becomes a callback; when the schedule opens, carmen (a
registered baresip phone) hears the message, then the caller's number is dialled and a
real SIP phone (a sipp UAS, as in the callback tests) answers.

The caller is a Local channel the test originates into ``cc-queue,sales``: its other
half, in an ARI app of the test's own, plays ``tt-monkeys``, so the router records real
audio. The schedule opens about a minute after the test starts (a special day in a zone
where that minute is around noon): the router is restarted in between, so the message
callback is re-adopted from the database and held until the real clock reaches the
opening. An ARI app of the test's own sees every playback and ``Dial`` event: the order
of the message and the customer's leg is Asterisk's, not the router's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callcenter.agents.state import Unpause
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.ari.client import ARIError
from callcenter.asterisk.ari.events import (
    Dial,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    StasisStart,
)
from callcenter.config.models import CallCenterConfig, Schedule, WhenUnavailable
from callcenter.events import MessageCallbackRegistered, MessageTaken
from callcenter.storage.models import CallbackAttempt, CallbackRequest, Recording
from callcenter.testing.aio import cancel_and_wait
from tests.conftest import PBX
from tests.integration.router_harness import channel_events, start_router, with_queue
from tests.integration.test_queue_callback import (
    _ANSWER,
    callback_config,
    customer,
    take,
)
from tests.integration.test_queue_unavailable import Events, login_paused


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The router's INFO lines in a failure's report: these tests wait on a chain of
    steps (admitted, left, prompt, beep, recorded, stored), and a timeout alone does not
    say which step never came (seen once in a loaded full run)."""
    caplog.set_level(logging.INFO)


OBSERVER_APP = "cc-test-messages"
CALLER_APP = "cc-test-talker"
MAX_SECONDS = 6


@dataclass(frozen=True)
class Seen:
    """A playback or Dial event: (type, channel, media or dial status), when it came."""

    type: str
    channel: str
    detail: str


def _seen(event: Event) -> Seen | None:
    match event:
        case PlaybackStarted(playback=p) | PlaybackFinished(playback=p):
            return Seen(event.type, p.target_uri.removeprefix("channel:"), p.media_uri)
        case Dial(peer=peer, dialstatus=status):
            return Seen("Dial", peer.id, status)
    return None


def opening_at(opens: datetime) -> Schedule:
    """A schedule closed until *opens* (a whole minute, UTC), open after it until 23:00
    local time: a special day in the ``Etc/GMT`` zone where *opens* is about noon, so the
    test never straddles a local midnight."""
    hours = (12 - opens.hour + 12) % 24 - 12  # local = UTC + hours, -12..11
    zone = "Etc/GMT" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
    local = opens.astimezone(ZoneInfo(zone))
    return Schedule.model_validate({
        "timezone": zone, "hours": {"mon-sun": "closed"},
        "special_days": [{"date": local.date().isoformat(),
                          "hours": f"{local:%H:%M}-23:00"}]})


def message_config(pbx: PBX, dial: object, opens: datetime) -> CallCenterConfig:
    """Sales with callbacks and take_message, its schedule opening at *opens*."""
    base = callback_config(pbx, dial)  # type: ignore[arg-type]
    config = base.model_copy(update={"schedules": {**base.schedules, "late": opening_at(opens)}})
    rule = WhenUnavailable.model_validate({
        "schedule": "late", "no_agents": "never",
        "take_message": {"prompt": "silence/1", "max_seconds": MAX_SECONDS,
                         "max_silence": 5}})
    return with_queue(config, "sales", relax=(), when_unavailable=rule)


@contextlib.asynccontextmanager
async def talking_caller(pbx: PBX) -> AsyncIterator[ARIClient]:
    """An ARI app of the test's own whose channels play monkeys once answered: the far
    half of a Local channel whose near half calls the queue."""
    creds = pbx.instance.credentials
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=CALLER_APP) as ari, \
            ari.events() as stream:

        async def talk() -> None:
            async for event in stream:
                if isinstance(event, StasisStart):
                    with contextlib.suppress(ARIError):  # hung up already
                        await ari.channels.play(event.channel.id,
                                                ["sound:tt-monkeys", "sound:tt-monkeys"])

        task = asyncio.create_task(talk(), name="talking caller")
        try:
            yield ari
        finally:
            await cancel_and_wait(task)


async def test_a_message_left_after_hours_is_called_back_when_the_queue_opens(
        clean_pbx: PBX) -> None:
    phone = customer(clean_pbx)
    number = "15558891001"
    opens = (datetime.now(UTC) + timedelta(seconds=90)).replace(second=0, microsecond=0)
    config = message_config(clean_pbx, phone, opens)
    events = Events()
    async with channel_events(clean_pbx, OBSERVER_APP, _seen) as seen, \
            talking_caller(clean_pbx) as talker:
        async with start_router(clean_pbx, config, listeners=[events]) as running:
            router = running.router
            await talker.channels.originate(
                "Local/sales@cc-queue", app=CALLER_APP, caller_id=f'"Customer" <{number}>')
            async with asyncio.timeout(60):
                await router.wait_until(lambda: any(
                    p.message is not None for p in router.callbacks.pending.values()))
            [channel] = list(router.callbacks.pending)
            async with asyncio.timeout(30):  # thanked and hung up
                await router.after_hours.taken(channel).wait()
            assert running.numbers[channel] == number
            assert channel in router.after_hours.held  # closed: not offered to anyone
            assert [c.id for c in router.index.waiting()] == []
            directory = router.recorder.directory
        assert datetime.now(UTC) < opens, "the message took too long: the queue is open"
        assert directory is not None
        async with router.sessions() as session:
            request = (await session.execute(select(CallbackRequest).where(
                CallbackRequest.number == number))).scalar_one()
            recording = await session.get(Recording, request.recording_id)
        assert (request.number_source, request.status) == ("message", "pending")
        assert recording is not None and recording.name == f"sales/message-{channel}"
        assert recording.path == f"sales/message-{channel}.wav"
        assert recording.duration is not None and 3 <= recording.duration <= MAX_SECONDS + 2
        assert (directory / recording.path).stat().st_size > 8000 * 2 * 3  # 3 s of audio
        taken = [e for e in events.of(channel)
                 if isinstance(e, MessageTaken | MessageCallbackRegistered)]
        assert [type(e) for e in taken] == [MessageTaken, MessageCallbackRegistered], taken
        assert isinstance(taken[0], MessageTaken) and taken[0].reason == "closed"

        # A new router: the message callback is re-adopted and held until the opening.
        async with start_router(clean_pbx, config) as running, \
                clean_pbx.agent_phone("carmen") as carmen:
            router = running.router
            running.numbers[channel] = number
            assert router.callbacks.pending[channel].message == recording.name
            assert channel in router.after_hours.held
            await running.login("carmen")
            answering = asyncio.create_task(phone.take(_ANSWER))
            async with asyncio.timeout(150):
                await router.wait_until(lambda: channel not in router.after_hours.held)
            assert datetime.now(UTC) >= opens
            served = await take(carmen, running, number)
            await answering
            queued = await running.queued(number)
            async with router.sessions() as session:
                request = (await session.execute(select(CallbackRequest).where(
                    CallbackRequest.number == number))).scalar_one()
                attempts = (await session.execute(select(CallbackAttempt).where(
                    CallbackAttempt.callback_id == request.id))).scalars().all()
    assert served.startswith(f"sip:{number}@"), served
    assert [(a.agent, a.result) for a in attempts] == [("carmen", "answered")]
    assert (request.status, queued.outcome, queued.agent) == ("done", "answered", "carmen")
    agent_leg, customer_leg = f"{channel}-cb1a", f"{channel}-cb1c"
    media = f"recording:{recording.name}"
    played = [i for i, s in enumerate(seen) if s.channel == agent_leg and s.detail == media]
    assert [seen[i].type for i in played] == ["PlaybackStarted", "PlaybackFinished"], seen
    dialled = [i for i, s in enumerate(seen) if s.type == "Dial" and s.channel == customer_leg]
    assert dialled and played[1] < dialled[0], seen  # the message first, then the customer
    assert Seen("Dial", customer_leg, "ANSWER") in seen


async def test_a_caller_waiting_max_wait_leaves_a_message_with_its_place(
        clean_pbx: PBX) -> None:
    """sales is open but carmen is paused: the caller waits, and at ``max_wait`` leaves
    its bridge for the prompt and the beep instead of the destination. Its queued call
    stays open (the callback's place); the queue is open, so the callback is queued at
    once, and when carmen unpauses she hears the message, then the caller is dialled."""
    phone = customer(clean_pbx)
    number = "15558891002"
    base = callback_config(clean_pbx, phone)
    rule = WhenUnavailable.model_validate({
        "schedule": "always", "no_agents": "never", "max_wait": 2,
        "take_message": {"prompt": "silence/1", "max_seconds": 5, "max_silence": 5}})
    always = Schedule.model_validate({"timezone": "UTC", "hours": {"mon-sun": "00:00-24:00"}})
    config = with_queue(base.model_copy(update={"schedules": {**base.schedules,
                                                              "always": always}}),
                        "sales", relax=(), when_unavailable=rule)
    events = Events()
    async with channel_events(clean_pbx, OBSERVER_APP, _seen) as seen, \
            talking_caller(clean_pbx) as talker, \
            start_router(clean_pbx, config, listeners=[events]) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        router = running.router
        await login_paused(running, "carmen")
        await talker.channels.originate(
            "Local/sales@cc-queue", app=CALLER_APP, caller_id=f'"Customer" <{number}>')
        async with asyncio.timeout(60):
            await router.wait_until(lambda: any(
                p.message is not None for p in router.callbacks.pending.values()))
        [channel] = list(router.callbacks.pending)
        async with asyncio.timeout(30):
            await router.after_hours.taken(channel).wait()
        assert channel not in router.after_hours.held  # open: queued at once
        assert [c.id for c in router.index.waiting()] == [channel]
        answering = asyncio.create_task(phone.take(_ANSWER))
        now = router.clock()
        await router.store.apply("carmen", Unpause(), now, reason="test")
        router.agent_changed("carmen")
        served = await take(carmen, running, number)
        await answering
        queued = await running.queued(number)
    assert served.startswith(f"sip:{number}@"), served
    assert (queued.outcome, queued.agent) == ("answered", "carmen")
    taken = [e for e in events.of(channel) if isinstance(e, MessageTaken)]
    assert [e.reason for e in taken] == ["max_wait"], events.of(channel)
    agent_leg = f"{channel}-cb1a"
    assert [s.type for s in seen if s.channel == agent_leg
            and s.detail == f"recording:sales/message-{channel}"] == [
        "PlaybackStarted", "PlaybackFinished"], seen
