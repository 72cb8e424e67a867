"""Restart safety: the router killed with ``kill -9`` while callers wait and talk.

ARI does not replay events and the channels stay in Stasis when the app's websocket
goes: a new router process must re-adopt every channel still in the app (from
``GET /applications``, the channels' Stasis args and the ``queued_calls`` rows), keep the
call in progress going, and serve the waiting callers in their original order. The router
runs in a process of its own (``tests/integration/router_process.py``); the test reads
its log lines as events and its records from the shared SQLite database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import select

from callcenter.agents.state import (
    EndWrapUp,
    IllegalTransition,
    Login,
    Logout,
)
from callcenter.agents.store import AgentStore
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.models import QueuedCall
from callcenter.testing.sipp import Caller, SippResult, run_call
from tests.conftest import PBX, REPO
from tests.integration.router_harness import SALES


class RouterProcess:
    """One router process; ``expect(text)`` waits for a log line containing *text*."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new.set()

    async def expect(self, text: str, *, after: int = 0, timeout: float = 30) -> int:
        """Index of the first line from *after* on containing *text*."""
        try:
            async with asyncio.timeout(timeout):
                return await self._expect(text, after)
        except TimeoutError:
            raise AssertionError(f"no line with {text!r} in {timeout} s; last lines: "
                                 f"{self.lines[-15:]}") from None

    async def _expect(self, text: str, after: int) -> int:
        while True:
            for i in range(after, len(self.lines)):
                if text in self.lines[i]:
                    return i
            self._new.clear()
            if self._reader.done():
                raise AssertionError(f"router exited: {self.lines[-20:]}")
            await self._new.wait()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        await self._reader


@contextlib.asynccontextmanager
async def router_process(pbx: PBX) -> AsyncIterator[RouterProcess]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.router_process", str(pbx.instance.home),
        str(pbx.config_dir), pbx.db_url, "test", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    router = RouterProcess(proc)
    try:
        await router.expect("ready")
        yield router
    finally:
        await router.stop()


async def test_kill_9_with_callers_waiting_and_talking_drops_nobody(clean_pbx: PBX) -> None:
    engine = make_engine(clean_pbx.db_url, sqlite_immediate=True)
    store = AgentStore(make_sessionmaker(engine))

    def now() -> datetime:
        return datetime.now(UTC)

    async def call(number: str, hold_ms: int) -> SippResult:
        sip, media = clean_pbx.sipp_ports()
        return await run_call(Caller("5551000", caller_id=number, keys=SALES, hold_ms=hold_ms),
                              sip_port=clean_pbx.sip_port, local_port=sip, media_port=media,
                              timeout=90)

    talking, first, second = "15558881001", "15558881002", "15558881003"
    try:
        async with clean_pbx.agent_phone("carmen") as carmen:
            await store.apply("carmen", Login(), now(), reason="test")
            # Every caller stays until the agent ends the call (Asterisk's BYE): the test,
            # not a clock, decides when each call ends.
            async with router_process(clean_pbx) as old:
                a = asyncio.create_task(call(talking, 90000))
                mark = await old.expect("carmen answered")
                b = asyncio.create_task(call(first, 90000))
                # b waits (carmen is talking to a); c is placed only once b has entered,
                # so b is first in the queue (a's own "entered" line is before the mark).
                mark = await old.expect("entered", after=mark) + 1
                c = asyncio.create_task(call(second, 90000))
                await old.expect("entered", after=mark)
                old.kill()
            # Nobody was dropped by the kill: all three are still in the router's app.
            async with router_process(clean_pbx) as new:
                assert "3 caller(s) adopted" in new.lines[await new.expect("ready")]
                served: list[str] = []
                mark = len(new.lines)
                await carmen.hangup()  # carmen ends a's call, which the new process adopted
                for _ in range(2):  # then she wraps up (ended by the test) and takes b, c
                    mark = await new.expect("ended (answered", after=mark)
                    await store.apply("carmen", EndWrapUp(), now(), reason="test")
                    mark = await new.expect("carmen answered", after=mark)
                    served.append(new.lines[mark])
                    await carmen.event("CALL_ESTABLISHED")
                    await carmen.hangup()
                await new.expect("ended (answered", after=mark)
                results = await asyncio.gather(a, b, c)
            assert [(r.returncode, r.remote_hangup) for r in results] == [(0, True)] * 3
            answered = [e["peeruri"] for e in carmen.seen if e.get("type") == "CALL_ESTABLISHED"]
    finally:
        for event in (EndWrapUp(), Logout()):
            with contextlib.suppress(IllegalTransition):
                await store.apply("carmen", event, now(), reason="test cleanup")
    async with make_sessionmaker(engine)() as session:
        rows = (await session.execute(select(QueuedCall).order_by(QueuedCall.id))).scalars().all()
    await engine.dispose()
    by_channel = {r.channel_id: r for r in rows[-3:]}
    assert [uri.split("@")[0] for uri in answered] == [f"sip:{n}" for n in
                                                       (talking, first, second)]
    assert all(r.outcome == "answered" and r.agent == "carmen" for r in by_channel.values())
    b_row, c_row = rows[-2], rows[-1]
    assert b_row.entered_at < c_row.entered_at
    assert b_row.answered_at < c_row.answered_at  # type: ignore[operator]
    assert served[0].endswith(b_row.channel_id) and served[1].endswith(c_row.channel_id)
