"""``callcenter -v campaigns run`` in a process of its own, as an operator starts it; its
log lines are the test's events (each decision of the dialer is logged with its reason).

A test waits on lines (:meth:`DialerProcess.expect`, or :func:`until` a predicate over
several processes' lines holds), never on sleeps; it stops a dialer as an operator does
(SIGTERM: no new call, the calls in progress end, exit 0) or kills it (SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from tests.conftest import REPO

__all__ = ["DialerProcess", "campaign_run", "until"]


class DialerProcess:
    """A running ``campaigns run``; :attr:`lines` is its output so far (stdout and
    stderr), read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process, node: str) -> None:
        self.proc = proc
        self.node = node
        self.lines: list[str] = []
        self._news = asyncio.Event()
        self._reader = asyncio.create_task(self._read(), name=f"dialer {node} output")

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._pulse()
        finally:
            self._pulse()  # the end of the output is news too (the process exited)

    def _pulse(self) -> None:
        news, self._news = self._news, asyncio.Event()
        news.set()

    @property
    def exited(self) -> bool:
        return self._reader.done()

    def matches(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        """Every line's first match of ``pattern``, in order."""
        return [m for m in map(pattern.search, self.lines) if m is not None]

    async def expect(self, text: str, timeout: float = 60) -> str:
        """The first line holding ``text``, once there is one."""
        await until([self], lambda: any(text in line for line in self.lines), timeout,
                    what=repr(text))
        return next(line for line in self.lines if text in line)

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then its exit status once it ended its calls and exited."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout):
            status = await self.proc.wait()
            await self._reader
        return status

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
        await self._reader

    def tail(self, n: int = 15) -> list[str]:
        return self.lines[-n:]


async def until(processes: Sequence[DialerProcess], predicate: Callable[[], bool],
                timeout: float, *, what: str = "the condition") -> None:
    """Return once ``predicate`` holds, checked on every new line of ``processes``;
    AssertionError (with their last lines) after ``timeout`` seconds or when all of
    them exited first."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                news = [p._news for p in processes]  # taken before the check: none missed
                if predicate():
                    return
                if all(p.exited for p in processes):
                    raise AssertionError(f"the dialers exited before {what}: "
                                         f"{ {p.node: p.tail() for p in processes} }")
                waiters = [asyncio.ensure_future(n.wait()) for n in news]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}; last lines: "
                             f"{ {p.node: p.tail() for p in processes} }") from None


@contextlib.asynccontextmanager
async def campaign_run(home: Path, config_dir: Path, db_url: str, campaign: str, node: str,
                       *options: str) -> AsyncIterator[DialerProcess]:
    """``callcenter --home HOME -v campaigns run CAMPAIGN --node NODE`` (and ``options``)
    until the block ends (then killed if still running)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from callcenter.cli import main; sys.exit(main())",
        "--home", str(home), "-v", "campaigns", "run", campaign, "--config", str(config_dir),
        "--db", db_url, "--node", node, *options,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    process = DialerProcess(proc, node)
    try:
        yield process
    finally:
        await process.kill()
