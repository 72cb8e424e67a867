"""The pass loop the campaign dialers share (:class:`ari_apps.dialer.CampaignDialer`,
:class:`ari_apps.agentless.AgentlessDialer`).

A dialer decides in passes: one on every change it makes (:meth:`PassLoop._wake`), and
one every ``tick`` seconds for what it cannot hear about (other processes' agent changes,
due times, the clock). A pass that fails (the database, ARI) is logged and the next one
tries again. Tests wait on the dialer's pulses (:meth:`PassLoop.wait_until`), never on
time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

__all__ = ["PassLoop"]

log = logging.getLogger(__name__)


class PassLoop:
    """Stop, pulse and the loop of passes; a dialer implements :meth:`_pass`."""

    name: str
    tick: float

    def __init__(self) -> None:
        #: Passes done, and attempts this dialer ended (ids): tests wait on them.
        self.passes = 0
        self.ended: list[int] = []
        self.ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()

    def stop(self) -> None:
        """Place no more calls; the dialer's ``run`` returns once its calls ended."""
        self._stopping.set()
        self._wake.set()

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _attempt_ended(self, attempt_id: int) -> None:
        self.ended.append(attempt_id)
        self._pulse()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate`` holds; checked after every change of this dialer."""
        while not predicate():
            await self._changed.wait()

    async def _pass(self, tg: asyncio.TaskGroup) -> None:
        raise NotImplementedError

    async def _run_passes(self, tg: asyncio.TaskGroup) -> None:
        """Pass on every wake-up and every ``tick`` seconds until stopped; calls are
        started in ``tg`` (which the caller leaves once they ended)."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._pass(tg)
            except Exception:  # the database or ARI failed: the next pass tries again
                log.exception("dialer %s: pass failed", self.name)
            self.passes += 1
            self._pulse()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await self._wake.wait()
