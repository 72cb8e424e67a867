"""The warm transfer of a live campaign call to an inbound queue, over ARI (the decision
is :func:`callcenter.dialer.handoff.plan_handoff`; the API and the CLI reach this through
:func:`callcenter.dialer.dispose.dispose_or_hand_off`).

Dialplan contract: the contact's channel (``cc-dial-<hex>``, the ``;1`` half of
``Local/<number>@cc-trunk-<trunk>-out``) is in Stasis app ``cc-dialer``, in the mixing
bridge ``cc-<channel>`` with the agent's leg. :meth:`AriHandoff.hand_off`:

1. checks the channel is still in that bridge (else 409: the call ended, or was handed
   over already and is the queue router's now: never taken from it);
2. sets ``CC_QUEUE_SKILLS``, ``CC_QUEUE_PRIORITY``, ``CALLERID(num)`` (the contact's
   number), ``CC_CAMPAIGN``, ``CC_CONTACT_ID``, ``CC_ATTEMPT_ID`` and last ``CC_HANDOFF``
   (the disposition) on it (cleared again should the hand-off fail, so that the call's
   later end does not read as a hand-off);
3. destroys the bridge: the queue router parks each caller in ``cc-<caller channel>``,
   the very id of the dialer's bridge (both legs stay in ``cc-dialer`` meanwhile);
4. ``POST /channels/{id}/continue`` to ``cc-queue,<queue>,1``: the channel leaves
   ``cc-dialer`` and the generated dialplan hands it to the queue router
   (``Stasis(cc-queue,<queue>,...)``) as any queued caller. Should Asterisk refuse, the
   bridge is made again with both legs.

The dialer then sees ``StasisEnd`` of its contact with the channel alive: it asks
:func:`handed_off`, and on a disposition it hangs up the agent's leg only (the agent
wraps up), leaves the bridge id alone (the router's now), ends the attempt ``answered``
and records the disposition (:func:`record_handoff`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.ari.client import ARIClient, ARIError, ARINotFound
from callcenter.config.campaign import Campaign
from callcenter.dialer.handoff import (
    HANDOFF,
    QUEUE_CONTEXT,
    HandoffPlan,
    HandoffRefused,
    handoff_disposition,
)
from callcenter.dialer.placer import dialer_bridge_id
from callcenter.storage.campaigns import CampaignRepository, DispositionError

__all__ = ["AriHandoff", "handed_off", "record_handoff"]

log = logging.getLogger(__name__)


class AriHandoff:
    """:class:`callcenter.dialer.dispose.HandoffPort` over one ARI client (the service's,
    or one the CLI opens with the home's credentials)."""

    def __init__(self, ari: ARIClient) -> None:
        self.ari = ari

    async def hand_off(self, plan: HandoffPlan) -> None:
        """Send the plan's channel from the dialer's bridge to its queue (module doc).

        Raises:
            HandoffRefused: 409 the call is not the dialer's live call any more; 503
                Asterisk did not answer as it should.
        """
        bridge_id = dialer_bridge_id(plan.channel_id)
        gone = HandoffRefused(409, "attempt", f"attempt {plan.attempt_id}'s call is not "
                              "with its agent any more (ended, or handed over already)")
        marked = False
        try:
            bridge = await self.ari.bridges.get(bridge_id)
            if plan.channel_id not in bridge.channels:
                raise gone
            for name, value in plan.variables().items():
                marked = marked or name == HANDOFF
                await self.ari.channels.set_variable(plan.channel_id, name, value)
            # The dialer's bridge goes first: the contact leaves it for the queue.
            await self.ari.bridges.destroy(bridge_id)
            try:
                await self.ari.channels.continue_in_dialplan(plan.channel_id, QUEUE_CONTEXT,
                                                            plan.queue, 1)
            except ARIError:
                await self._rebridge(bridge_id, bridge.name, bridge.channels)
                raise
        except ARIError as exc:
            if marked:  # not handed over: its later hang-up must not read as a hand-off
                with contextlib.suppress(ARIError):
                    await self.ari.channels.set_variable(plan.channel_id, HANDOFF, "")
            self._refuse(plan, exc, gone)
        log.info("attempt %d: contact %d (%s) handed to queue %s (%s)", plan.attempt_id,
                 plan.contact_id, plan.channel_id, plan.queue, plan.disposition)

    @staticmethod
    def _refuse(plan: HandoffPlan, exc: ARIError, gone: HandoffRefused) -> NoReturn:
        """The refusal of a hand-off ARI did not carry out."""
        if isinstance(exc, ARINotFound):
            raise gone from None
        if exc.status in (409, 422):  # not in Stasis any more (hung up meanwhile)
            raise gone from None
        log.warning("hand-off of attempt %d (%s) to queue %s failed: %s",
                    plan.attempt_id, plan.channel_id, plan.queue, exc)
        raise HandoffRefused(503, "attempt", "the PBX did not take the hand-off: "
                             f"{exc.status or 'no answer'}") from None

    async def _rebridge(self, bridge_id: str, name: str, channels: tuple[str, ...]) -> None:
        """The contact did not leave: back with its agent, as before (best effort; a
        leg that hung up meanwhile ends the call in the dialer as usual)."""
        try:
            await self.ari.bridges.create("mixing", bridge_id=bridge_id, name=name)
            await self.ari.bridges.add_channel(bridge_id, list(channels))
        except ARIError as exc:
            log.warning("hand-off failed; bridge %s not restored: %s", bridge_id, exc)


async def handed_off(ari: ARIClient, channel_id: str, campaign: Campaign) -> str | None:
    """The disposition that handed ``channel_id`` over (its ``CC_HANDOFF``), read when the
    contact left the dialer's app; None when it hung up instead (the channel is gone, or
    the variable unset or not a hand-off disposition of ``campaign``)."""
    try:
        value = await ari.channels.get_variable(channel_id, HANDOFF)
    except ARINotFound:
        return None
    except ARIError as exc:
        log.info("reading %s of %s: %s", HANDOFF, channel_id, exc)
        return None
    return handoff_disposition(value, campaign)


async def record_handoff(sessions: async_sessionmaker[AsyncSession],
                         campaigns: Mapping[str, Campaign], attempt_id: int,
                         disposition: str, *, agent: str, now: datetime) -> None:
    """Record the hand-off's disposition on the ended attempt (the contact moves on as
    the disposition says); a refusal is logged, never raised into the dialer."""
    try:
        async with sessions.begin() as session:
            done = await CampaignRepository(session).dispose(
                attempt_id, disposition, campaigns=campaigns, agent=agent, now=now)
    except DispositionError as exc:
        log.warning("attempt %d: hand-off disposition %s not recorded: %s", attempt_id,
                    disposition, exc)
        return
    log.info("attempt %d: disposition %s recorded; contact %d %s (%s)", attempt_id,
             disposition, done.contact_id, done.state, done.reason)
