"""The call-center configuration as frozen, strictly validated models.

A config directory holds YAML files whose top-level keys are the sections of
:class:`CallCenterConfig` (``settings``, ``entry_points``, ``flows``, ``menus``,
``schedules``, ``lookups``, ``queues``, ``skills``, ``agents``, ``voicemail``,
``caller_id_rules``, ``pause_reasons``, ``api_users``, ``trunks``, ``campaigns``). Shape and types are checked here; cross-references
(undefined targets, reachability, loops, sounds) in :mod:`callcenter.config.checks`.

Every name that ends up in the dialplan (menu, flow, queue names, sound names,
variable names, numbers) is restricted by a pattern, so the generator never has
to escape a YAML value: nothing outside these alphabets can get in.

Destinations and steps are one-key mappings, the way an admin writes them::

    - play: [hello-world]
    - menu: main                 # a step that ends the flow
    options:
      "1": {queue: sales, priority: 5}
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from callcenter.asterisk import variables as V

__all__ = [
    "BUILTIN_ADMIN",
    "DESTINATION_KINDS",
    "STEP_KINDS",
    "Agent",
    "Announce",
    "ApiUser",
    "CallCenterConfig",
    "Callback",
    "CallbackDial",
    "CallerIdRule",
    "Destination",
    "EntryPoint",
    "FeatureCodes",
    "Flow",
    "HttpApiSettings",
    "Lookup",
    "Menu",
    "PauseReason",
    "Queue",
    "Record",
    "RelaxStep",
    "Schedule",
    "ServiceLevel",
    "Settings",
    "Step",
    "TakeMessage",
    "Trunk",
    "TrunkAuth",
    "WhenUnavailable",
]


class _Model(BaseModel):
    # Numbers an admin writes unquoted (extension: 1001) are dial strings.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


@dataclass(frozen=True)
class _AlsoWritten:
    """JSON Schema: the value may also be written as ``alternative``.

    For fields whose before-validator accepts a shorthand (one sound for a list, hours as
    ``"08:00-20:00"``): the editor's schema must accept what admins write, not only the
    shape the model ends up with.
    """

    alternative: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [dict(self.alternative), handler(core_schema)]}


def _also_written(**alternative: Any) -> _AlsoWritten:
    return _AlsoWritten(tuple(alternative.items()))


# -- alphabets ---------------------------------------------------------------

#: Names of menus, flows, queues, ...: they become dialplan context names.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
#: Asterisk sound names, relative to the sounds dir, without extension.
_SOUND_PATTERN = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
Sound = Annotated[str, StringConstraints(pattern=_SOUND_PATTERN, max_length=120)]
#: Channel variable names set by collect steps.
VarName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")]
#: A dialled extension or DID, as Asterisk would match it (no patterns).
Number = Annotated[str, StringConstraints(pattern=r"^[0-9*#+]{1,32}$|^s$")]
#: A phone number to call out to.
ExternalNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,20}$")]
MenuKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")]
#: Each pattern above and below in words, for error messages: an admin reads "a name:
#: lowercase letter, ..." more easily than the regular expression.
PATTERN_WORDS: dict[str, str] = {
    r"^[a-z][a-z0-9_]{0,47}$":
        "a name: a lowercase letter, then lowercase letters, digits or _, at most 48 characters",
    _SOUND_PATTERN:
        "a sound name: letters, digits, _ or -, in parts separated by / (digits/1), "
        "without extension",
    r"^[A-Z][A-Z0-9_]{0,31}$":
        "a variable name: an uppercase letter, then uppercase letters, digits or _, "
        "at most 32 characters",
    r"^[0-9*#+]{1,32}$|^s$": "a number: 1 to 32 of the characters 0-9 * # +, or s",
    r"^\+?[0-9]{3,20}$": "a phone number: an optional +, then 3 to 20 digits",
    r"^[a-z]{2}(_[A-Z]{2})?$":
        "a language: two lowercase letters, optionally _ and a country (en, pt_BR)",
    r"^[0-9]{2,10}$": "2 to 10 digits",
    r"^\^?[0-9*#\[\]{},?+|()-]+\$?$":
        "a regular expression over DTMF digits: 0-9 * # and [ ] { } , ? + | ( ) -, "
        "optionally between ^ and $",
    r"^[A-Za-z0-9_*#+-]{1,32}$": "a value: 1 to 32 letters, digits or _ * # + -",
    r"^https?://[^\s]+\{value\}[^\s]*$":
        "an http:// or https:// URL without blanks, with {value} where the key goes",
    r"^[A-Za-z0-9 ._'-]{1,60}$": "1 to 60 letters, digits, blanks or . _ ' -",
    r"^\+?[0-9][0-9 ()-]{2,30}$":
        "a phone number: an optional +, a digit, then 2 to 30 digits, blanks, ( ) or -",
    r"^[0-9]{1,15}$": "1 to 15 digits",
    r"^[a-z][a-z0-9_-]{0,47}$":
        "a lowercase letter, then lowercase letters, digits, _ or -, at most 48 characters",
    r"^[0-9.]{7,15}(/[0-9]{1,2})?$": "an IPv4 address or network (127.0.0.1/32)",
    r"^[0-9]{1,4}$": "1 to 4 digits",
    r"^[*#]?[0-9]{1,6}$": "a feature code: an optional * or #, then 1 to 6 digits",
    r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+:/-]{1,100}$":
        "a dial string: a channel technology, / and a resource of letters, digits "
        "or _ . @ + : / - (PJSIP/1001, PJSIP/1001@office)",
    r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+:/{}-]{1,120}$":
        "a dial string with {number} for the customer's number: a channel technology, / "
        "and letters, digits or _ . @ + : / - (PJSIP/{number}@trunk, "
        "Local/{number}@cc-callback-out)",
}

#: One sound or a list of them (a single name is read as a one-item list).
Prompts = Annotated[tuple[Sound, ...], Field(max_length=20),
                    _also_written(type="string", pattern=_SOUND_PATTERN, maxLength=120)]


def _only_true(value: Any) -> Any:
    """YAML's ``true`` only: pydantic's ``Literal[True]`` would take 1 and 1.0 as well."""
    if value is False:
        raise ValueError("expected true, got false (true is the only value this key takes)")
    if value is not True:
        shown = repr(value) if isinstance(value, str) else str(value).lower()
        raise ValueError(f"expected true, got {shown} (only true/false are booleans)")
    return value


#: A boolean written ``true`` or ``false`` and nothing else: pydantic's lax mode would
#: take ``yes``, ``on``, ``1`` and ``"true"``, which the YAML loader keeps as strings.
Flag = Annotated[bool, Strict()]
#: A key whose only value is ``true`` (``hangup: true``, ``back: true``).
TrueFlag = Annotated[Literal[True], BeforeValidator(_only_true)]


def _prompts(value: Any) -> Any:
    """Accept one sound name where a list of prompts is expected."""
    return (value,) if isinstance(value, str) else value


# -- destinations ------------------------------------------------------------

class MenuDest(_Model):
    menu: Name


class FlowDest(_Model):
    flow: Name


class QueueDest(_Model):
    """Hand the call to the queue router (Stasis app) with call attributes."""

    queue: Name
    skills: tuple[Name, ...] = ()
    priority: int = Field(0, ge=0, le=100)


class ExtensionDest(_Model):
    extension: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")]


class ExternalDest(_Model):
    external: ExternalNumber


class VoicemailDest(_Model):
    voicemail: Name


class HangupDest(_Model):
    hangup: TrueFlag = True
    #: Q.850 cause: 16 normal clearing, 21 call rejected, 17 busy.
    cause: int = Field(16, ge=1, le=127)


class BackDest(_Model):
    """Return to the menu the caller came from (menus only)."""

    back: TrueFlag


class RepeatDest(_Model):
    """Play the current menu again (menus only)."""

    repeat: TrueFlag


DESTINATION_KINDS: tuple[str, ...] = (
    "menu", "flow", "queue", "extension", "external", "voicemail", "hangup", "back", "repeat",
)


def _one_key_tag(kinds: tuple[str, ...]) -> Any:
    """Discriminate a one-key mapping by which known key it has."""

    def tag(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return next((k for k in kinds if k in type(value).model_fields), None)
        if isinstance(value, dict):
            # First known key wins, so {menu: a, flow: b} reports "unknown key 'flow'".
            return next((k for k in kinds if k in value), None)
        return None

    return tag


Destination = Annotated[
    Annotated[MenuDest, Tag("menu")] | Annotated[FlowDest, Tag("flow")] | Annotated[QueueDest, Tag("queue")] | Annotated[ExtensionDest, Tag("extension")] | Annotated[ExternalDest, Tag("external")] | Annotated[VoicemailDest, Tag("voicemail")] | Annotated[HangupDest, Tag("hangup")] | Annotated[BackDest, Tag("back")] | Annotated[RepeatDest, Tag("repeat")],
    Discriminator(
        _one_key_tag(DESTINATION_KINDS),
        custom_error_type="destination",
        custom_error_message="expected a destination: one of the keys "
        + ", ".join(DESTINATION_KINDS),
    ),
]


# -- steps -------------------------------------------------------------------

class PlayStep(_Model):
    play: Prompts

    _norm = field_validator("play", mode="before")(_prompts)


class SetLanguageStep(_Model):
    set_language: Language


class CollectSpec(_Model):
    """Collect DTMF digits into a channel variable (Asterisk ``Read``)."""

    variable: VarName
    prompts: Prompts
    min_digits: int = Field(1, ge=1, le=32)
    max_digits: int = Field(16, ge=1, le=32)
    #: A regular expression over the digits; only DTMF characters and regex
    #: punctuation, so it can be placed in the dialplan verbatim.
    pattern: Annotated[str, StringConstraints(pattern=r"^\^?[0-9*#\[\]{},?+|()-]+\$?$")] | None = None
    terminator: Literal["#", "*", ""] = "#"
    timeout: float = Field(5.0, gt=0, le=60)
    retries: int = Field(3, ge=1, le=10)
    invalid_prompts: Prompts = ("pbx-invalid",)
    on_failure: Destination = HangupDest()

    _norm = field_validator("prompts", "invalid_prompts", mode="before")(_prompts)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            # Python and Asterisk's REGEX() must read it the same way: only what
            # the generator can render in the shared grammar is accepted.
            from callcenter.flows.digit_pattern import canonical_pattern

            canonical_pattern(value)
        return value

    @model_validator(mode="after")
    def _lengths(self) -> CollectSpec:
        if self.min_digits > self.max_digits:
            raise ValueError(
                f"min_digits ({self.min_digits}) is greater than max_digits ({self.max_digits})"
            )
        return self


class CollectStep(_Model):
    collect: CollectSpec


def _described(variables: dict[str, str]) -> str:
    return "; ".join(f"{name}: {meaning}" for name, meaning in variables.items())


_LOOKUP_SETS = (
    "A data dip: run a lookup and branch on its result (found / not_found / error). "
    f"It sets {_described(V.SET_BY_LOOKUP)}. A later branch step can test any of them."
)


class LookupSpec(_Model):
    __doc__ = _LOOKUP_SETS

    lookup: Name
    #: Variable holding the key to look up; ``CALLERID`` for the caller's number.
    input: VarName = "CALLERID"
    found: Destination | None = None
    not_found: Destination | None = None
    error: Destination | None = None


class LookupStep(_Model):
    lookup: LookupSpec


class BranchSpec(_Model):
    """Go where the variable's value says; ``default`` (or the next step) otherwise."""

    variable: Annotated[VarName, Field(description=(
        "A variable some step sets: a collect step's variable; after a lookup step "
        f"{', '.join(V.SET_BY_LOOKUP)}; after check_schedule {', '.join(V.SET_BY_SCHEDULE)}; "
        f"always {', '.join(V.SET_AT_ENTRY)}; or Asterisk's {', '.join(V.ASTERISK_VARIABLES)}."
    ))]
    cases: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_*#+-]{1,32}$")],
                Destination]
    default: Destination | None = None


