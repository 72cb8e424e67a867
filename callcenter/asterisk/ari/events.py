"""Typed ARI resources and events, parsed from Asterisk's JSON.

Why frozen dataclasses and not dicts: a Stasis handler reads ``event.channel.id`` and
``event.args`` and a type checker catches a typo; a dict would turn the typo into a
``KeyError`` in the middle of a call. Unknown JSON fields are ignored, so a newer Asterisk
that adds fields does not break us.

The event stream must never die because of one odd message: :func:`parse_event` never
raises for bad input. An event type we do not model, or a modelled event with a missing or
mistyped field, becomes :class:`UnknownEvent` (the latter with a logged warning);
:func:`parse_event_json` returns ``None`` (with a warning) for text that is not a JSON object.

Payload shapes are those of Asterisk 22 (recorded from a real 22.10 in the unit tests).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Application",
    "ApplicationReplaced",
    "AsteriskInfo",
    "Bridge",
    "BridgeCreated",
    "BridgeDestroyed",
    "CallerID",
    "Channel",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelHangupRequest",
    "ChannelLeftBridge",
    "ChannelStateChange",
    "ChannelVarset",
    "ContactInfo",
    "ContactStatusChange",
    "DeviceState",
    "DeviceStateChanged",
    "Dial",
    "DialplanCEP",
    "Endpoint",
    "EndpointStateChange",
    "Event",
    "Playback",
    "PlaybackFinished",
    "PlaybackStarted",
    "StasisEnd",
    "StasisStart",
    "UnknownEvent",
    "parse_event",
    "parse_event_json",
]

log = logging.getLogger(__name__)

JSON = Mapping[str, Any]


def _time(value: Any) -> datetime | None:
    """Asterisk writes ``2026-11-25T08:30:10.334+0000``; None if absent or unparsable.

    A timestamp is informative only, so a bad one must not turn the event into UnknownEvent.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _str(data: JSON, key: str) -> str:
    """A required string field; a missing or non-string field raises (caught by parse_event)."""
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is {type(value).__name__}, expected str")
    return value


def _int(data: JSON, key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} is {type(value).__name__}, expected int")
    return value


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True, slots=True)
class CallerID:
    """Caller (or connected line) name and number, as Asterisk's ``CALLERID(name/num)``."""

    name: str
    number: str

    @classmethod
    def from_json(cls, data: JSON) -> CallerID:
        return cls(name=_str(data, "name"), number=_str(data, "number"))


@dataclass(frozen=True, slots=True)
class DialplanCEP:
    """Where the channel is in the dialplan: context, extension, priority (+ current app)."""

    context: str
    exten: str
    priority: int
    app_name: str = ""
    app_data: str = ""

    @classmethod
    def from_json(cls, data: JSON) -> DialplanCEP:
        return cls(
            context=_str(data, "context"),
            exten=_str(data, "exten"),
            priority=_int(data, "priority"),
            app_name=str(data.get("app_name", "")),
            app_data=str(data.get("app_data", "")),
        )


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel snapshot. ``state`` is Asterisk's text: Down, Ring, Ringing, Up, Busy..."""

    id: str
    name: str
    state: str
    caller: CallerID
    connected: CallerID
    dialplan: DialplanCEP
    accountcode: str = ""
    language: str = ""
    creationtime: datetime | None = None

    @classmethod
    def from_json(cls, data: JSON) -> Channel:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            state=_str(data, "state"),
            caller=CallerID.from_json(data["caller"]),
            connected=CallerID.from_json(data["connected"]),
            dialplan=DialplanCEP.from_json(data["dialplan"]),
            accountcode=str(data.get("accountcode", "")),
            language=str(data.get("language", "")),
            creationtime=_time(data.get("creationtime")),
        )


