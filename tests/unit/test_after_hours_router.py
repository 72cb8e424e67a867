"""The router's side of messages left after hours, on a real router (SQLite store, an ARI
client aimed at a loopback port nobody listens on) and events as Asterisk sends them:
which events the component takes (and which it leaves to the others), who may leave a
message, and a held message callback released once its queue's schedule opens."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.callback import Pending
from ari_apps.queue_router import Caller, QueueRouter
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.ari.events import parse_event
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.loader import load_config
from callcenter.config.models import Callback, Schedule, WhenUnavailable
from callcenter.routing.policy import WaitingCall
from tests.integration.router_harness import with_queue
from tests.unit.test_queue_router_offers import EXAMPLE, closed_port

#: A Monday; the schedule "late" opens at 09:00 UTC.
MONDAY = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def router(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[QueueRouter]:
    """The example's router with sales taking messages, its schedule open 09:00-17:00."""
    base = load_config(EXAMPLE).config
    late = Schedule.model_validate({"timezone": "UTC", "hours": {"mon-sun": "09:00-17:00"}})
    config = with_queue(
        base.model_copy(update={"schedules": {**base.schedules, "late": late}}), "sales",
        callback=Callback(dial="PJSIP/{number}@trunk"),
        when_unavailable=WhenUnavailable(schedule="late", take_message=True))
    async with ARIClient(f"http://127.0.0.1:{closed_port()}/ari", username="u", password="p",
                         app=config.settings.queue_app, request_timeout=2) as ari:
        yield QueueRouter(config, ari, sessions, node="pbx1",
                          clock=Clock(MONDAY.replace(hour=8)))


def playback_finished(playback_id: str, channel: str) -> dict[str, object]:
    return {"type": "PlaybackFinished", "application": "cc-queue",
            "playback": {"id": playback_id, "media_uri": "sound:vm-intro",
                         "target_uri": f"channel:{channel}", "language": "en",
                         "state": "done"}}


def recording_finished(name: str, duration: int = 4) -> dict[str, object]:
    return {"type": "RecordingFinished", "application": "cc-queue",
            "recording": {"name": name, "format": "wav", "state": "done",
                          "target_uri": "channel:1.1", "duration": duration}}


async def test_other_components_playbacks_are_not_swallowed(router: QueueRouter) -> None:
    """A callback prompt's PlaybackFinished reaches the callbacks (the feature-code
    handler used to take every PlaybackFinished); a message prompt's is this component's."""
    done = router.callbacks._playbacks["cc-callback-1.1-1"] = asyncio.Event()
    await router.on_event(parse_event(playback_finished("cc-callback-1.1-1", "1.1")))
    assert done.is_set()
    assert not router._feature_event(parse_event(playback_finished("x", "1.1")))
    mine = router.after_hours._playbacks["cc-message-2.2-1"] = asyncio.Event()
    assert router.after_hours.on_event(parse_event(playback_finished("cc-message-2.2-1",
                                                                     "2.2")))
    assert mine.is_set()


async def test_only_its_own_recordings_end_here(router: QueueRouter) -> None:
    """A call recording's end is the recorder's; a message's sets its end and length."""
    assert not router.after_hours.on_event(parse_event(recording_finished("sales/1.1-o1")))
    from ari_apps.after_hours import _Recording

    live = router.after_hours._recordings["sales/message-1.1"] = _Recording(
        "sales/message-1.1")
    assert router.after_hours.on_event(parse_event(recording_finished("sales/message-1.1")))
    assert live.finished.is_set() and live.duration == 4.0


async def test_a_caller_id_that_is_no_number_goes_on_as_before(router: QueueRouter) -> None:
    call = QueueCall("sales")
    for number in ("anonymous", "1555$PJSIP/evil,tT", ""):
        assert not router.after_hours.refused("1.1", number, call, "closed", MONDAY)
    assert not router.after_hours.refused("1.1", "15551234", QueueCall("support"),
                                          "closed", MONDAY)  # support takes no messages


async def test_a_held_message_callback_is_queued_when_the_schedule_opens(
        router: QueueRouter) -> None:
    clock = router.clock
    assert isinstance(clock, Clock)
    waiting = WaitingCall("1.1", "sales", MONDAY.timestamp(), 5, ("sales",), None, 0)
    caller = Caller("1.1", QueueCall("sales"), 1, waiting, "cc-1.1", number="15551234")
    router.callers["1.1"] = caller
    settings = router.config.queues["sales"].callback
    assert settings is not None
    router.callbacks.pending["1.1"] = Pending(caller, 1, "15551234", settings,
                                              caller_gone=True, message="sales/message-1.1")
    assert router.after_hours.hold(caller)  # 08:00: closed
    assert caller.phase == "offering" and list(router.index.waiting()) == []
    await router.after_hours.release(clock())
    assert "1.1" in router.after_hours.held
    clock.now = MONDAY.replace(hour=9)
    await router.after_hours.release(clock())
    assert router.after_hours.held == {}
    assert caller.phase == "waiting" and [c.id for c in router.index.waiting()] == ["1.1"]