class BranchStep(_Model):
    branch: BranchSpec


class ScheduleSpec(_Model):
    schedule: Name
    open: Destination | None = None
    closed: Destination
    #: Where holidays go; defaults to ``closed``.
    holiday: Destination | None = None


class ScheduleStep(_Model):
    check_schedule: ScheduleSpec


class TransferStep(_Model):
    transfer: Destination


class MenuStep(_Model):
    menu: Name


class GotoStep(_Model):
    goto: Name


class HangupStep(_Model):
    hangup: TrueFlag | HangupDest


STEP_KINDS: tuple[str, ...] = (
    "play", "set_language", "collect", "lookup", "branch", "check_schedule", "transfer",
    "menu", "goto", "hangup",
)

Step = Annotated[
    Annotated[PlayStep, Tag("play")] | Annotated[SetLanguageStep, Tag("set_language")] | Annotated[CollectStep, Tag("collect")] | Annotated[LookupStep, Tag("lookup")] | Annotated[BranchStep, Tag("branch")] | Annotated[ScheduleStep, Tag("check_schedule")] | Annotated[TransferStep, Tag("transfer")] | Annotated[MenuStep, Tag("menu")] | Annotated[GotoStep, Tag("goto")] | Annotated[HangupStep, Tag("hangup")],
    Discriminator(
        _one_key_tag(STEP_KINDS),
        custom_error_type="step",
        custom_error_message="expected a step: one of the keys " + ", ".join(STEP_KINDS),
    ),
]

