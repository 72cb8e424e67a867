"""Outbound campaigns (``campaigns:``) as frozen, strictly validated models.

One campaign says who is called (its contact list, imported with ``callcenter contacts
import``), how (``mode``, ``trunk``, ``caller_id``, ``ring_seconds``, ``amd``), when
(``calling_windows`` in the contact's own time), how often (``max_attempts``, ``retry``)
and within which legal limits (``abandon``, ``safe_harbor``)::

    campaigns:
      renewals:
        mode: progressive
        skills: [english]
        trunk: carrier
        caller_id: ["+15550100000", "+12125550100"]
        local_presence: true
        calling_windows: {mon-fri: "09:00-20:00", sat: "10:00-16:00"}
        safe_harbor: campaign/safe-harbor

Shape and single-value rules are checked here; what needs the rest of the config (the
trunk, agents and skills exist) and unsafe combinations in
:mod:`callcenter.config.campaign_checks`. Nothing here is written into the dialplan as
text except sound names (``Sound``), which keep their alphabet.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from callcenter.config.models import (
    PATTERN_WORDS,
    DayKey,
    ExternalNumber,
    Flag,
    Name,
    Ranges,
    Sound,
    TimeRange,
    VarName,
    _also_written,
    _Model,
    check_timezone,
    expand_days,
)

__all__ = [
    "DEFAULT_DISPOSITIONS",
    "RETRY_OUTCOMES",
    "AbandonRule",
    "Amd",
    "Campaign",
    "Disposition",
    "RetryRule",
]

#: Modes a campaign dials in: ``preview`` (the agent sees the contact, then dials),
#: ``progressive`` (one call per free agent), ``predictive`` (the pacer overdials within
#: the abandon rule), ``agentless`` (a call flow, or a message, for whoever answers; no
#: agent).
CampaignMode = Literal["preview", "progressive", "predictive", "agentless"]
#: Call outcomes a retry rule exists for.
RETRY_OUTCOMES = ("busy", "no_answer", "machine", "failed", "callback_requested")
#: Shortest ring time regulators and carriers accept without an explicit opt-in (the
#: FCC's 15 s / four rings before a call may be counted unanswered).
MIN_RING_SECONDS = 15

_DURATION = re.compile(r"^([0-9]{1,6})\s*(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PATTERN = r"^[0-9]{1,6}\s*(s|m|h|d)$"


def _duration(value: Any) -> Any:
    """``"10m"`` -> 600 (seconds); ``s``, ``m``, ``h`` and ``d`` units. A bare integer is
    refused: "10" could mean seconds or minutes, and retry delays are not to be guessed."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if not match:
            raise ValueError(f"invalid duration {value!r}: expected a number and a unit "
                             "s, m, h or d (90s, 10m, 4h, 1d)")
        return int(match.group(1)) * _UNIT[match.group(2)]
    if isinstance(value, int) and not isinstance(value, bool):
        # ValueError, not TypeError: pydantic reports only ValueError as a located error.
        raise ValueError(f"invalid duration {value}: write the unit (e.g. {value}m)")  # noqa: TRY004
    return value


#: A delay written with its unit (``10m``), as seconds.
Duration = Annotated[int, BeforeValidator(_duration), Field(ge=0, le=90 * 86400),
                     _also_written(type="string", pattern=_DURATION_PATTERN)]
#: ISO 3166 region of numbers written without a country code (``US``, ``GB``).
Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
PATTERN_WORDS[_DURATION_PATTERN] = "a duration: a number and a unit s, m, h or d (90s, 10m, 4h, 1d)"
PATTERN_WORDS[r"^[A-Z]{2}$"] = "a country code: two uppercase letters (US, GB)"


class RetryRule(_Model):
    """When a contact whose call ended this way is called again: after ``delay``, and at
    most ``max_attempts`` times for this outcome (the campaign's ``max_attempts`` caps all
    outcomes together). ``retry: false`` closes the contact on this outcome."""

    retry: Flag = True
    delay: Duration = 3600
    max_attempts: int | None = Field(None, ge=1, le=100)


