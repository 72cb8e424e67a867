"""May this contact be called now? The compliance gate before every dial (pure).

:func:`may_dial` answers with a :class:`Verdict` that names the rule deciding it, so the
audit trail says why a call was placed at that moment, or why not:

* ``dnc`` -- the number is on the do-not-call list: never;
* ``max_attempts`` -- the campaign's ``max_attempts`` calls were made: never again;
* ``abandon_72h`` -- the contact's last call was abandoned (a live answer no agent took,
  which heard the safe-harbor message) less than 72 hours ago: not again before then
  unless an agent is reserved for the call first (Ofcom's persistent-misuse policy on
  abandoned calls, applied to every campaign);
* ``no_timezone`` -- the contact's zone is unknown (none stored, none derivable from the
  number, no ``assume_timezone``): never, since its local time cannot be known;
* ``calling_window`` -- it is outside the campaign's calling windows in the contact's
  local time; with a number spanning several zones, in *every* one of them;
* ``ok`` -- allowed.

A refused verdict carries ``retry_at``, the earliest time the same rules would allow it
(the next opening of the window, after the 72 hours for an abandon): the dialer puts the
contact back due then instead of claiming it again and again. Nothing here reads a clock
or the database: the caller passes ``now``, the DNC answer and the last abandon time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from callcenter.config.campaign import Campaign
from callcenter.phone_numbers import time_zones

__all__ = [
    "ABANDON_QUIET",
    "ContactLike",
    "Verdict",
    "contact_zones",
    "may_dial",
    "next_window_open",
    "window_open_everywhere",
]

#: After an abandoned call, the contact is not called again within this long unless an
#: agent is reserved for the call before it is placed (Ofcom's persistent-misuse policy).
ABANDON_QUIET = dt.timedelta(hours=72)
#: How far ahead :func:`next_window_open` looks: a week covers every weekly window, and
#: one more day a DST change inside it.
_HORIZON_DAYS = 8


class ContactLike(Protocol):
    """What the rules read of a contact (a storage ``Contact`` or a claimed ``DueContact``)."""

    @property
    def number(self) -> str: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision and its reason, for the audit trail. ``retry_at``: when a refused
    contact could next be allowed (None: never by these rules, or allowed now)."""

    allowed: bool
    rule: str
    reason: str
    retry_at: dt.datetime | None = None


def contact_zones(timezone: str | None, number: str, campaign: Campaign) -> tuple[str, ...]:
    """The zones a contact's local time is judged in: its stored zone, else those its
    number may be in, else the campaign's ``assume_timezone``; ``()`` when none."""
    if timezone:
        return (timezone,)
    derived = time_zones(number)
    if derived:
        return derived
    return (campaign.assume_timezone,) if campaign.assume_timezone else ()


def window_open_everywhere(campaign: Campaign, zones: tuple[str, ...], now: dt.datetime) -> bool:
    """Whether ``now`` is in a calling window in every one of ``zones`` (False for none)."""
    return bool(zones) and all(campaign.window_open(zone, now) for zone in zones)


def next_window_open(campaign: Campaign, zones: tuple[str, ...],
                     after: dt.datetime) -> dt.datetime | None:
    """The first moment at or after ``after`` when the window is open in every zone
    (``after`` itself when open); None when it never is within a week (no common hours).

    The window can only open at some range's start in some zone, so those are the
    candidates, tried in time order.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    if not zones:
        return None
    if window_open_everywhere(campaign, zones, after):
        return after
    weekly = campaign.weekly_windows()
    candidates: set[dt.datetime] = set()
    for zone in zones:
        tz = ZoneInfo(zone)
        first_day = after.astimezone(tz).date()
        for offset in range(_HORIZON_DAYS):
            day = first_day + dt.timedelta(days=offset)
            for r in weekly.get(day.weekday(), ()):
                start = dt.datetime.combine(day, r.start, tzinfo=tz)
                # A start inside a DST gap does not exist: normalise through UTC, which
                # moves it to the first real instant after the gap.
                start = start.astimezone(dt.UTC)
                if start > after:
                    candidates.add(start)
    for candidate in sorted(candidates):
        if window_open_everywhere(campaign, zones, candidate):
            return candidate
    return None


def may_dial(contact: ContactLike, campaign: Campaign, now: dt.datetime, *, dnc: bool,
             last_abandon_at: dt.datetime | None = None,
             agent_reserved: bool = False) -> Verdict:
    """Whether ``contact`` may be called at ``now`` (aware) by ``campaign``.

    ``dnc``: the number is on the do-not-call list; ``last_abandon_at``: when this
    contact's latest abandoned call was (None: never abandoned); ``agent_reserved``: an
    agent is already held for this call (preview, or a callback), which lifts the 72-hour
    rule since no abandon can follow. Rules apply in the order of the module docstring:
    the first that refuses decides.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if dnc:
        return Verdict(False, "dnc", f"{contact.number} is on the do-not-call list")
    if contact.attempts >= campaign.max_attempts:
        return Verdict(False, "max_attempts",
                       f"{contact.attempts} attempts made, the campaign allows "
                       f"{campaign.max_attempts}")
    zones = contact_zones(contact.timezone, contact.number, campaign)
    if last_abandon_at is not None and not agent_reserved:
        quiet_until = last_abandon_at + ABANDON_QUIET
        if now < quiet_until:
            return Verdict(False, "abandon_72h",
                           f"abandoned at {last_abandon_at.isoformat()}: not called again "
                           f"before {quiet_until.isoformat()} unless an agent is reserved",
                           next_window_open(campaign, zones, quiet_until))
    if not zones:
        return Verdict(False, "no_timezone",
                       f"no time zone known for {contact.number} and the campaign sets no "
                       "assume_timezone")
    if not window_open_everywhere(campaign, zones, now):
        retry_at = next_window_open(campaign, zones, now)
        when = retry_at.isoformat() if retry_at else "never (no common calling hours)"
        return Verdict(False, "calling_window",
                       f"outside the calling window in {', '.join(zones)}; next open {when}",
                       retry_at)
    return Verdict(True, "ok", f"within the calling window in {', '.join(zones)}, "
                   f"attempt {contact.attempts + 1} of {campaign.max_attempts}")