#: Steps after which nothing else in the flow runs.
TERMINAL_STEPS = (TransferStep, MenuStep, GotoStep, HangupStep)


class Flow(_Model):
    description: str = ""
    steps: Annotated[tuple[Step, ...], Field(min_length=1, max_length=100)]


# -- menus -------------------------------------------------------------------

class Menu(_Model):
    """A native-dialplan IVR menu: prompts, one-key options, retries."""

    description: str = ""
    prompts: Prompts
    options: dict[MenuKey, Destination] = Field(min_length=1)
    #: Seconds to wait for a key after the prompts.
    timeout: float = Field(5.0, gt=0, le=60)
    #: Invalid keys plus timeouts allowed before ``on_exhausted``.
    max_retries: int = Field(3, ge=1, le=10)
    invalid_prompts: Prompts = ("pbx-invalid",)
    timeout_prompts: Prompts = ()
    exhausted_prompts: Prompts = ("vm-goodbye",)
    #: Where an invalid key goes at once instead of retrying.
    on_invalid: Destination | None = None
    #: Where a timeout goes at once instead of retrying.
    on_timeout: Destination | None = None
    on_exhausted: Destination = HangupDest()

    _norm = field_validator("prompts", "invalid_prompts", "timeout_prompts",
                            "exhausted_prompts", mode="before")(_prompts)


# -- schedules ---------------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(text: str) -> dt.time:
    m = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00)", text)
    if not m:
        raise ValueError(f"invalid time {text!r}: expected HH:MM")
    if m.group(3):
        return dt.time(23, 59, 59, 999999)
    return dt.time(int(m.group(1)), int(m.group(2)))


class TimeRange(_Model):
    start: dt.time
    end: dt.time

    def contains(self, t: dt.time) -> bool:
        return self.start <= t < self.end

    def __str__(self) -> str:
        end = "24:00" if self.end == dt.time(23, 59, 59, 999999) else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


def _parse_ranges(value: Any) -> Any:
    """``"08:00-12:00, 13:00-18:00"`` -> TimeRanges; ``closed`` -> none."""
    if not isinstance(value, str):
        return value
    if value.strip() == "closed":
        return ()
    out = []
    for part in value.split(","):
        start, sep, end = part.strip().partition("-")
        if not sep:
            raise ValueError(f"invalid time range {part.strip()!r}: expected HH:MM-HH:MM")
        s, e = _parse_hhmm(start.strip()), _parse_hhmm(end.strip())
        if e <= s:
            raise ValueError(f"time range {part.strip()!r} ends before it starts")
        out.append(TimeRange(start=s, end=e))
    return tuple(out)


_TIME = r"(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)"
_RANGE = rf"{_TIME}\s*-\s*{_TIME}"
#: Opening hours: ``"08:00-12:00, 13:00-18:00"``, ``closed``, or a list of start/end.
#: Parsed per value, so a bad time is reported at its own day, not at ``hours:``.
Ranges = Annotated[tuple[TimeRange, ...], BeforeValidator(_parse_ranges), Field(max_length=8),
                   _also_written(
    type="string", pattern=rf"^\s*(closed|{_RANGE}(\s*,\s*{_RANGE})*)\s*$")]


def _parse_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"invalid date {value!r}: expected YYYY-MM-DD") from None
    return value


class Holiday(_Model):
    """Closed all day, from ``date`` to ``until`` inclusive."""

    date: dt.date
    until: dt.date | None = None
    name: str = ""

    _dates = field_validator("date", "until", mode="before")(_parse_date)

    @property
    def last(self) -> dt.date:
        return self.until or self.date

    @model_validator(mode="after")
    def _order(self) -> Holiday:
        if self.until is not None and self.until < self.date:
            raise ValueError(f"holiday ends ({self.until}) before it starts ({self.date})")
        return self


class SpecialDay(_Model):
    """A day with other hours than the weekly ones (e.g. Christmas Eve)."""

    date: dt.date
    hours: Ranges
    name: str = ""

    _date = field_validator("date", mode="before")(_parse_date)


