"""What happens to a contact after a call: retry when, or close, and why (pure).

:func:`after_attempt` takes the call's outcome and the agent's disposition (if any) and
returns a :class:`NextStep`. In order:

1. the ``do_not_call`` disposition: the contact is closed and its number goes on the
   do-not-call list at once (``add_dnc``);
2. a ``final`` disposition (sale, not interested, wrong number, ...): closed, ``done``;
3. a ``retry`` disposition (``callback``): due at the time the contact asked for
   (``callback_at``), else after ``retry.callback_requested``'s delay;
4. no disposition, or one that is neither: the outcome's rule. ``invalid_number`` closes
   the contact; a machine with ``amd.on_machine: leave_message`` got the message and is
   done; ``busy``, ``no_answer`` (and a hang-up at once), ``machine`` (hung up), ``failed``
   (and a call we cancelled) and an abandoned live answer retry after their rule's delay;
   a live answer with no disposition yet is done until the agent disposes it.

A retry never goes over the campaign's ``max_attempts`` nor the outcome rule's own
``max_attempts`` (the contact is ``exhausted`` instead); ``retry: false`` closes it.
Whether the retry time falls in a calling window is :mod:`callcenter.dialer.eligibility`'s
question at claim time, not this one's. States are :class:`ContactState`'s values, as
strings: this module imports nothing from storage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from callcenter.config.campaign import Campaign, RetryRule
from callcenter.dialer.eligibility import ContactLike

__all__ = ["DNC_DISPOSITION", "NextStep", "after_attempt", "outcome_rule", "rule_name"]

#: The disposition that puts the number on the do-not-call list.
DNC_DISPOSITION = "do_not_call"

#: Where a contact goes (``ContactState`` values).
NextState = Literal["pending", "done", "exhausted", "do_not_call"]

#: Call outcome (``dialer.outcome.Outcome`` or ``AttemptOutcome`` value) -> retry rule.
_RULE_OF = {
    "busy": "busy",
    "no_answer": "no_answer",
    "hangup_at_once": "no_answer",
    "machine": "machine",
    "failed": "failed",
    "cancelled": "failed",
    "abandoned": "no_answer",
    "callback_requested": "callback_requested",
}
_LIVE = frozenset({"live", "answered"})


@dataclass(frozen=True, slots=True)
class NextStep:
    """The contact's next state, when it is due again (``pending`` only), why, and
    whether its number must go on the do-not-call list now."""

    state: NextState
    next_attempt_at: dt.datetime | None
    reason: str
    add_dnc: bool = False


def _key(outcome: Enum | str) -> str:
    return str(outcome.value if isinstance(outcome, Enum) else outcome)


def rule_name(outcome: Enum | str) -> str | None:
    """The retry rule an outcome counts against (``cancelled`` -> ``failed``); None: none."""
    return _RULE_OF.get(_key(outcome))


def outcome_rule(campaign: Campaign, outcome: Enum | str) -> tuple[str, RetryRule] | None:
    """The retry rule (its name and settings) for ``outcome``; None: no retry by rule."""
    name = _RULE_OF.get(_key(outcome))
    return None if name is None else (name, getattr(campaign.retry, name))


def _retry(campaign: Campaign, rule_name: str, rule: RetryRule, *, attempts: int,
           same_outcome: int, at: dt.datetime, why: str) -> NextStep:
    if not rule.retry:
        return NextStep("done", None, f"{why}: retry.{rule_name} is off")
    if attempts >= campaign.max_attempts:
        return NextStep("exhausted", None,
                        f"{why}: {attempts} of max_attempts {campaign.max_attempts} made")
    if rule.max_attempts is not None and same_outcome >= rule.max_attempts:
        return NextStep("exhausted", None,
                        f"{why}: {same_outcome} calls ended so, retry.{rule_name}."
                        f"max_attempts is {rule.max_attempts}")
    return NextStep("pending", at, f"{why}: retry at {at.isoformat()}")


def after_attempt(contact: ContactLike, campaign: Campaign, outcome: Enum | str,
                  disposition: str | None, now: dt.datetime, *,
                  outcome_counts: Mapping[str, int] | None = None,
                  callback_at: dt.datetime | None = None,
                  message_left: bool = True) -> NextStep:
    """The contact's next step after a call that ended with ``outcome``.

    ``contact.attempts``: calls made to it, this one included; ``outcome_counts``: of
    them, how many ended with each retry rule's outcome (``busy`` -> 2), this one
    included (missing: only this one); ``disposition``: the agent's, a key of the
    campaign's ``dispositions`` (unknown keys raise ``ValueError``: the repository
    validates first); ``callback_at``: when the contact asked to be called back;
    ``message_left``: whether a machine got the ``leave_message`` message (one that did
    not, e.g. hung up before the beep, is retried per ``retry.machine``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if callback_at is not None and callback_at.tzinfo is None:
        raise ValueError("callback_at must be timezone-aware")
    key = _key(outcome)
    attempts = contact.attempts
    rule = outcome_rule(campaign, outcome)
    counts = outcome_counts or {}
    if disposition is not None:
        spec = campaign.dispositions.get(disposition)
        if spec is None:
            raise ValueError(f"unknown disposition {disposition!r}")
        if disposition == DNC_DISPOSITION:
            return NextStep("do_not_call", None,
                            f"disposition {disposition}: number added to do-not-call",
                            add_dnc=True)
        if spec.final:
            return NextStep("done", None, f"final disposition {disposition}")
        if spec.retry:
            cb = campaign.retry.callback_requested
            when = callback_at if callback_at is not None else now + dt.timedelta(
                seconds=cb.delay)
            when = max(when, now)
            return _retry(campaign, "callback_requested", cb, attempts=attempts,
                          same_outcome=counts.get("callback_requested", 1),
                          at=when, why=f"disposition {disposition}")
    if key == "invalid_number":
        return NextStep("done", None, "invalid number: not retried")
    if key == "machine" and campaign.amd.on_machine == "leave_message" and message_left:
        return NextStep("done", None, "machine: message left (amd.on_machine)")
    if key in _LIVE:
        return NextStep("done", None, "answered live" + (
            f", disposition {disposition}" if disposition
            else "" if campaign.mode == "agentless"  # no agent to give one
            else ", awaiting disposition"))
    if rule is None:
        raise ValueError(f"unknown outcome {key!r}")
    name, settings = rule
    return _retry(campaign, name, settings, attempts=attempts,
                  same_outcome=counts.get(name, 1),
                  at=now + dt.timedelta(seconds=settings.delay), why=key)