@dataclass(frozen=True, slots=True)
class Bridge:
    """A bridge snapshot; ``channels`` holds channel ids."""

    id: str
    technology: str
    bridge_type: str
    bridge_class: str
    creator: str
    name: str
    channels: tuple[str, ...]
    creationtime: datetime | None = None

    @classmethod
    def from_json(cls, data: JSON) -> Bridge:
        return cls(
            id=_str(data, "id"),
            technology=str(data.get("technology", "")),
            bridge_type=_str(data, "bridge_type"),
            bridge_class=str(data.get("bridge_class", "")),
            creator=str(data.get("creator", "")),
            name=str(data.get("name", "")),
            channels=tuple(str(c) for c in data.get("channels", ())),
            creationtime=_time(data.get("creationtime")),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    """A playback; ``state`` is queued, playing, done, failed...; target_uri ``channel:<id>``."""

    id: str
    media_uri: str
    target_uri: str
    state: str
    language: str = ""

    @classmethod
    def from_json(cls, data: JSON) -> Playback:
        return cls(
            id=_str(data, "id"),
            media_uri=_str(data, "media_uri"),
            target_uri=_str(data, "target_uri"),
            state=_str(data, "state"),
            language=str(data.get("language", "")),
        )


@dataclass(frozen=True, slots=True)
class Application:
    """A Stasis application as Asterisk sees it (what it is subscribed to)."""

    name: str
    channel_ids: tuple[str, ...]
    bridge_ids: tuple[str, ...]
    endpoint_ids: tuple[str, ...]
    device_names: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Application:
        return cls(
            name=_str(data, "name"),
            channel_ids=tuple(data.get("channel_ids", ())),
            bridge_ids=tuple(data.get("bridge_ids", ())),
            endpoint_ids=tuple(data.get("endpoint_ids", ())),
            device_names=tuple(data.get("device_names", ())),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A PJSIP (or other) endpoint; ``state`` is online, offline or unknown."""

    technology: str
    resource: str
    state: str
    channel_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: JSON) -> Endpoint:
        return cls(
            technology=_str(data, "technology"),
            resource=_str(data, "resource"),
            state=str(data.get("state", "unknown")),
            channel_ids=tuple(str(c) for c in data.get("channel_ids", ())),
        )


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A device state (``PJSIP/carmen`` or a custom ``Stasis:agent-carmen``): NOT_INUSE,
    INUSE, BUSY, RINGING, RINGINUSE, ONHOLD, UNAVAILABLE, INVALID or UNKNOWN."""

    name: str
    state: str

    @classmethod
    def from_json(cls, data: JSON) -> DeviceState:
        return cls(name=_str(data, "name"), state=_str(data, "state"))


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """A SIP contact of an AOR; ``contact_status``: Reachable, Unreachable, NonQualified,
    Unknown, Created, Removed, Updated."""

    uri: str
    contact_status: str
    aor: str
    roundtrip_usec: str = ""

    @classmethod
    def from_json(cls, data: JSON) -> ContactInfo:
        return cls(
            uri=_str(data, "uri"),
            contact_status=_str(data, "contact_status"),
            aor=_str(data, "aor"),
            roundtrip_usec=str(data.get("roundtrip_usec", "")),
        )


@dataclass(frozen=True, slots=True)
class AsteriskInfo:
    """The parts of ``GET /asterisk/info`` we use: which Asterisk, since when."""

    version: str
    entity_id: str
    default_language: str
    startup_time: datetime | None
    last_reload_time: datetime | None
    #: asterisk.conf ``systemname`` (the prefix of every channel id); "" when unset.
    system_name: str = ""

    @classmethod
    def from_json(cls, data: JSON) -> AsteriskInfo:
        system = data.get("system", {})
        config = data.get("config", {})
        status = data.get("status", {})
        return cls(
            version=_str(system, "version"),
            entity_id=str(system.get("entity_id", "")),
            default_language=str(config.get("default_language", "")),
            startup_time=_time(status.get("startup_time")),
            last_reload_time=_time(status.get("last_reload_time")),
            system_name=str(config.get("name", "")),
        )


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every ARI event carries. ``application`` is the Stasis app it was sent to."""

    type: str
    application: str = ""
    timestamp: datetime | None = None
    asterisk_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisStart(Event):
    """A channel entered the app: ``Stasis(app,arg1,arg2)`` -> ``args == ("arg1", "arg2")``.

    ``replace_channel`` is set when the channel replaced another one (masquerade/transfer).
    """

    channel: Channel
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisEnd(Event):
    """The channel left the app (hung up, or continued in the dialplan)."""

    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStateChange(Event):
    """``channel.state`` changed (e.g. Ring -> Up after answer)."""

    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDtmfReceived(Event):
    """One DTMF digit (0-9, A-D, *, #) ended on the channel."""

    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHangupRequest(Event):
    """Hangup was requested; ``soft`` True for a soft hangup (e.g. ARI DELETE /channels)."""

    channel: Channel
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDestroyed(Event):
    """The channel is gone; ``cause`` is the Q.850 cause (16 Normal Clearing, 17 Busy...)."""

    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelVarset(Event):
    """A channel variable was set; ``channel`` is None for a global variable."""

    variable: str
    value: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnteredBridge(Event):
    channel: Channel
    bridge: Bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelLeftBridge(Event):
    channel: Channel
    bridge: Bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeCreated(Event):
    bridge: Bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDestroyed(Event):
    """The bridge is gone; its owner's inbox can close."""

    bridge: Bridge


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(Event):
    """Progress of a dial: ``peer`` is the channel being dialled, ``caller`` the one dialling
    (None for ARI's own ``channels/{id}/dial`` without a caller). ``dialstatus`` is empty
    when the dial starts, then RINGING, PROGRESS, ANSWER, BUSY, NOANSWER, CANCEL, CHANUNAVAIL..."""

    peer: Channel
    dialstatus: str
    caller: Channel | None = None
    dialstring: str = ""
    forward: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointStateChange(Event):
    endpoint: Endpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactStatusChange(Event):
    """An agent's softphone registered, went unreachable or was removed."""

    endpoint: Endpoint
    contact_info: ContactInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStateChanged(Event):
    device_state: DeviceState


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStarted(Event):
    playback: Playback


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished(Event):
    """``playback.state`` is ``done`` (or ``failed`` for a missing sound file)."""

    playback: Playback


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationReplaced(Event):
    """Another websocket registered the same app name; this connection gets no more events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An event type we do not model (or could not parse); ``raw`` is the JSON object."""

    raw: Mapping[str, Any]


def _base(data: JSON) -> dict[str, Any]:
    return {
        "type": _str(data, "type"),
        "application": str(data.get("application", "")),
        "timestamp": _time(data.get("timestamp")),
        "asterisk_id": str(data.get("asterisk_id", "")),
    }


def _channel(data: JSON) -> Channel:
    return Channel.from_json(data["channel"])


def _stasis_start(data: JSON) -> Event:
    args = data.get("args", [])
    if not isinstance(args, list):
        raise TypeError("'args' is not a list")
    replace = data.get("replace_channel")
    return StasisStart(
        **_base(data),
        channel=_channel(data),
        args=tuple(str(a) for a in args),
        replace_channel=Channel.from_json(replace) if replace else None,
    )


def _hangup_request(data: JSON) -> Event:
    cause = data.get("cause")
    return ChannelHangupRequest(
        **_base(data),
        channel=_channel(data),
        cause=cause if isinstance(cause, int) else None,
        soft=bool(data.get("soft", False)),
    )


def _varset(data: JSON) -> Event:
    channel = data.get("channel")
    return ChannelVarset(
        **_base(data),
        variable=_str(data, "variable"),
        value=_str(data, "value"),
        channel=Channel.from_json(channel) if channel else None,
    )


def _dial(data: JSON) -> Event:
    caller = data.get("caller")
    return Dial(
        **_base(data),
        peer=Channel.from_json(data["peer"]),
        dialstatus=_str(data, "dialstatus"),
        caller=Channel.from_json(caller) if caller else None,
        dialstring=str(data.get("dialstring", "")),
        forward=str(data.get("forward", "")),
    )


_PARSERS: dict[str, Callable[[JSON], Event]] = {
    "StasisStart": _stasis_start,
    "StasisEnd": lambda d: StasisEnd(**_base(d), channel=_channel(d)),
    "ChannelStateChange": lambda d: ChannelStateChange(**_base(d), channel=_channel(d)),
    "ChannelDtmfReceived": lambda d: ChannelDtmfReceived(
        **_base(d),
        channel=_channel(d),
        digit=_str(d, "digit"),
        duration_ms=_int(d, "duration_ms"),
    ),
    "ChannelHangupRequest": _hangup_request,
    "ChannelDestroyed": lambda d: ChannelDestroyed(
        **_base(d),
        channel=_channel(d),
        cause=_int(d, "cause"),
        cause_txt=_str(d, "cause_txt"),
    ),
    "ChannelVarset": _varset,
    "ChannelEnteredBridge": lambda d: ChannelEnteredBridge(
        **_base(d), channel=_channel(d), bridge=Bridge.from_json(d["bridge"])
    ),
    "ChannelLeftBridge": lambda d: ChannelLeftBridge(
        **_base(d), channel=_channel(d), bridge=Bridge.from_json(d["bridge"])
    ),
    "PlaybackStarted": lambda d: PlaybackStarted(
        **_base(d), playback=Playback.from_json(d["playback"])
    ),
    "PlaybackFinished": lambda d: PlaybackFinished(
        **_base(d), playback=Playback.from_json(d["playback"])
    ),
    "ApplicationReplaced": lambda d: ApplicationReplaced(**_base(d)),
    "BridgeCreated": lambda d: BridgeCreated(**_base(d), bridge=Bridge.from_json(d["bridge"])),
    "BridgeDestroyed": lambda d: BridgeDestroyed(
        **_base(d), bridge=Bridge.from_json(d["bridge"])
    ),
    "Dial": _dial,
    "EndpointStateChange": lambda d: EndpointStateChange(
        **_base(d), endpoint=Endpoint.from_json(d["endpoint"])
    ),
    "ContactStatusChange": lambda d: ContactStatusChange(
        **_base(d),
        endpoint=Endpoint.from_json(d["endpoint"]),
        contact_info=ContactInfo.from_json(d["contact_info"]),
    ),
    "DeviceStateChanged": lambda d: DeviceStateChanged(
        **_base(d), device_state=DeviceState.from_json(d["device_state"])
    ),
}


def parse_event(data: JSON) -> Event:
    """Turn one decoded ARI event object into a typed event; never raises for bad input.

    Unmodelled types become :class:`UnknownEvent` silently (Asterisk sends many we do not
    need, e.g. ChannelDialplan); a modelled type with missing/mistyped fields becomes
    :class:`UnknownEvent` with a warning, so the event loop carries on.
    """
    event_type = data.get("type")
    if not isinstance(event_type, str):
        log.warning("ARI event without a 'type' string: %.200r", data)
        return UnknownEvent(type="", raw=data)
    parser = _PARSERS.get(event_type)
    if parser is not None:
        try:
            return parser(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # AttributeError: a nested object that is not an object (e.g. "channel": 5)
            log.warning(
                "ARI %s event with unexpected shape (%r): %.300r", event_type, exc, data
            )
    return UnknownEvent(**_base_lenient(data), raw=data)


def _base_lenient(data: JSON) -> dict[str, Any]:
    return {
        "type": str(data.get("type", "")),
        "application": str(data.get("application", "")),
        "timestamp": _time(data.get("timestamp")),
        "asterisk_id": str(data.get("asterisk_id", "")),
    }


def parse_event_json(text: str | bytes) -> Event | None:
    """Parse one websocket text frame; ``None`` (and a warning) if it is not a JSON object."""
    try:
        data = json.loads(text)
    except (
        ValueError
    ) as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("ARI event is not valid JSON (%s): %.200r", exc, text)
        return None
    if not isinstance(data, dict):
        log.warning("ARI event is not a JSON object: %.200r", data)
        return None
    return parse_event(data)