def _day_key(key: str) -> str:
    try:
        expand_days(key)
    except ValueError:
        raise ValueError(f"expected a day or a range of days of {', '.join(_DAYS)} "
                         "(e.g. mon-fri)") from None
    return key


#: ``mon``, or a range such as ``mon-fri``; checked per key so the error points at it.
DayKey = Annotated[str, AfterValidator(_day_key)]


class Schedule(_Model):
    #: IANA time zone; defaults to ``settings.timezone``.
    timezone: str | None = None
    #: Weekly hours by day or day range (``mon-fri``), ``closed`` allowed.
    hours: Annotated[dict[DayKey, Ranges], Field(json_schema_extra={"propertyNames": {
        "pattern": "^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$"}})]
    holidays: tuple[Holiday, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            check_timezone(value)
        return value

    def weekly(self) -> dict[int, tuple[TimeRange, ...]]:
        """Weekday (0 = Monday) -> ranges, day ranges expanded."""
        out: dict[int, tuple[TimeRange, ...]] = {}
        for key, ranges in self.hours.items():
            for day in expand_days(key):
                out[day] = out.get(day, ()) + tuple(ranges)
        return out


def expand_days(key: str) -> list[int]:
    """``mon-fri`` -> [0..4]; ``sat`` -> [5]; ``fri-mon`` wraps."""
    first, sep, last = key.partition("-")
    if first not in _DAYS or (sep and last not in _DAYS):
        raise ValueError(
            f"invalid day {key!r}: expected a day or range of {', '.join(_DAYS)} (e.g. mon-fri)"
        )
    a = _DAYS.index(first)
    b = _DAYS.index(last) if sep else a
    return [(a + i) % 7 for i in range(((b - a) % 7) + 1)]


def check_timezone(name: str) -> None:
    if name not in _zones():
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as "
                         "America/New_York)")
    try:
        ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValueError(f"time zone {name!r} is not installed") from None


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


# -- data dips, queues, agents -----------------------------------------------

class DatabaseLookup(_Model):
    """Look up an account in the call center's database."""

    source: Literal["database"]
    by: Literal["account_number", "phone"]


class HttpLookup(_Model):
    """GET a URL with the key; 200 + JSON object = found, 404 = not found."""

    source: Literal["http"]
    url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+\{value\}[^\s]*$")]
    timeout: float = Field(2.0, gt=0, le=10)


class AgiLookup(_Model):
    """Run an AGI script of ``agi_scripts/`` that sets CC_LOOKUP_STATUS."""

    source: Literal["agi"]
    script: Name


Lookup = Annotated[DatabaseLookup | HttpLookup | AgiLookup, Field(discriminator="source")]


def _skill_expression(value: str) -> str:
    """Parse now, so a malformed requirement is a located error at validate time."""
    from callcenter.routing.expr import ExprError, parse_expr

    try:
        parse_expr(value)
    except ExprError as exc:
        raise ValueError(f"invalid skill expression {value!r}: {exc}") from None
    return value


#: A requirement over agent skills: ``billing >= 5 and (english or spanish >= 7)``
#: (and / or / not, parentheses, comparisons with levels 0-10; a bare skill is level >= 1).
SkillExpression = Annotated[str, StringConstraints(max_length=1000),
                            AfterValidator(_skill_expression)]

#: How the queue router picks among the agents that qualify for a call.
Strategy = Literal["longest_idle", "fewest_calls", "round_robin", "best_skill", "ring_all"]


class RelaxStep(_Model):
    """After ``after`` seconds of waiting, one of: a looser ``requires``, ``any_agent`` of
    the queue, or ``overflow`` to another destination. Applies to callers already waiting."""

    after: int = Field(ge=1, le=86400)
    #: Replaces the queue's ``requires`` (the call's own skills stay required).
    requires: SkillExpression | None = None
    #: Any agent of the queue (the call's skills and the queue's ``requires`` dropped).
    any_agent: TrueFlag | None = None
    #: Leave the queue: another queue, voicemail, ...
    overflow: Destination | None = None

    @model_validator(mode="after")
    def _one_action(self) -> RelaxStep:
        given = [k for k in ("requires", "any_agent", "overflow") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a relax step needs exactly one of requires, any_agent, overflow"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class ServiceLevel(_Model):
    """How ``callcenter stats`` judges a queue's calls (see :mod:`callcenter.stats`).

    A call meets the service level when an agent answered it within ``threshold``
    seconds of entering the queue (inclusive). A caller who hangs up while waiting
    is an abandon; one who hangs up before ``short_abandon`` seconds is a *short*
    abandon (a misdial, a caller who changed their mind), left out of the service
    level and the abandon rate unless ``count_short_abandons`` is true.
    """

    #: Seconds: answered within this wait (inclusive) meets the service level.
    threshold: int = Field(20, ge=1, le=3600)
    #: Seconds: abandons after a shorter wait are short abandons.
    short_abandon: int = Field(5, ge=0, le=600)
    #: Count short abandons in the service level and abandon rate (as missed calls).
    count_short_abandons: Flag = False

    @field_validator("short_abandon")
    @classmethod
    def _below_threshold(cls, value: int, info: ValidationInfo) -> int:
        threshold = info.data.get("threshold")
        if threshold is not None and value >= threshold:
            raise ValueError(
                f"short_abandon ({value} s) must be below threshold ({threshold} s): "
                "a caller who waited past the threshold missed the service level")
        return value
class Announce(_Model):
    """Announcements to a caller waiting in a queue: its position and estimated wait
    (app_queue's ``announce-frequency`` / ``announce-position`` / ``announce-holdtime``).
    Played over the music on hold in the caller's language with Asterisk's stock sounds."""

    #: Seconds of waiting before the first announcement.
    first_after: int = Field(30, ge=0, le=3600)
    #: Seconds of music between the end of one announcement and the next (0: only once).
    every: int = Field(60, ge=0, le=3600)
    #: "You are caller number N" / "you are next".
    position: Flag = True
    #: "The estimated hold time is N minutes" (skipped while nothing measures it).
    wait: Flag = True

    @model_validator(mode="after")
    def _says_something(self) -> Announce:
        if not (self.position or self.wait):
            raise ValueError("an announcement needs position or wait (or leave announce out)")
        return self


#: Audio formats a queue's recordings may be written in (Asterisk's format names):
#: ``wav`` is 8 kHz 16-bit PCM, ``wav16`` 16 kHz, ``gsm`` about a tenth of the size.
RecordFormat = Literal["wav", "wav16", "gsm"]


class Record(_Model):
    """Recording of a queue's answered calls: caller and agent mixed into one file
    (ARI ``POST /bridges/{id}/record`` on the caller's bridge), linked to the call's
    record; files and records older than ``retention_days`` are removed."""

    #: Record this queue's calls (``record: {}`` records; leave ``record`` out: none).
    enabled: Flag = True
    format: RecordFormat = "wav"
    #: Days a recording is kept (none: kept until removed by hand).
    retention_days: int | None = Field(90, ge=1, le=3650)


#: Where a callback rings the customer, as ``Dial()`` and ARI take it, with ``{number}``
#: (exactly once) standing for the customer's number: ``PJSIP/{number}@trunk``,
#: ``Local/{number}@cc-callback-out``. The number is digits with an optional ``+`` (checked
#: when the caller keys it), so nothing but this safe alphabet reaches ARI.
CallbackDial = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+:/{}-]{1,120}$")]


