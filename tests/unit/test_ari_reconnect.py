"""run_event_loop against a protocol-speaking fake ARI (aiohttp): handshake errors are
retried with jittered backoff, 401/403 fail at once, ApplicationReplaced ends the loop."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from typing import Self

import pytest
from aiohttp import web

from callcenter.asterisk.ari import (
    ARIAuthError,
    ARIClient,
    ARIConnectionError,
    Event,
    StasisStart,
)
from tests.unit.test_ari_events import RECORDED

REPLACED = json.dumps({"type": "ApplicationReplaced", "application": "cc-queue",
                       "timestamp": "2026-11-25T08:30:10.335+0000"})


class FlakyARI:
    """Answers the events handshake with the given statuses in turn, then upgrades and
    sends ``frames`` (the socket then stays open until the client leaves)."""

    def __init__(self, statuses: list[int], frames: list[str]) -> None:
        self.statuses = statuses
        self.frames = frames
        self.attempts: list[int] = []  # the status each handshake got (101: upgraded)
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        self.runner = web.AppRunner(app)
        self.base_url = ""

    async def __aenter__(self) -> Self:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def events(self, request: web.Request) -> web.StreamResponse:
        if self.statuses:
            status = self.statuses.pop(0)
            self.attempts.append(status)
            return web.json_response({"message": "not now"}, status=status)
        self.attempts.append(101)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for frame in self.frames:
            await ws.send_str(frame)
        async for _ in ws:
            pass
        return ws


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[FlakyARI]:
    statuses, frames = request.param
    async with FlakyARI(statuses, frames) as flaky:
        yield flaky


def client(server: FlakyARI) -> ARIClient:
    return ARIClient(server.base_url, username="cc", password="pw", app="cc-queue")


@pytest.mark.parametrize("server", [([503, 503], [RECORDED["StasisStart"]])], indirect=True)
async def test_503_twice_then_upgrade_is_retried_with_jittered_backoff(server, caplog):
    got = asyncio.get_running_loop().create_future()

    async def handler(event: Event) -> None:
        if not got.done():
            got.set_result(event)

    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.ari.client"):
        async with client(server) as ari, asyncio.TaskGroup() as tg:
            loop = tg.create_task(ari.run_event_loop(
                handler, reconnect_delay=0.02, max_reconnect_delay=0.05,
                rng=random.Random(7)))
            async with asyncio.timeout(5):
                event = await got
            loop.cancel()
    assert isinstance(event, StasisStart) and event.args == ("arg1", "arg 2")
    assert server.attempts == [503, 503, 101]
    waits = [float(m) for r in caplog.records
             for m in re.findall(r"reconnecting in ([0-9.]+)s", r.getMessage())]
    # Two waits, each drawn between half and all of the doubling delay (0.02, then 0.04).
    assert len(waits) == 2
    assert 0.01 <= waits[0] <= 0.02 and 0.02 <= waits[1] <= 0.04
    assert all("503" in r.getMessage() for r in caplog.records if "reconnecting" in
               r.getMessage())


@pytest.mark.parametrize("server", [([401], []), ([403], [])], indirect=True)
async def test_401_and_403_fail_at_once(server):
    async def handler(event: Event) -> None:
        raise AssertionError("no event expected")

    async with client(server) as ari:
        with pytest.raises(ARIAuthError) as caught:
            async with asyncio.timeout(5):
                await ari.run_event_loop(handler, reconnect_delay=0.01)
    assert len(server.attempts) == 1
    assert caught.value.status in (401, 403)
    assert "ARI GET /events: 40" in str(caught.value)


@pytest.mark.parametrize("server", [([503] * 10, [])], indirect=True)
async def test_retries_are_bounded_when_asked(server):
    async def handler(event: Event) -> None:
        raise AssertionError("no event expected")

    async with client(server) as ari:
        with pytest.raises(ARIConnectionError) as caught:
            async with asyncio.timeout(5):
                await ari.run_event_loop(handler, reconnect_delay=0.001, max_attempts=3)
    assert server.attempts == [503, 503, 503]
    assert caught.value.status == 503


@pytest.mark.parametrize("server", [([], [RECORDED["StasisStart"], REPLACED,
                                          RECORDED["StasisEnd"]])], indirect=True)
async def test_application_replaced_ends_the_loop(server, caplog):
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.type)

    async with client(server) as ari:
        async with asyncio.timeout(5):
            await ari.run_event_loop(handler, reconnect_delay=0.01)  # returns
    assert handled == ["StasisStart"]
    assert server.attempts == [101]  # did not re-register
    assert any("ApplicationReplaced" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)
