"""A dialer's one call to obey its campaign's run state: :meth:`StateWatch.check`, once
per pass, reads the state (one row: ``campaigns.state``) and says what the pass may do
(:func:`callcenter.dialer.campaign_state.permit`); it also writes the dialer's heartbeat
(``dialer_nodes``, every :data:`HEARTBEAT` seconds) that ``campaigns status`` shows.

Every dialer (progressive and predictive, :class:`ari_apps.dialer.CampaignDialer`; any
other mode's) does the same::

    watch = StateWatch(sessions, campaign, node)
    ...
    permit = await watch.check()      # in each pass, before placing any call
    if permit.exit: stop placing calls and exit once those in progress ended
    if not permit.place_calls: place none this pass
    ...
    await watch.leave()               # when the process ends

:func:`read_permit` is the same question without a heartbeat (the preview desk asks it
before it offers a contact). A failed read raises: the caller places no call then.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.dialer.campaign_state import Permit, permit
from callcenter.storage.campaign_state import CampaignStateRepository
from callcenter.storage.models import utcnow

__all__ = ["HEARTBEAT", "SEEN_WITHIN", "StateWatch", "read_permit"]

log = logging.getLogger(__name__)

#: Seconds between two heartbeats of one dialer.
HEARTBEAT: Final = 10.0
#: A dialer that beat within this is shown as running the campaign.
SEEN_WITHIN: Final = timedelta(seconds=3 * HEARTBEAT)


async def read_permit(sessions: async_sessionmaker[AsyncSession], campaign: str) -> Permit:
    """What a dialer of ``campaign`` may do now, from its stored state."""
    async with sessions() as session:
        stored = await CampaignStateRepository(session).state(campaign)
    return permit(stored.state, campaign)


class StateWatch:
    """One dialer's view of its campaign's state (see the module doc)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], campaign: str, node: str,
                 *, clock: Callable[[], datetime] = utcnow,
                 heartbeat: float = HEARTBEAT) -> None:
        self.sessions = sessions
        self.campaign = campaign
        self.node = node
        self.clock = clock
        self.heartbeat = heartbeat
        self.host = socket.gethostname()
        self.pid = os.getpid()
        #: The latest permit (None before the first check), for logs and tests.
        self.permit: Permit | None = None
        self._beaten: float | None = None

    async def check(self) -> Permit:
        """The campaign's state read now, as a permit; a change is logged once."""
        if self._beaten is None or time.monotonic() - self._beaten >= self.heartbeat:
            async with self.sessions.begin() as session:
                await CampaignStateRepository(session).beat(
                    self.campaign, self.node, host=self.host, pid=self.pid, at=self.clock())
            self._beaten = time.monotonic()
        now = await read_permit(self.sessions, self.campaign)
        if self.permit is None or now != self.permit:
            log.info("dialer %s (%s): %s", self.campaign, self.node, now.reason)
        self.permit = now
        return now

    async def leave(self) -> None:
        """This dialer ends: its heartbeat goes (a failure is only logged: the row ages
        out of ``campaigns status`` anyway)."""
        try:
            async with self.sessions.begin() as session:
                await CampaignStateRepository(session).leave(self.campaign, self.node)
        except Exception:
            log.exception("dialer %s (%s): removing its heartbeat failed", self.campaign,
                          self.node)