def _retry_shorthand(value: Any) -> Any:
    """``busy: 10m`` is ``busy: {delay: 10m}``; ``busy: false`` is ``{retry: false}``."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return {"delay": value}
    if value is False:
        return {"retry": False}
    return value


Retry = Annotated[RetryRule, BeforeValidator(_retry_shorthand),
                  _also_written(type="string", pattern=_DURATION_PATTERN)]


class RetryRules(_Model):
    """A rule per outcome; the defaults suit a consumer list (busy soon, no answer later)."""

    busy: Retry = RetryRule(delay="15m")
    no_answer: Retry = RetryRule(delay="4h")
    machine: Retry = RetryRule(delay="1d")
    failed: Retry = RetryRule(delay="1h", max_attempts=2)
    callback_requested: Retry = RetryRule(delay="1h")


class Amd(_Model):
    """Answering-machine detection (Asterisk's ``AMD()`` on the answered contact)."""

    enabled: Flag = False
    #: What a detected machine gets: ``hangup`` (retried per ``retry.machine``) or
    #: ``leave_message`` (``message`` played after the beep, then hang up).
    on_machine: Literal["hangup", "leave_message"] = "hangup"
    message: Sound | None = None

    @model_validator(mode="after")
    def _message_to_leave(self) -> Amd:
        if self.on_machine == "leave_message" and self.message is None:
            raise ValueError("on_machine: leave_message needs 'message' (the sound left "
                             "on the machine)")
        return self


class AbandonRule(_Model):
    """The compliance limit on abandoned calls (a live answer no agent took within 2 s).

    ``us_30_days``: the FCC's 3 % of live answers over 30 days per campaign;
    ``uk_24_hours``: Ofcom-style 3 % over 24 hours. The pacer holds the rate below
    ``max_percent``.
    """

    rule: Literal["us_30_days", "uk_24_hours"] = "us_30_days"
    max_percent: float = Field(3.0, gt=0, le=3.0)

    @property
    def window_seconds(self) -> float:
        return 30 * 86400.0 if self.rule == "us_30_days" else 86400.0


class Disposition(_Model):
    """What an agent records at the end of a call. ``final`` closes the contact;
    ``retry`` schedules it again (``retry.callback_requested``); neither leaves it to the
    campaign's retry rules by call outcome.

    ``queue`` (a ``queues:`` entry) makes it a warm transfer: chosen while the call is
    live, the contact leaves the agent for that inbound queue (``skills`` and
    ``priority`` as a flow's queue destination: the queue's own skills when none, its
    priority plus this one), as a lead handed to sales
    (:mod:`callcenter.dialer.handoff`)."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=60)]
    final: Flag = False
    retry: Flag = False
    queue: Name | None = None
    skills: tuple[Name, ...] = ()
    priority: int = Field(0, ge=0, le=100)

    @model_validator(mode="after")
    def _final_or_retry(self) -> Disposition:
        if self.final and self.retry:
            raise ValueError("a disposition is final or retried, not both")
        if self.queue is None and (self.skills or self.priority):
            raise ValueError("'skills' and 'priority' go with 'queue' (the inbound queue "
                             "the live call is handed to)")
        if self.queue is not None and self.retry:
            raise ValueError("a disposition that hands the call to a queue cannot be "
                             "retried: the contact is taken care of there")
        return self


def _disp(label: str, *, final: bool = False, retry: bool = False) -> Disposition:
    return Disposition(label=label, final=final, retry=retry)


#: Dispositions of a campaign that sets none of its own.
DEFAULT_DISPOSITIONS: dict[str, Disposition] = {
    "sale": _disp("Sale", final=True),
    "meeting_booked": _disp("Meeting booked", final=True),
    "warm_transfer_sales": _disp("Warm transfer to sales", final=True),
    "promise_to_pay": _disp("Promise to pay", final=True),
    "callback": _disp("Call back later", retry=True),
    "not_interested": _disp("Not interested", final=True),
    "wrong_number": _disp("Wrong number", final=True),
    "do_not_call": _disp("Do not call", final=True),
}


def _window(start: str, end: str) -> tuple[TimeRange, ...]:
    return (TimeRange.model_validate({"start": start, "end": end}),)


def _one_or_pool(value: Any) -> Any:
    """One caller ID or a pool of them: a single number is a one-number pool."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return (value,)
    return value


class Campaign(_Model):
    """One outbound campaign (README: "Outbound campaigns")."""

    description: str = ""
    mode: CampaignMode
    #: Agents working the campaign, and/or skills: agents having any of them work it too.
    agents: tuple[Name, ...] = ()
    skills: tuple[Name, ...] = ()
    #: The ``trunks:`` entry the calls go out through.
    trunk: Name
    #: The number(s) shown to the contact; with ``local_presence``, the pool's number
    #: sharing the contact's area code is preferred.
    caller_id: Annotated[tuple[ExternalNumber, ...], BeforeValidator(_one_or_pool),
                         Field(min_length=1, max_length=500),
                         _also_written(type="string", pattern=r"^\+?[0-9]{3,20}$")]
    local_presence: Flag = False
    #: Region of contact-list numbers written without a country code.
    region: Region = "US"
    #: When contacts may be called, in each contact's own time zone.
    calling_windows: Annotated[dict[DayKey, Ranges], Field(min_length=1, json_schema_extra={
        "propertyNames": {"pattern": "^(mon|tue|wed|thu|fri|sat|sun)"
                                     "(-(mon|tue|wed|thu|fri|sat|sun))?$"}})] = Field(
        default_factory=lambda: {"mon-fri": _window("09:00", "20:00"),
                                 "sat": _window("10:00", "16:00")})
    #: Zone of a contact whose number tells none; without it such a contact is never called.
    assume_timezone: str | None = None
    #: Seconds the contact's phone rings before the call counts as no answer.
    ring_seconds: int = Field(25, ge=5, le=120)
    #: Allow ``ring_seconds`` under 15 (a carrier-specific test; never on a public list).
    allow_short_ring: Flag = False
    amd: Amd = Amd()
    #: Calls to one contact at most, whatever their outcomes.
    max_attempts: int = Field(5, ge=1, le=100)
    retry: RetryRules = RetryRules()
    #: The abandon limit; ``null`` only for a mode that never abandons (preview, agentless).
    abandon: AbandonRule | None = AbandonRule()
    #: Played to a live answer no agent can take within 2 s (identifies the caller and a
    #: number to call back): required for progressive and predictive.
    safe_harbor: Sound | None = None
    #: The message an agentless campaign plays to whoever answers, then hangs up (the
    #: simple case; ``flow`` for anything more).
    message: Sound | None = None
    #: The ``flows:`` entry an agentless campaign runs on every live answer (a survey, a
    #: reminder with "press 1 to speak to someone": a menu option to a queue).
    flow: Name | None = None
    #: Calls an agentless campaign has up at once (ringing or in the flow).
    lines: int = Field(1, ge=1, le=100)
    #: The collect variables whose values are stored per contact; omitted: every
    #: variable the flow, and the flows and menus it reaches, collects.
    answers: Annotated[tuple[VarName, ...], Field(max_length=100)] | None = None
    #: What the agent reads, shown by the agent console (``{first_name}`` from contact data).
    script: Annotated[str, StringConstraints(max_length=20000)] = ""
    dispositions: dict[Name, Disposition] = Field(
        default_factory=lambda: dict(DEFAULT_DISPOSITIONS), min_length=1)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        from callcenter.phone_numbers import is_region

        if not is_region(value):
            raise ValueError(f"unknown region {value!r}: expected an ISO 3166 country code "
                             "with a numbering plan (US, GB, DE, ...)")
        return value

    @field_validator("assume_timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    def weekly_windows(self) -> dict[int, tuple[TimeRange, ...]]:
        """Weekday (0 = Monday) -> calling ranges, day ranges expanded."""
        out: dict[int, tuple[TimeRange, ...]] = {}
        for key, ranges in self.calling_windows.items():
            for day in expand_days(key):
                out[day] = out.get(day, ()) + tuple(ranges)
        return out

    def window_open(self, zone: str | None, now: dt.datetime) -> bool:
        """Whether a contact in ``zone`` may be called at ``now`` (aware): ``now`` in the
        contact's zone falls in a calling window. A contact of unknown zone (``None``) is
        called in ``assume_timezone``, or never when the campaign sets none."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        zone = zone or self.assume_timezone
        if zone is None:
            return False
        local = now.astimezone(ZoneInfo(zone))
        ranges = self.weekly_windows().get(local.weekday(), ())
        return any(r.contains(local.time().replace(tzinfo=None)) for r in ranges)

    def caller_id_for(self, number: str) -> str:
        """The caller ID to show ``number`` (E.164): with ``local_presence``, the pool's
        first number in the contact's area code (people answer local numbers), else the
        pool's first number."""
        if self.local_presence:
            from callcenter.phone_numbers import area_code

            wanted = area_code(number)
            if wanted is not None:
                for candidate in self.caller_id:
                    if area_code(candidate if candidate.startswith("+") else "+" + candidate
                                 ) == wanted:
                        return candidate
        return self.caller_id[0]
