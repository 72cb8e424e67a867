"""The progressive dialer's glue to the rules, pure: what a refused contact becomes, and
what a contact becomes after a call, from its history.

* :func:`refusal_step`: :func:`~callcenter.dialer.eligibility.may_dial` said no. The
  contact is not dialled; it goes where the verdict says: ``do_not_call`` for the DNC
  list, ``exhausted`` when the rules will never allow it (``max_attempts``, no zone, no
  common calling hours), else ``pending`` again at the verdict's ``retry_at`` (the window's
  next opening, the end of the 72 hours after an abandon), so it is not claimed again
  and again meanwhile.
* :func:`next_step`: :func:`~callcenter.dialer.retry.after_attempt` with the counts of
  the contact's earlier outcomes, so a retry rule's own ``max_attempts`` holds too.

The dialer (``ari_apps/dialer.py``) reads the rows and the clock and carries these out;
nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from callcenter.config.campaign import Campaign
from callcenter.dialer.eligibility import Verdict
from callcenter.dialer.retry import NextState, NextStep, after_attempt, rule_name

__all__ = ["Refusal", "next_step", "outcome_counts", "refusal_step"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Where a contact the rules refused goes (a ``ContactState`` value), when it is due
    again, and whether it counts as a DNC number blocked."""

    state: NextState
    next_attempt_at: dt.datetime | None
    dnc_blocked: bool = False


def refusal_step(verdict: Verdict) -> Refusal:
    """The contact's next state after ``verdict`` (refused) kept it from being dialled."""
    if verdict.allowed:
        raise ValueError("the verdict allows the call: nothing to refuse")
    if verdict.rule == "dnc":
        return Refusal("do_not_call", None, dnc_blocked=True)
    if verdict.retry_at is None:  # max_attempts, no_timezone, a window that never opens
        return Refusal("exhausted", None)
    return Refusal("pending", verdict.retry_at)


@dataclass(frozen=True, slots=True)
class _Called:
    """The contact as :func:`after_attempt` reads it (``attempts``: this call included)."""

    number: str
    timezone: str | None
    attempts: int


def outcome_counts(campaign: Campaign,
                   history: Iterable[tuple[Enum | str | None, str | None]]) -> dict[str, int]:
    """Calls per retry rule over ``history`` (each attempt's outcome and disposition): a
    disposition asking for a callback counts as ``callback_requested``, as in
    :meth:`~callcenter.storage.campaigns.CampaignRepository.dispose`."""
    counts: dict[str, int] = {}
    for outcome, disposition in history:
        spec = campaign.dispositions.get(disposition) if disposition else None
        name = "callback_requested" if spec is not None and spec.retry else (
            rule_name(outcome) if outcome is not None else None)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def next_step(campaign: Campaign, *, number: str, timezone: str | None, attempts: int,
              outcome: Enum | str, at: dt.datetime,
              earlier: Iterable[tuple[Enum | str | None, str | None]] = (),
              message_left: bool = True) -> NextStep:
    """The contact's next step after a call that ended at ``at`` with ``outcome``
    (``attempts``: calls made to it, this one included; ``earlier``: the other attempts'
    outcomes and dispositions). No disposition yet: the agent's comes later, through
    :meth:`~callcenter.storage.campaigns.CampaignRepository.dispose`. ``message_left``:
    False when ``amd.on_machine: leave_message`` could not leave it (the machine is then
    retried like a hung-up one)."""
    counts = outcome_counts(campaign, [*earlier, (outcome, None)])
    return after_attempt(_Called(number, timezone, attempts), campaign, outcome, None, at,
                         outcome_counts=counts, message_left=message_left)
