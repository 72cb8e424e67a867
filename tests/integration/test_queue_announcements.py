"""Position and estimated-wait announcements on real calls: sipp callers through the
example IVR wait for carmen (a registered baresip phone) who talks a known time; an
independent ARI app subscribed to every channel sees the playbacks on the callers'
channels (PlaybackStarted / PlaybackContinuing / PlaybackFinished with their media URIs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ari_apps.announcer import PLAYBACK_PREFIX
from callcenter.asterisk.ari import ARINotFound
from callcenter.asterisk.ari.events import (
    Event,
    PlaybackFinished,
    PlaybackStarted,
    UnknownEvent,
)
from callcenter.config.models import Announce
from callcenter.routing.announce import prompts
from callcenter.testing.sipp import Keypress
from tests.conftest import PBX
from tests.integration.router_harness import (
    channel_events,
    holds_callers,
    place_call,
    start_router,
    with_queue,
)

OBSERVER_APP = "cc-test-playbacks"
SPANISH_SALES = (Keypress("2", 2500), Keypress("2", 1200))
#: carmen's talk time on each call in turn (the test's stimulus: she hangs up after it).
TALKS = (6.0, 5.0, 7.0, 5.0, 7.0)
WRAPUP = 2
ANNOUNCE = Announce(first_after=2, every=2, position=True, wait=True)


@dataclass(frozen=True)
class Seen:
    """One playback event on a channel, as the observer app received it."""

    type: str
    playback: str
    channel: str
    media: str
    #: PlaybackContinuing's: the media that starts now (its ``media`` just ended).
    next_media: str
    language: str
    at: datetime


def _playback(event: Event) -> Seen | None:
    match event:
        case PlaybackStarted(playback=p) | PlaybackFinished(playback=p):
            return Seen(event.type, p.id, p.target_uri.removeprefix("channel:"),
                        p.media_uri, "", p.language, event.timestamp or datetime.now(UTC))
        case UnknownEvent(raw=raw) if str(raw.get("type", "")).startswith("Playback"):
            p = raw.get("playback", {})
            return Seen(str(raw["type"]), str(p.get("id")),
                        str(p.get("target_uri", "")).removeprefix("channel:"),
                        str(p.get("media_uri")), str(p.get("next_media_uri", "")),
                        str(p.get("language", "")), event.timestamp or datetime.now(UTC))
    return None


def playback_observer(pbx: PBX) -> contextlib.AbstractAsyncContextManager[list[Seen]]:
    """Every playback event of every channel, from an ARI app of the test's own (not the
    router's websocket), in the order Asterisk sent them."""
    return channel_events(pbx, OBSERVER_APP, _playback)


def announcements(seen: list[Seen], channel: str) -> list[list[Seen]]:
    """The playbacks of *channel*, each as its events in order."""
    by_id: dict[str, list[Seen]] = {}
    for s in seen:
        if s.channel == channel:
            by_id.setdefault(s.playback, []).append(s)
    return list(by_id.values())


def media_heard(events: list[Seen]) -> list[str]:
    """The media of one playback in the order they started. Asterisk 22, for a list:
    PlaybackStarted (first media), then per further media PlaybackContinuing (``media``
    the one that ended, ``next_media`` the next) and a PlaybackStarted of the next one;
    PlaybackFinished after the last or when stopped."""
    starts = [e.media for e in events if e.type == "PlaybackStarted"]
    nexts = [e.next_media for e in events if e.type == "PlaybackContinuing"]
    assert starts[1:] == nexts, (starts, nexts)
    return starts


