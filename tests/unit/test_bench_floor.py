"""The ARI floor of the queue bench (``bench/queue_ari_floor.py``) against a fake ARI that
speaks its interface: which requests a caller costs, and that every way a call ends
leaves no leg, no bridge and the agent free (the figures are worth nothing otherwise).

The fake records each request in order and the test feeds the events Asterisk would
send; every wait is on a request arriving, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence

import pytest

from bench.queue_ari_floor import FloorApp, FloorARI, Message
from bench.queue_measure import (
    QueueStep,
    asterisk_ms_per_call,
    contender_ms_per_call,
    cores_needed,
)


class FakeARI(FloorARI):
    """Requests go to ``requests`` as tuples; events are what the test puts in ``feed``."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()
        self.feed: asyncio.Queue[Message | None] = asyncio.Queue()

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[Message]]:
        async def messages() -> AsyncIterator[Message]:
            while (message := await self.feed.get()) is not None:
                yield message

        yield messages()

    async def create_bridge(self, bridge_id: str) -> None:
        self.requests.put_nowait(("bridge", bridge_id))

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        self.requests.put_nowait(("add", bridge_id, *channel_ids))

    async def moh(self, bridge_id: str, on: bool) -> None:
        self.requests.put_nowait(("moh" if on else "unmoh", bridge_id))

    async def channel_moh(self, channel_id: str, on: bool) -> None:
        self.requests.put_nowait(("chmoh" if on else "chunmoh", channel_id))

    async def create_leg(self, endpoint: str, leg_id: str, caller_id: str,
                         number: str) -> None:
        self.requests.put_nowait(("create", endpoint, leg_id, caller_id, number))

    async def dial(self, leg_id: str, timeout: int) -> None:
        self.requests.put_nowait(("dial", leg_id, str(timeout)))

    async def hangup(self, channel_id: str) -> None:
        self.requests.put_nowait(("hangup", channel_id))

    async def destroy_bridge(self, bridge_id: str) -> None:
        self.requests.put_nowait(("destroy", bridge_id))

    async def next(self) -> tuple[str, ...]:
        return await asyncio.wait_for(self.requests.get(), 2)

    async def take(self, count: int) -> list[tuple[str, ...]]:
        return [await self.next() for _ in range(count)]


@contextlib.asynccontextmanager
async def running(agents: Sequence[str], hold: str = "moh") -> AsyncIterator[tuple[FakeARI,
                                                                                  FloorApp]]:
    fake = FakeARI()
    floor = FloorApp(fake, agents, hold=hold, ring_timeout=15)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(floor.run())
        yield fake, floor
        fake.feed.put_nowait(None)  # the websocket closes: the app ends with its calls
        await asyncio.wait_for(task, 2)


async def test_a_caller_is_held_with_moh_and_moves_on_to_the_next_agent_after_no_answer(
) -> None:
    async with running(["agent001", "agent002", "agent003"]) as (fake, floor):
        fake.feed.put_nowait(("start", "c1", "5550100"))
        assert await fake.take(4) == [
            ("bridge", "c1-floor"), ("add", "c1-floor", "c1"), ("moh", "c1-floor"),
            ("create", "PJSIP/agent001", "c1-leg1", "c1", "5550100")]
        fake.feed.put_nowait(("start", "c1-leg1", ""))
        assert await fake.next() == ("dial", "c1-leg1", "15")
        fake.feed.put_nowait(("dial", "c1-leg1", "RINGING"))
        fake.feed.put_nowait(("dial", "c1-leg1", "NOANSWER"))
        assert await fake.take(2) == [
            ("hangup", "c1-leg1"), ("create", "PJSIP/agent002", "c1-leg2", "c1", "5550100")]
        fake.feed.put_nowait(("end", "c1-leg1", ""))  # the first leg's end: ignored
        fake.feed.put_nowait(("start", "c1-leg2", ""))
        assert await fake.next() == ("dial", "c1-leg2", "15")
        fake.feed.put_nowait(("dial", "c1-leg2", "ANSWER"))
        fake.feed.put_nowait(("dial", "c1-leg2", "ANSWER"))  # Asterisk may send it twice
        assert await fake.take(2) == [("unmoh", "c1-floor"), ("add", "c1-floor", "c1-leg2")]
        fake.feed.put_nowait(("end", "c1-leg2", ""))  # the agent hangs up
        assert await fake.take(2) == [("hangup", "c1"), ("destroy", "c1-floor")]
        fake.feed.put_nowait(("end", "c1", ""))
        assert list(floor.free) == ["agent003", "agent001", "agent002"]
        assert not floor.calls and not floor.legs and not floor.waiting
        assert fake.requests.empty()