class Callback(_Model):
    """A waiting caller may leave the queue and be called back, keeping its place.

    After ``after`` seconds of waiting the caller presses ``key``, hears its number (the
    caller ID) and confirms with 1, or keys another number ended by ``#``; then it hangs up
    (or is thanked and hung up). When its turn comes an agent is called first, then the
    customer through ``dial``; a customer who does not answer is called again
    ``retry_delay`` seconds later, at most ``retries`` more times."""

    #: The key that asks for a callback while waiting.
    key: MenuKey = "5"
    #: Seconds of waiting before the key is taken (and ``prompt`` played, if set).
    after: int = Field(30, ge=0, le=3600)
    #: How the customer is dialled (see :data:`CallbackDial`).
    dial: CallbackDial
    #: Further attempts after the first one the customer did not answer.
    retries: int = Field(2, ge=0, le=10)
    #: Seconds between two attempts (the agent is free meanwhile).
    retry_delay: int = Field(120, ge=1, le=86400)
    #: Seconds the customer's phone rings.
    ring_timeout: int = Field(30, ge=5, le=120)
    #: A sound played once, ``after`` seconds in ("press 5 to be called back"); unset: the
    #: offer is made elsewhere (the IVR's prompts, the announcements' wording).
    prompt: Sound | None = None
    #: Most digits a keyed number may have (the ``+`` aside).
    max_digits: int = Field(15, ge=3, le=20)

    @field_validator("dial")
    @classmethod
    def _one_number(cls, value: str) -> str:
        holes = re.findall(r"\{[^{}]*\}", value)
        if holes != ["{number}"] or value.replace("{number}", "").count("{") \
                or value.replace("{number}", "").count("}"):
            raise ValueError(
                f"{value!r}: a dial string with {{number}} exactly once and no other braces "
                "(e.g. PJSIP/{number}@trunk)")
        return value


#: When a queue counts as having nobody to take calls (:class:`WhenUnavailable`).
NoAgents = Literal["logged_out", "paused", "never"]


class TakeMessage(_Model):
    """A caller nobody can take leaves a message instead of going on: it hears
    ``prompt`` and a beep, speaks (``max_seconds`` at most; ``max_silence`` seconds of
    silence or ``#`` end it), and the message becomes a callback that keeps the caller's
    place: when the queue opens, an agent hears the message, then the caller's number
    is dialled (``ari_apps.after_hours``). Needs the queue's ``callback`` (its ``dial``
    reaches the customer) and a ``when_unavailable.schedule``."""

    #: What the caller hears before the beep.
    prompt: Sound = "vm-intro"
    #: Longest message, in seconds.
    max_seconds: int = Field(120, ge=5, le=600)
    #: Seconds of silence that end the message.
    max_silence: int = Field(5, ge=1, le=60)
    #: Asterisk's format of the file (``<queue>/message-<channel>.<format>``).
    format: RecordFormat = "wav"


def _message_or_true(value: Any) -> Any:
    """``take_message: true`` is the mapping with every default."""
    if value is True:
        return {}
    if value is False or value is None:
        raise ValueError("expected true or a mapping (prompt, max_seconds, max_silence, "
                         "format); leave take_message out to take no message")
    return value


#: ``true`` or a :class:`TakeMessage` mapping.
TakeMessageSetting = Annotated[TakeMessage, BeforeValidator(_message_or_true),
                               _also_written(type="boolean", const=True)]


class WhenUnavailable(_Model):
    """Where callers go when nobody can take their call, decided when they arrive and
    again while they wait (app_queue's ``joinempty``/``leavewhenempty``, ``maxlen`` and
    the ``Queue()`` timeout; README: "When nobody can take calls").

    Every limit is off unless set, except ``no_agents``, whose default is the one
    app_queue users expect from ``joinempty=yes``: no member logged in."""

    #: Where the caller goes (another queue, voicemail, a flow...); default: the
    #: queue's ``fallback``.
    destination: Destination | None = None
    #: The queue has no agents when every member is logged out (``logged_out``), logged
    #: out or paused (``paused``); ``never``: never judged. Agents ringing, on a call or
    #: in wrap-up always count as there.
    no_agents: NoAgents = "logged_out"
    #: Seconds the queue may have no agents before callers already waiting leave (an
    #: agent logging out and straight back in moves nobody). A caller arriving meanwhile
    #: does not wait: it leaves at once.
    grace: int = Field(5, ge=0, le=600)
    #: The queue takes calls only while this schedule (of ``schedules:``) is open.
    schedule: Name | None = None
    #: Seconds a caller may wait before leaving (app_queue's ``Queue()`` timeout).
    max_wait: int | None = Field(None, ge=1, le=86400)
    #: Callers that may wait at once; the next one leaves at once (app_queue's ``maxlen``).
    max_callers: int | None = Field(None, ge=1, le=10000)
    #: Instead of going on to ``destination``, the caller leaves a message that becomes a
    #: callback when the queue opens (``true`` or a :class:`TakeMessage` mapping).
    take_message: TakeMessageSetting | None = None


