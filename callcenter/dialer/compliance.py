"""A campaign's compliance report over its call attempts (pure).

What a regulator or an auditor asks of an outbound campaign, recomputed from the attempts
themselves rather than trusted from the dialer's own counters:

* live answers and abandons (a live answer no agent took within 2 s), and the abandon
  rate over the campaign's rule window ending at ``now`` (30 days rolling under
  ``us_30_days``, 24 hours under ``uk_24_hours``), against ``max_percent``;
* calls placed outside the calling window: each attempt's start time in the contact's
  zone(s), as :mod:`callcenter.dialer.eligibility` judges them. Must be 0;
* calls to numbers that were on the do-not-call list when the call started. Must be 0;
  and how many contacts the dialer refused for that list (``dnc_numbers_blocked``, its
  counter: the list at work, which the attempts alone cannot show);
* attempts per contact: the most any contact got, and a histogram.

The storage layer turns rows into :class:`AttemptRecord` and :class:`ContactRecord`;
nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from callcenter.config.campaign import Campaign
from callcenter.dialer.eligibility import contact_zones, window_open_everywhere

__all__ = ["AttemptRecord", "ComplianceReport", "ContactRecord", "compliance_report"]

_LIVE = frozenset({"answered", "abandoned", "callback_requested"})


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A contact as the report needs it."""

    id: int
    number: str
    timezone: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call: when it started, how it ended (an ``AttemptOutcome`` value, None while
    in progress), and whether its number was on the DNC list at its start."""

    id: int
    contact_id: int
    started_at: dt.datetime
    outcome: str | None
    on_dnc: bool = False


@dataclass(frozen=True)
class ComplianceReport:
    """The figures, and whether each hard rule held."""

    campaign: str
    rule: str
    window_hours: float
    max_percent: float
    attempts: int
    live_answers: int
    abandons: int
    window_live_answers: int
    window_abandons: int
    outside_window: tuple[int, ...]
    dnc_calls: tuple[int, ...]
    contacts: int
    max_attempts_per_contact: int
    attempts_histogram: dict[int, int] = field(default_factory=dict)
    dnc_blocked: int = 0

    @property
    def window_abandon_percent(self) -> float:
        """Abandons per 100 live answers in the rule's window (0 with no live answer)."""
        if not self.window_live_answers:
            return 0.0
        return 100.0 * self.window_abandons / self.window_live_answers

    @property
    def compliant(self) -> bool:
        return (not self.outside_window and not self.dnc_calls
                and self.window_abandon_percent <= self.max_percent)

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs in reading order, for a table or CSV."""
        hist = " ".join(f"{k}:{v}" for k, v in sorted(self.attempts_histogram.items()))
        return [
            ("campaign", self.campaign),
            ("abandon_rule", (f"{self.rule} ({self.window_hours:g} h, max "
                              f"{self.max_percent:g} %)")),
            ("attempts", str(self.attempts)),
            ("live_answers", str(self.live_answers)),
            ("abandons", str(self.abandons)),
            ("window_live_answers", str(self.window_live_answers)),
            ("window_abandons", str(self.window_abandons)),
            ("window_abandon_percent", f"{self.window_abandon_percent:.2f}"),
            ("calls_outside_window", str(len(self.outside_window))),
            ("calls_to_dnc_numbers", str(len(self.dnc_calls))),
            ("dnc_numbers_blocked", str(self.dnc_blocked)),
            ("contacts", str(self.contacts)),
            ("max_attempts_per_contact", str(self.max_attempts_per_contact)),
            ("attempts_histogram", hist),
            ("compliant", "yes" if self.compliant else "NO"),
        ]

    def as_json(self) -> dict[str, object]:
        return {
            "campaign": self.campaign, "rule": self.rule, "window_hours": self.window_hours,
            "max_percent": self.max_percent, "attempts": self.attempts,
            "live_answers": self.live_answers, "abandons": self.abandons,
            "window_live_answers": self.window_live_answers,
            "window_abandons": self.window_abandons,
            "window_abandon_percent": round(self.window_abandon_percent, 4),
            "calls_outside_window": list(self.outside_window),
            "calls_to_dnc_numbers": list(self.dnc_calls),
            "dnc_numbers_blocked": self.dnc_blocked,
            "contacts": self.contacts,
            "max_attempts_per_contact": self.max_attempts_per_contact,
            "attempts_histogram": {str(k): v for k, v in
                                   sorted(self.attempts_histogram.items())},
            "compliant": self.compliant,
        }


def compliance_report(name: str, campaign: Campaign, contacts: Iterable[ContactRecord],
                      attempts: Iterable[AttemptRecord], now: dt.datetime, *,
                      dnc_blocked: int = 0) -> ComplianceReport:
    """The report for campaign ``name`` as of ``now`` (aware). Attempts of contacts not
    in ``contacts`` are judged with an unknown zone (the campaign's assumption).
    ``dnc_blocked``: contacts the dialer refused for the DNC list (its stored counter)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    by_id = {c.id: c for c in contacts}
    rule = campaign.abandon.rule if campaign.abandon else "us_30_days"
    max_percent = campaign.abandon.max_percent if campaign.abandon else 3.0
    window = dt.timedelta(seconds=(campaign.abandon.window_seconds if campaign.abandon
                                   else 30 * 86400.0))
    since = now - window
    total = live = abandons = w_live = w_abandons = 0
    outside: list[int] = []
    dnc: list[int] = []
    zones_of: dict[int, tuple[str, ...]] = {}
    for a in attempts:
        total += 1
        is_live = a.outcome in _LIVE
        is_abandon = a.outcome == "abandoned"
        live += is_live
        abandons += is_abandon
        if since < a.started_at <= now:
            w_live += is_live
            w_abandons += is_abandon
        if a.contact_id not in zones_of:
            c = by_id.get(a.contact_id)
            zones_of[a.contact_id] = contact_zones(
                c.timezone if c else None, c.number if c else "", campaign)
        if not window_open_everywhere(campaign, zones_of[a.contact_id], a.started_at):
            outside.append(a.id)
        if a.on_dnc:
            dnc.append(a.id)
    histogram = Counter(c.attempts for c in by_id.values())
    return ComplianceReport(
        campaign=name, rule=rule, window_hours=window.total_seconds() / 3600,
        max_percent=max_percent, attempts=total, live_answers=live, abandons=abandons,
        window_live_answers=w_live, window_abandons=w_abandons,
        outside_window=tuple(outside), dnc_calls=tuple(dnc), contacts=len(by_id),
        max_attempts_per_contact=max(histogram, default=0),
        attempts_histogram=dict(sorted(histogram.items())), dnc_blocked=dnc_blocked)