async def test_waiting_callers_hear_position_and_wait_and_nothing_once_answered(
        clean_pbx: PBX, caplog: pytest.LogCaptureFixture) -> None:
    """carmen talks 6, 5, 7, 5, 7 s (wrap-up 2 s). A first call measures the handle time;
    then four callers arrive together: the first in is answered at once, three wait
    behind carmen. Each waiting caller hears, 2 s after it entered and then 2 s after each
    announcement ended, its position and its estimated wait, in English, as one playback;
    nothing starts on a caller's channel once it is answered (one playing then is cut);
    each estimate is compared with the wait the caller really had from that moment."""
    config = with_queue(clean_pbx.loaded.config, "sales", requires=None, wrapup=WRAPUP,
                        announce=ANNOUNCE)
    calls = ("15558881001", "15558881002", "15558881003", "15558881004", "15558881005")
    caplog.set_level(logging.INFO)
    async with playback_observer(clean_pbx) as seen, start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        running.router.announcer.history_since = datetime.now(UTC)
        await running.login("carmen")

        async def talk(count: int) -> None:
            for seconds in TALKS[:count]:
                await carmen.event("CALL_ESTABLISHED")
                await asyncio.sleep(seconds)  # the talk time itself (the stimulus)
                await carmen.hangup()
                await carmen.event("CALL_CLOSED")

        async with asyncio.TaskGroup() as tg:
            agent = tg.create_task(talk(len(calls)))
            placed = [tg.create_task(place_call(clean_pbx, calls[0], hold_ms=60000))]
            await holds_callers(running.router, 1)
            await running.queued(calls[0], timeout=30)  # ended: its handle time is measured
            placed += [tg.create_task(place_call(clean_pbx, number, hold_ms=90000))
                       for number in calls[1:]]
        assert agent.done()
        queued = {number: await running.queued(number) for number in calls}
        made = list(running.router.announcer.announced)
        for one in made:  # every announcement is over: none left playing anywhere
            with pytest.raises(ARINotFound):
                await running.ari.playbacks.get(one.playback_id)
        async with asyncio.timeout(5):  # forgotten at its next pass
            await running.router.wait_until(lambda: not running.router.announcer.tracked)
    for task in placed:
        assert task.result().returncode == 0, task.result().stderr
    assert [q.outcome for q in queued.values()] == ["answered"] * 5
    assert [q.agent for q in queued.values()] == ["carmen"] * 5
    # In the order they were served (of four callers entering within milliseconds, the
    # first parked takes carmen; the router's business, not the announcer's).
    order = sorted(queued.values(), key=lambda q: q.answered_at)  # type: ignore[arg-type,return-value]
    waited = order[2:]
    assert [q.entered_at for q in waited] == sorted(q.entered_at for q in waited)

    # The first call and the first of the four were answered before any announcement.
    for q in order[:2]:
        assert announcements(seen, q.channel_id) == [], q
        assert (q.answered_at - q.entered_at).total_seconds() < ANNOUNCE.first_after  # type: ignore[operator]

    errors: list[tuple[str, int, float, float, float]] = []
    interrupted = 0
    lates: list[float] = []
    for place, q in enumerate(order[2:], start=2):
        heard = announcements(seen, q.channel_id)
        mine = [a for a in made if a.channel_id == q.channel_id]
        assert heard and len(heard) == len(mine), (q, heard, mine)
        previous_end: datetime | None = None
        for index, (events, one) in enumerate(zip(heard, mine, strict=True)):
            started = events[0]
            assert (started.type, started.playback) == ("PlaybackStarted", one.playback_id)
            assert started.playback.startswith(PLAYBACK_PREFIX)
            assert events[-1].type == "PlaybackFinished", events
            assert {e.language for e in events} == {"en"}
            # Position: 1 + the callers who entered before it and were not answered yet.
            ahead = sum(1 for other in order[1:place] if other.answered_at > one.at)  # type: ignore[operator]
            assert one.position == ahead + 1, (q.channel_id, one, ahead)
            assert one.wait is not None, "a handle time was measured: the wait is said"
            expected = prompts(ANNOUNCE, one.position, one.wait)
            heard_media = media_heard(events)
            # What played is the announcement, or its start when the answer cut it.
            assert tuple(heard_media) == expected[:len(heard_media)], (heard_media, expected)
            # At the right time: first_after after entering, then `every` after the end
            # of the previous one (the announcer wakes when one is due).
            due = (q.entered_at + timedelta(seconds=ANNOUNCE.first_after) if previous_end is None
                   else previous_end + timedelta(seconds=ANNOUNCE.every))
            late = (started.at - due).total_seconds()
            lates.append(late)
            assert -0.3 <= late <= 1.5, (q.channel_id, index, late)
            # None starts after the answer; one playing then stops within a second.
            assert started.at < q.answered_at, (q.channel_id, started, q.answered_at)
            end = events[-1].at
            if end > q.answered_at:  # type: ignore[operator]
                assert (end - q.answered_at).total_seconds() < 1.0, (end, q.answered_at)  # type: ignore[operator]
                assert tuple(heard_media) != expected, "an interrupted one was played whole"
                interrupted += 1
            previous_end = end
            real = (q.answered_at - one.at).total_seconds()  # type: ignore[operator]
            errors.append((q.channel_id, one.position, one.wait, real, one.wait - real))
    print("\nannouncements started after they were due (s):",
          " ".join(f"{late:+.2f}" for late in lates))
    print("estimate vs real wait (s): caller, position, estimate, real, error")
    for row in errors:
        channel, position, estimate, real, error = row
        print(f"  {channel}  {position}  {estimate:6.2f}  {real:6.2f}  {error:+6.2f}")
    assert len(errors) >= 4
    # The second caller is answered about 8 s in, inside its first (10 s) announcement.
    assert interrupted >= 1
    problems = [r for r in caplog.records if r.levelno > logging.INFO
                and r.name == "ari_apps.announcer"]
    assert problems == [], [r.getMessage() for r in problems]
    # The bound: the estimate counts every call still to come before the caller's answer
    # (the one in progress and position - 1 more) at the mean talk time; each real one
    # differs from the mean by at most the spread of the talk times (7 - 5 = 2 s). One
    # second more for what is not talk (setup, the hang-up's signalling, timers) on this
    # shared machine: measured 0.02-0.05 s with equal talk times.
    spread = max(TALKS) - min(TALKS)
    assert all(abs(error) <= position * spread + 1.0
               for _, position, _, _, error in errors), errors