class Queue(_Model):
    description: str = ""
    #: Who serves the queue, unless ``agents`` lists them: agents having any of these
    #: skills (every agent when empty).
    skills: tuple[Name, ...] = ()
    #: Base priority of calls in this queue (VIP rules add to it).
    priority: int = Field(0, ge=0, le=100)
    #: Where a call goes when the queue router is not running.
    fallback: Destination = HangupDest(cause=34)
    #: The agents who serve the queue, by name (instead of by ``skills``).
    agents: tuple[Name, ...] = ()
    #: What an agent needs to be offered a call of this queue (none: any member).
    requires: SkillExpression | None = None
    #: Skill -> weight 1..10; best_skill scores an agent as the sum of weight x level.
    preferred: dict[Name, Annotated[int, Field(ge=1, le=10)]] = {}
    strategy: Strategy = "longest_idle"
    #: Only agents speaking the caller's language (the call's ``language`` Stasis arg).
    language_required: Flag = False
    #: Looser requirements as the wait grows, in increasing ``after``.
    relax: Annotated[tuple[RelaxStep, ...], Field(max_length=10)] = ()
    #: Seconds an agent's phone rings before the next agent is offered.
    ring_timeout: int = Field(15, ge=5, le=120)
    #: Seconds of wrap-up after each call before the agent is offered another.
    wrapup: int = Field(10, ge=0, le=3600)
    #: Pause an agent after this many offers in a row not answered (0: never).
    auto_pause_after: int = Field(3, ge=0, le=100)
    #: The service-level definition its statistics use (``callcenter stats``).
    service_level: ServiceLevel = ServiceLevel()
    #: Position and estimated-wait announcements while the caller waits (none: music only).
    announce: Announce | None = None
    #: Recording of answered calls (none: not recorded).
    record: Record | None = None
    #: Callbacks that keep the caller's place (none: callers can only wait).
    callback: Callback | None = None
    #: Where callers go when nobody can take calls (none: they wait, whatever happens).
    when_unavailable: WhenUnavailable | None = None


#: A phone that already exists on the admin's PBX, as ``Dial()`` takes it
#: (``PJSIP/1001``). No ``,`` ``&`` ``$`` ``{`` ``(`` ``;`` or blank can get in: it
#: is written into the generated dialplan and handed to ARI as it is.
Device = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9_.@+:/-]{1,100}$")]


class Agent(_Model):
    """A person who takes calls, and the phone that rings for them.

    Without ``device`` the agent gets a softphone account that callcenter
    generates: a PJSIP endpoint, AOR and digest auth all named after the agent
    (``PJSIP/alice``), its password generated into the home's ``secrets.json``
    (``callcenter agents credentials alice`` prints what the softphone needs).
    With ``device`` the agent's calls ring that existing phone instead.
    """

    name: str = ""
    extension: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")]
    #: Skill -> level 1..10.
    skills: dict[Name, Annotated[int, Field(ge=1, le=10)]] = {}
    languages: tuple[Language, ...] = ()
    #: An existing phone on your PBX (``PJSIP/1001``); unset: a generated softphone account.
    device: Device | None = None
    #: ``supervisor``: may listen to, whisper to and barge in on the calls of the agents
    #: of the queues in :attr:`supervises` (README: "Supervision"). Routing ignores it.
    role: Literal["agent", "supervisor"] = "agent"
    #: Queues whose agents this supervisor may supervise (only with ``role: supervisor``).
    supervises: tuple[Name, ...] = ()

    @property
    def softphone(self) -> bool:
        """True when callcenter creates the agent's PJSIP endpoint (no ``device``)."""
        return self.device is None

    def endpoint(self, key: str) -> str | None:
        """The PJSIP endpoint the agent's phone calls from (``CHANNEL(endpoint)``), by which
        feature codes know the agent: ``<key>`` for a generated softphone, ``<endpoint>`` for
        ``device: PJSIP/<endpoint>``; None for other devices (``PJSIP/1001@office``)."""
        if self.device is None:
            return key
        m = re.fullmatch(r"PJSIP/([A-Za-z0-9_]{1,64})", self.device)
        return m[1] if m else None

    def dial_string(self, key: str) -> str:
        """What ``Dial()`` and ARI ``channels/create`` ring for the agent named ``key``
        (its key under ``agents:``): ``PJSIP/<key>`` or the configured device."""
        return self.device if self.device is not None else f"PJSIP/{key}"


#: Pause reasons the agent state machine sets by itself (``callcenter.agents.state``):
#: a config reason must not take these names.
SYSTEM_PAUSE_REASONS: tuple[str, ...] = ("no_answer", "unregistered")


def _not_a_system_reason(name: str) -> str:
    if name in SYSTEM_PAUSE_REASONS:
        raise ValueError(
            f"'{name}' is a pause reason the system sets by itself "
            f"(reserved: {', '.join(SYSTEM_PAUSE_REASONS)})"
        )
    return name


class PauseReason(_Model):
    """A reason code agents pause with (``callcenter agents pause alice lunch``, or the
    pause feature code followed by :attr:`code` on the softphone)."""

    description: str = ""
    #: Digits keyed after the pause feature code to pick this reason.
    code: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,4}$")] | None = None


