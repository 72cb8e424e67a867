"""Preview campaigns, the pure part: the agent sees the contact first, then dials.

How a preview goes (the I/O is :mod:`callcenter.dialer.preview_desk` and
:mod:`ari_apps.preview`; the HTTP routes :mod:`callcenter.web.preview`):

1. *offer*: one due contact of the campaign is claimed for the agent (claimer
   ``preview:<agent>``), screened by :func:`screen` (the compliance gate,
   :func:`callcenter.dialer.eligibility.may_dial`, with an agent reserved), and the agent
   is reserved through the agent store under a call id of :func:`preview_call_id`
   (``cc-preview-<contact>-<hex>``): the queue router then offers it no inbound call, and
   its watchdog judges that reservation by time only (``WatchdogLimits.held``), since no
   channel stands for it until the dial;
2. *dial*: the attempt row is written, then the agent's phone rings (channel id: the
   reservation's call id) and, once it answers, the contact is dialled through the trunk
   and both legs are bridged;
3. or *skip*: the contact goes back to ``pending`` (due again now, behind the contacts
   never tried) and the agent is freed.

Nothing here reads a clock, the database or ARI.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from callcenter.agents.reconcile import HELD_CALL_PREFIX
from callcenter.config.campaign import Campaign
from callcenter.dialer.eligibility import ContactLike, Verdict, may_dial
from callcenter.dialer.gate import refusal_step

__all__ = [
    "CLAIMER_PREFIX",
    "HELD_CALL_PREFIX",
    "HeldPreview",
    "PreviewError",
    "Screened",
    "agent_of_claimer",
    "claimer_for",
    "contact_of_call",
    "preview_call_id",
    "screen",
]

#: A preview's claim on a contact: ``preview:<agent>`` (``contacts.claimed_by``).
CLAIMER_PREFIX: Final = "preview:"


class PreviewError(Exception):
    """A preview request that cannot be served: the HTTP status to answer with and, for
    bad input, the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass(frozen=True, slots=True)
class HeldPreview:
    """A contact claimed for an agent's preview, with the agent's reservation (``call``)."""

    contact_id: int
    campaign: str
    agent: str
    call: str
    number: str
    timezone: str | None
    attempts: int
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Screened:
    """What to do with a claimed contact: ``offer`` it to the agent, or not (``later``:
    ``pending`` again at ``retry_at``; ``close``: ``state`` is ``exhausted`` or
    ``do_not_call``, as :func:`callcenter.dialer.gate.refusal_step` decides for every
    dialer). ``verdict`` says why, for the log and the attempt's audit trail."""

    action: str
    verdict: Verdict
    state: str = "dialing"
    retry_at: dt.datetime | None = None
    dnc_blocked: bool = False


def claimer_for(agent: str) -> str:
    """The claimer name of *agent*'s previews (fits ``contacts.claimed_by``)."""
    return f"{CLAIMER_PREFIX}{agent}"


def agent_of_claimer(claimer: str | None) -> str | None:
    """The agent a contact is claimed for by a preview, or ``None`` (not a preview's)."""
    if claimer is None or not claimer.startswith(CLAIMER_PREFIX):
        return None
    return claimer.removeprefix(CLAIMER_PREFIX) or None


def preview_call_id(contact_id: int) -> str:
    """A new reservation id for a preview of *contact_id*; also the agent leg's channel
    id when it is dialled (ARI ``channelId``, chosen by us)."""
    return f"{HELD_CALL_PREFIX}{contact_id}-{uuid.uuid4().hex[:12]}"


def contact_of_call(call: str | None) -> int | None:
    """The contact a preview reservation id is for, or ``None`` (not a preview's)."""
    if call is None or not call.startswith(HELD_CALL_PREFIX):
        return None
    head, _, tail = call.removeprefix(HELD_CALL_PREFIX).partition("-")
    if not (head.isascii() and head.isdigit() and tail):
        return None
    return int(head)


def screen(contact: ContactLike, campaign: Campaign, now: dt.datetime, *,
           dnc: bool = False, last_abandon_at: dt.datetime | None = None) -> Screened:
    """Whether a claimed contact may be shown to an agent (or dialled) now.

    The agent is reserved before the call, so the 72-hour rule after an abandon does not
    apply (no abandon can follow). A refused contact goes where the progressive dialer
    sends its own: back until the rules allow it, or closed when they never will.
    """
    verdict = may_dial(contact, campaign, now, dnc=dnc, last_abandon_at=last_abandon_at,
                       agent_reserved=True)
    if verdict.allowed:
        return Screened("offer", verdict)
    refusal = refusal_step(verdict)
    return Screened("later" if refusal.state == "pending" else "close", verdict,
                    refusal.state, refusal.next_attempt_at, refusal.dnc_blocked)
