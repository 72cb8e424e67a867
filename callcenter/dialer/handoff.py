"""Warm transfer of a live campaign call to an inbound queue, as a disposition: the pure
decision (may this attempt be handed over now, and with which channel variables).

A campaign's disposition may name a queue (``warm_transfer_sales: {queue: sales}``,
:class:`callcenter.config.campaign.Disposition`). Chosen while the agent talks to the
contact, it takes the contact's channel out of the dialer's bridge and sends it where a
call flow's queue destination goes (``dialplan/generator.py`` ``go()``)::

    Set(CC_QUEUE_SKILLS=<skills joined by +>)
    Set(CC_QUEUE_PRIORITY=<queue priority + disposition priority>)
    Goto(cc-queue,<queue>,1)

over ARI: the variables of :meth:`HandoffPlan.variables` are set on the channel, then it
continues in the dialplan at :data:`QUEUE_CONTEXT`, ``<queue>``, 1
(:mod:`ari_apps.campaign_handoff`). The contact's number is its caller ID there, and
``CC_CAMPAIGN``, ``CC_CONTACT_ID``, ``CC_ATTEMPT_ID`` say where it comes from;
``CC_HANDOFF`` (the disposition) tells the dialer, which sees the contact leave its app,
that this was a hand-off and not a hang-up (:func:`handoff_disposition`).

Every value set comes from the configuration (names of the ``Name`` alphabet), the
database's ids, or the stored E.164 number checked again here: nothing a user typed
reaches the dialplan. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from callcenter.asterisk import variables as V
from callcenter.config.campaign import Campaign
from callcenter.config.models import Queue

__all__ = [
    "ATTEMPT_ID",
    "CAMPAIGN",
    "CONTACT_ID",
    "HANDOFF",
    "HANDOFF_MODES",
    "QUEUE_CONTEXT",
    "AttemptView",
    "HandoffPlan",
    "HandoffRefused",
    "handoff_disposition",
    "plan_handoff",
]

#: The dialplan context of the queue destinations (one extension per queue).
QUEUE_CONTEXT: Final = "cc-queue"
#: Set on a handed-over contact's channel: the disposition that handed it over.
HANDOFF: Final = "CC_HANDOFF"
#: Set on a handed-over contact's channel: where the call comes from.
CAMPAIGN: Final = "CC_CAMPAIGN"
CONTACT_ID: Final = "CC_CONTACT_ID"
ATTEMPT_ID: Final = "CC_ATTEMPT_ID"

#: Campaign modes whose calls the dialer (:mod:`ari_apps.dialer`) bridges, and so hands over.
HANDOFF_MODES: Final = ("progressive", "predictive")

_NUMBER = re.compile(r"\+?[0-9]{3,20}")


class HandoffRefused(Exception):
    """The hand-off cannot happen; ``status`` is the HTTP answer (409: the call's state,
    422: the request), ``field`` the input at fault."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status, self.field, self.message = status, field, message


@dataclass(frozen=True, slots=True)
class AttemptView:
    """What the database says of one attempt, for the decision."""

    attempt_id: int
    campaign: str
    contact_id: int
    number: str
    channel_id: str | None
    agent: str | None
    answered: bool
    ended: bool


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    """One hand-off to carry out: which channel goes to which queue, with what."""

    attempt_id: int
    campaign: str
    contact_id: int
    channel_id: str
    number: str
    disposition: str
    queue: str
    skills: tuple[str, ...]
    priority: int

    def variables(self) -> dict[str, str]:
        """The channel variables to set before the channel continues to the queue
        (the order a dialplan would set them; ``CC_HANDOFF`` last)."""
        return {
            V.QUEUE_SKILLS: "+".join(self.skills),
            V.QUEUE_PRIORITY: str(self.priority),
            "CALLERID(num)": self.number,
            CAMPAIGN: self.campaign,
            CONTACT_ID: str(self.contact_id),
            ATTEMPT_ID: str(self.attempt_id),
            HANDOFF: self.disposition,
        }


def plan_handoff(attempt: AttemptView, campaign: Campaign | None, queues: Mapping[str, Queue],
                 disposition: str, *, callback_at: datetime | None = None,
                 ) -> HandoffPlan | None:
    """The hand-off ``disposition`` asks for on ``attempt``, or None when it names no
    queue (an ordinary disposition, recorded after the call; an unknown one is refused
    there too).

    Raises:
        HandoffRefused: the call is over or not yet with an agent (409), the queue left
            the configuration (409), or the request adds a callback time (422).
    """
    if campaign is None:
        return None
    spec = campaign.dispositions.get(disposition)
    if spec is None or spec.queue is None:
        return None
    what = f"'{disposition}' hands the live call to queue '{spec.queue}'"
    if campaign.mode not in HANDOFF_MODES:
        raise HandoffRefused(409, "disposition", f"{what}: only a progressive or "
                             f"predictive campaign's call can be handed over, and "
                             f"'{attempt.campaign}' is {campaign.mode}")
    if callback_at is not None:
        raise HandoffRefused(422, "callback_at", f"{what}: no callback time goes with it")
    if attempt.ended:
        raise HandoffRefused(409, "attempt", f"attempt {attempt.attempt_id} has ended: "
                             f"{what}, and there is no call any more (record another "
                             "disposition)")
    if not attempt.answered or attempt.channel_id is None:
        raise HandoffRefused(409, "attempt", f"attempt {attempt.attempt_id} is not with an "
                             f"agent yet: {what} once the agent talks to the contact")
    queue = queues.get(spec.queue)
    if queue is None:
        raise HandoffRefused(409, "disposition", f"{what}, which is not in the "
                             f"configuration (queues: {', '.join(sorted(queues)) or 'none'})")
    if not _NUMBER.fullmatch(attempt.number):
        raise HandoffRefused(409, "attempt", f"{what}, but attempt {attempt.attempt_id}'s "
                             "number is not a phone number: not handed over")
    return HandoffPlan(
        attempt_id=attempt.attempt_id, campaign=attempt.campaign,
        contact_id=attempt.contact_id, channel_id=attempt.channel_id, number=attempt.number,
        disposition=disposition, queue=spec.queue,
        skills=tuple(spec.skills or queue.skills), priority=queue.priority + spec.priority)


def handoff_disposition(value: str | None, campaign: Campaign) -> str | None:
    """The disposition a contact's ``CC_HANDOFF`` names, when it is one of ``campaign``'s
    that hands over to a queue; None otherwise (unset: the contact hung up)."""
    if not value:
        return None
    spec = campaign.dispositions.get(value)
    return value if spec is not None and spec.queue is not None else None