class Voicemail(_Model):
    mailbox: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")]
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 ._'-]{1,60}$")]
    #: Prompt played before the beep; the mailbox's own greeting if unset.
    greeting: Literal["unavailable", "busy", "none"] = "unavailable"


class CallerIdRule(_Model):
    """Match the caller's number at entry: VIPs get priority, blocked are rejected."""

    name: Name
    #: Exact numbers, compared on digits only (``+1 555-0100`` = ``15550100``).
    numbers: tuple[Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{2,30}$")],
                   ...] = ()
    #: Number prefixes, digits only.
    prefixes: tuple[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,15}$")], ...] = ()
    priority: int | None = Field(None, ge=1, le=100)
    block: Flag = False
    #: Where matched callers go instead of the entry point's flow.
    destination: Destination | None = None

    @model_validator(mode="after")
    def _does_something(self) -> CallerIdRule:
        if not (self.numbers or self.prefixes):
            raise ValueError("a caller ID rule needs numbers or prefixes")
        if self.priority is None and not self.block and self.destination is None:
            raise ValueError("a caller ID rule needs priority, block or destination")
        return self

    def digits(self) -> tuple[str, ...]:
        return tuple(re.sub(r"[^0-9]", "", n) for n in self.numbers)


class EntryPoint(_Model):
    """Numbers dialled into the call center (DIDs / extensions) and their flow."""

    description: str = ""
    numbers: Annotated[tuple[Number, ...], Field(min_length=1)]
    flow: Name
    language: Language | None = None


# -- trunks ------------------------------------------------------------------
# One block: a SIP trunk to a provider (README: "Trunks"). Every value here is
# written into pjsip_callcenter.conf and the generated dialplan, so each is
# restricted to an alphabet that neither PJSIP's config parser (``;`` comments,
# ``#include``) nor a dial string (``,`` ``&`` ``@``) can read another way.

_HOST_PATTERN = (r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                 r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$")
#: A provider's host name or IPv4 address (no port: see :attr:`Trunk.port`).
SipHost = Annotated[str, StringConstraints(pattern=_HOST_PATTERN, max_length=253)]
_SIP_USER_PATTERN = r"^[A-Za-z0-9._+-]{1,64}$"
#: The user part of a SIP URI as providers hand it out (an account, a number).
SipUser = Annotated[str, StringConstraints(pattern=_SIP_USER_PATTERN)]
PATTERN_WORDS[_HOST_PATTERN] = (
    "a host name or IPv4 address: labels of letters, digits or - separated by dots, "
    "without port")
PATTERN_WORDS[_SIP_USER_PATTERN] = "1 to 64 letters, digits or . _ + -"
#: Codecs a trunk may offer, by Asterisk's names.
Codec = Literal["ulaw", "alaw", "gsm", "g722", "g726", "g729", "ilbc", "opus", "speex", "slin"]


class TrunkAuth(_Model):
    """Digest credentials the provider gave. The password is not written here: it lives in
    the home's ``secrets.json`` (``trunk_passwords``), set by ``callcenter trunks password
    NAME`` (or ``callcenter carrier run`` for the test carrier)."""

    username: SipUser


class Trunk(_Model):
    """A PJSIP trunk to a provider: outbound calls go through it, calls to its
    ``dids`` come in through it (identified by the provider's address)."""

    description: str = ""
    host: SipHost
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    #: Digest auth (omit for a provider that trusts our address: IP auth).
    auth: TrunkAuth | None = None
    #: Keep an outbound registration with the provider (needs ``auth``).
    registration: Flag = False
    #: The From header's user and domain, when the provider wants them fixed.
    from_user: SipUser | None = None
    from_domain: SipHost | None = None
    codecs: Annotated[tuple[Codec, ...], Field(min_length=1, max_length=10)] = ("ulaw", "alaw")
    #: Caller ID of outbound calls that set none of their own (``CC_OUTBOUND_CALLER_ID``).
    caller_id: ExternalNumber | None = None
    #: Seconds an outbound call may ring before Dial gives up (NOANSWER).
    ring_timeout: int = Field(60, ge=5, le=300)
    #: A DID arriving from this provider -> the entry point (``entry_points:``) it enters.
    dids: dict[ExternalNumber, Name] = {}

    @model_validator(mode="after")
    def _registration_needs_auth(self) -> Trunk:
        if self.registration and self.auth is None:
            raise ValueError("registration: true needs auth (a registrar asks for a password)")
        return self


# -- settings ----------------------------------------------------------------

def _listen_host(value: str) -> str:
    """An address or host name to listen on (no blanks, no URL syntax)."""
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", value):
        raise ValueError(f"invalid host {value!r}")
    return value


class FastAGISettings(_Model):
    host: Annotated[str, AfterValidator(_listen_host)] = "127.0.0.1"
    port: int = Field(4573, ge=1, le=65535)


class HttpApiSettings(_Model):
    """Where ``callcenter serve`` answers the HTTP API (agent state and actions, waiting
    calls). Loopback by default: the API changes agents' states, guarded by a token."""

    host: Annotated[str, AfterValidator(_listen_host)] = "127.0.0.1"
    port: int = Field(8090, ge=1, le=65535)


#: A feature code an agent dials: an optional * or #, then 1 to 6 digits (``*70``).
FeatureCode = Annotated[str, StringConstraints(pattern=r"^[*#]?[0-9]{1,6}$")]


class FeatureCodes(_Model):
    """What agents dial on their softphone to change their state (README: "Feature codes").

    ``pause`` followed by a pause reason's ``code`` pauses with that reason (``*721``);
    bare ``pause`` uses ``pause_reason``, or plays an error when it is unset.
    """

    login: FeatureCode = "*70"
    logout: FeatureCode = "*71"
    pause: FeatureCode = "*72"
    unpause: FeatureCode = "*73"
    end_wrapup: FeatureCode = "*74"
    #: The ``pause_reasons:`` entry a bare ``pause`` code uses (none: it plays an error).
    pause_reason: Name | None = None
    #: Supervisors' codes, dialled followed by the agent's extension (``*801000``).
    listen: FeatureCode = "*80"
    whisper: FeatureCode = "*81"
    barge: FeatureCode = "*82"

    def codes(self) -> dict[str, str]:
        """Action (``callcenter.asterisk.stasis_args.AGENT_ACTIONS``) -> its code."""
        return {"login": self.login, "logout": self.logout, "pause": self.pause,
                "unpause": self.unpause, "end_wrapup": self.end_wrapup}

    def supervisor_codes(self) -> dict[str, str]:
        """Mode (``callcenter.asterisk.stasis_args.SUPERVISE_MODES``) -> its code, which
        the agent's extension follows."""
        return {"listen": self.listen, "whisper": self.whisper, "barge": self.barge}


class Settings(_Model):
    timezone: str = "UTC"
    language: Language = "en"
    fastagi: FastAGISettings = FastAGISettings()
    http_api: HttpApiSettings = HttpApiSettings()
    #: Stasis application of the queue router.
    queue_app: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,47}$")] = "cc-queue"
    #: Stasis application that takes the agents' feature codes (login, pause, ...).
    agent_app: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,47}$")] = "cc-agent"
    #: Codes agents dial from their softphone, generated into ``extensions_context``.
    feature_codes: FeatureCodes = FeatureCodes()
    #: Context holding agent extensions; point it at your PBX's internal context.
    extensions_context: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,47}$")] = (
        "cc-extensions"
    )
    #: PJSIP endpoint used for external transfers.
    outbound_trunk: Name | None = None
    #: Context the inbound SIP traffic lands in.
    entry_context: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,47}$")] = (
        "cc-entry"
    )
    #: Networks (CIDR) whose SIP INVITEs are accepted as inbound callers.
    inbound_sip_peers: tuple[Annotated[str, StringConstraints(
        pattern=r"^[0-9.]{7,15}(/[0-9]{1,2})?$")], ...] = ("127.0.0.1/32",)
    #: Prompts played before hanging up when something goes wrong.
    failure_prompts: Prompts = ("tt-somethingwrong",)

    _tz = field_validator("timezone")(lambda v: (check_timezone(v), v)[1])
    _norm = field_validator("failure_prompts", mode="before")(_prompts)