@pytest.mark.parametrize("hold", ["none", "channel_moh"])
async def test_without_a_bridge_the_caller_waits_in_stasis_and_one_bridge_takes_both(
        hold: str) -> None:
    moh = hold == "channel_moh"
    async with running(["agent001"], hold=hold) as (fake, floor):
        fake.feed.put_nowait(("start", "c1", "5550100"))
        assert await fake.take(1 + moh) == [("chmoh", "c1")] * moh + [
            ("create", "PJSIP/agent001", "c1-leg1", "c1", "5550100")]
        fake.feed.put_nowait(("start", "c1-leg1", ""))
        assert await fake.next() == ("dial", "c1-leg1", "15")
        fake.feed.put_nowait(("dial", "c1-leg1", "ANSWER"))
        assert await fake.take(2 + moh) == [("chunmoh", "c1")] * moh + [
            ("bridge", "c1-floor"), ("add", "c1-floor", "c1", "c1-leg1")]
        fake.feed.put_nowait(("end", "c1", ""))  # the caller hangs up while talking
        assert await fake.take(2) == [("hangup", "c1-leg1"), ("destroy", "c1-floor")]
        assert list(floor.free) == ["agent001"] and not floor.legs


async def test_callers_wait_in_order_for_a_free_agent_and_one_who_hangs_up_is_skipped() -> None:
    async with running(["agent001"], hold="bridge") as (fake, floor):
        fake.feed.put_nowait(("start", "c1", "1"))
        assert await fake.take(3) == [("bridge", "c1-floor"), ("add", "c1-floor", "c1"),
                                      ("create", "PJSIP/agent001", "c1-leg1", "c1", "1")]
        for caller in ("c2", "c3"):
            fake.feed.put_nowait(("start", caller, caller))
            assert await fake.take(2) == [("bridge", f"{caller}-floor"),
                                          ("add", f"{caller}-floor", caller)]
        fake.feed.put_nowait(("end", "c2", ""))  # c2 gives up while waiting
        assert await fake.next() == ("destroy", "c2-floor")
        fake.feed.put_nowait(("start", "c1-leg1", ""))
        assert await fake.next() == ("dial", "c1-leg1", "15")
        fake.feed.put_nowait(("end", "c1", ""))  # c1 hangs up while agent001 rings
        assert await fake.take(3) == [("hangup", "c1-leg1"), ("destroy", "c1-floor"),
                                      ("create", "PJSIP/agent001", "c3-leg2", "c3", "c3")]
        assert [c.channel_id for c in floor.waiting] == [] and not floor.free
        fake.feed.put_nowait(("end", "c1-leg1", ""))
        fake.feed.put_nowait(("end", "c3", ""))
        assert await fake.take(2) == [("hangup", "c3-leg2"), ("destroy", "c3-floor")]
        assert list(floor.free) == ["agent001"] and not floor.calls and not floor.legs


def test_the_floor_refuses_an_unknown_hold() -> None:
    with pytest.raises(ValueError, match="hold: one of"):
        FloorApp(FakeARI(), ["agent001"], hold="park")


def _step(ok: int, asterisk_s: float, contender_s: float = math.nan) -> QueueStep:
    return QueueStep("ari_floor", 10, 0, ok, ok, 0, ok, ok, ok, ok, ok, 0, (1.0,), 0, 2.0,
                     asterisk_cpu_s=asterisk_s, contender_cpu_s=contender_s)


def test_cpu_per_call_is_weighted_by_calls_and_the_floor_arithmetic_is_plain() -> None:
    steps = [_step(20, 0.30, 0.10), _step(80, 1.30, 0.40)]
    assert asterisk_ms_per_call(steps) == pytest.approx(16.0)
    assert contender_ms_per_call(steps) == pytest.approx(5.0)
    assert math.isnan(contender_ms_per_call([_step(20, 0.2)]))
    assert math.isnan(asterisk_ms_per_call([]))
    assert cores_needed(16.0, 240) == pytest.approx(3.84)