async def test_caller_who_hangs_up_mid_announcement_leaves_nothing(
        clean_pbx: PBX, caplog: pytest.LogCaptureFixture) -> None:
    """A Spanish caller waits with nobody logged in: 1 s in, "you are next" starts in
    Spanish (no wait is said: no agent serves the queue); the caller hangs up in the middle
    of it. The playback ends with the channel, the announcer forgets the caller, nothing
    is logged above INFO, no playback or channel is left."""
    config = with_queue(clean_pbx.loaded.config, "sales", requires=None,
                        announce=Announce(first_after=1, every=30))
    caller = "15558881010"
    caplog.set_level(logging.INFO)
    async with playback_observer(clean_pbx) as seen, start_router(clean_pbx, config) as running:
        result = await place_call(clean_pbx, caller, SPANISH_SALES, hold_ms=7000)
        assert result.returncode == 0 and not result.remote_hangup, result.stderr
        queued = await running.queued(caller)
        async with asyncio.timeout(5):  # forgotten at its next pass
            await running.router.wait_until(lambda: not running.router.announcer.tracked)
        made = list(running.router.announcer.announced)
        with pytest.raises(ARINotFound):
            await running.ari.playbacks.get(made[0].playback_id)
    assert queued.outcome == "abandoned" and queued.language == "es"
    heard = announcements(seen, queued.channel_id)
    assert len(heard) == 1 and len(made) == 1, heard
    events = heard[0]
    assert events[0].type == "PlaybackStarted"
    assert media_heard(events) == ["sound:queue-youarenext"]
    assert {e.language for e in events} == {"es"}
    assert (made[0].position, made[0].wait, made[0].language) == (1, None, "es")
    started = (events[0].at - queued.entered_at).total_seconds()
    assert 1.0 <= started <= 2.5, started
    # The caller hung up mid-announcement (it lasts 6.6 s in Spanish).
    assert queued.ended_at < events[0].at + timedelta(seconds=6.6)  # type: ignore[operator]
    problems = [r for r in caplog.records if r.levelno > logging.INFO
                and r.name.startswith(("ari_apps", "callcenter"))]
    assert problems == [], [r.getMessage() for r in problems]