#: The HTTP API's built-in admin (its token is the secrets file's ``api_token``, the one
#: ``callcenter agents`` uses); not a name ``api_users`` may take.
BUILTIN_ADMIN = "admin"


def _not_builtin_admin(name: str) -> str:
    if name == BUILTIN_ADMIN:
        raise ValueError(f"'{BUILTIN_ADMIN}' is the built-in admin of the HTTP API "
                         "(its token is api_token in secrets.json); pick another name")
    return name


class ApiUser(_Model):
    """Someone (or a program) using the HTTP API with a token of its own (generated into
    the home's ``secrets.json``; ``callcenter api token NAME`` prints it).

    ``admin`` acts on everything; ``supervisor`` on the agents and calls of its
    ``queues``; ``agent`` on its own ``agent`` only.
    """

    role: Literal["admin", "supervisor", "agent"]
    #: The agent an ``agent`` user is (required for that role, refused for the others).
    agent: Name | None = None
    #: The queues (teams) a ``supervisor`` supervises (required for that role only).
    queues: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _fits_role(self) -> ApiUser:
        if self.role == "agent" and self.agent is None:
            raise ValueError("an agent user needs 'agent': the agent it acts as")
        if self.role != "agent" and self.agent is not None:
            raise ValueError(f"'agent' is for role agent only (this user is a {self.role})")
        if self.role == "supervisor" and not self.queues:
            raise ValueError("a supervisor needs 'queues': the queues it supervises")
        if self.role != "supervisor" and self.queues:
            raise ValueError(f"'queues' is for role supervisor only (this user is a {self.role})")
        return self


# Outbound campaigns build on the alphabets above (see callcenter/config/__init__.py).
from callcenter.config.campaign import Campaign


class CallCenterConfig(_Model):
    settings: Settings = Settings()
    entry_points: dict[Name, EntryPoint] = Field(min_length=1)
    caller_id_rules: tuple[CallerIdRule, ...] = ()
    flows: dict[Name, Flow] = Field(min_length=1)
    menus: dict[Name, Menu] = {}
    schedules: dict[Name, Schedule] = {}
    lookups: dict[Name, Lookup] = {}
    skills: tuple[Name, ...] = ()
    queues: dict[Name, Queue] = {}
    agents: dict[Name, Agent] = {}
    voicemail: dict[Name, Voicemail] = {}
    pause_reasons: dict[Annotated[Name, AfterValidator(_not_a_system_reason)], PauseReason] = {}
    api_users: dict[Annotated[Name, AfterValidator(_not_builtin_admin)], ApiUser] = {}
    #: SIP trunks to providers, by name (the name is also the PJSIP endpoint's).
    trunks: dict[Name, Trunk] = {}
    #: Outbound campaigns, by name (README: "Outbound campaigns").
    campaigns: dict[Name, Campaign] = {}

    @field_validator("pause_reasons")
    @classmethod
    def _pause_codes_differ(cls, reasons: dict[str, PauseReason]) -> dict[str, PauseReason]:
        by_code: dict[str, list[str]] = {}
        for name, reason in reasons.items():
            if reason.code is not None:
                by_code.setdefault(reason.code, []).append(name)
        shared = [f"{code} ({', '.join(names)})" for code, names in by_code.items() if len(names) > 1]
        if shared:
            raise ValueError(f"pause reasons share a code: {'; '.join(shared)}")
        return reasons
