"""A thin, typed ARI client on aiohttp: the REST calls a call center uses, and the event websocket.

Why our own and not ari-py: ari-py builds its API from Swagger at run time (untyped) and does
not import on Python 3 (its swaggerpy is Python-2 only). What we need is a few dozen lines of
HTTP per resource, so we keep it explicit: every method says which ARI route it calls.

Errors, one hierarchy (see :class:`ARIError`): an HTTP error answer raises ``ARIError``
(``ARINotFound`` for 404, e.g. a channel that hung up meanwhile; ``ARIConflict`` for 409, e.g.
"Channel not in Stasis application"; ``ARIAuthError`` for 401/403: wrong credentials, which no
retry fixes); no usable answer (refused, timeout, websocket lost, a websocket handshake
answered with another error status such as 503 while Asterisk starts) raises
``ARIConnectionError``, which :meth:`ARIClient.run_event_loop` retries.

Credentials travel only in the ``Authorization`` header of each request, never in a URL or a
log line, so Asterisk's and our access logs cannot leak the ARI password.

Ids that come from events go into URL paths, so every path segment is percent-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from callcenter.asterisk.ari.events import (
    Application,
    ApplicationReplaced,
    AsteriskInfo,
    Bridge,
    Channel,
    DeviceState,
    Endpoint,
    Event,
    Playback,
    parse_event_json,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ARIAuthError",
    "ARIClient",
    "ARIConflict",
    "ARIConnectionError",
    "ARIError",
    "ARIEventStream",
    "ARINotFound",
    "HangupReason",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8088"

#: The ``reason`` values ARI's DELETE /channels/{id} accepts (each maps to a Q.850 cause).
HangupReason = Literal[
    "normal",
    "busy",
    "congestion",
    "no_answer",
    "timeout",
    "rejected",
    "unallocated",
    "normal_unspecified",
    "number_incomplete",
    "codec_mismatch",
    "interworking",
    "failure",
    "answered_elsewhere",
]

_T = TypeVar("_T")


class ARIError(Exception):
    """Base of every error this client raises: an ARI request that did not succeed.

    ``status`` is the HTTP status, or None when Asterisk gave no answer; ``message`` is
    Asterisk's own ``message`` text when it sent one; ``method``/``path`` name the route
    (path relative to ``/ari``, with its encoded ids), never the credentials.
    """

    def __init__(
        self, status: int | None, message: str, method: str, path: str
    ) -> None:
        super().__init__(status, message, method, path)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        status = "no answer" if self.status is None else str(self.status)
        return f"ARI {self.method} {self.path}: {status}: {self.message}"


class ARINotFound(ARIError):
    """404: the channel, bridge, playback or variable does not exist (often: already hung up)."""


class ARIConflict(ARIError):
    """409: the resource is in the wrong state, e.g. the channel is not in a Stasis app."""


class ARIAuthError(ARIError):
    """401/403: ARI refused our credentials (or the user is read-only). Retrying cannot help."""


class ARIConnectionError(ARIError):
    """No usable answer: connection refused or reset, request timeout, events websocket lost,
    or a websocket handshake refused with a status that may pass (503 while Asterisk starts).
    ``status`` is None when there was no HTTP answer at all."""


def _segment(value: str) -> str:
    """Percent-encode one path segment: an id like ``a/b`` must not become two segments."""
    return quote(value, safe="")


def _query(params: Mapping[str, object | None]) -> dict[str, str]:
    """ARI query parameters as strings; None means 'not sent', booleans as true/false."""
    query: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        else:
            query[key] = str(value)
    return query


def _csv(values: str | Sequence[str], what: str) -> str:
    """Join values ARI takes comma-separated; a comma inside one value cannot be expressed."""
    if isinstance(values, str):
        return values
    for value in values:
        if "," in value:
            raise ValueError(
                f"{what} {value!r} contains a comma, which ARI would split"
            )
    return ",".join(values)


class ARIClient:
    """Client for one Asterisk's ARI, for one or more Stasis apps.

    Use as ``async with ARIClient(username=..., password=..., app="cc-queue") as ari:``.
    When ``session`` is given, the caller owns it (it is not closed here); otherwise the
    client creates its session on enter and closes it on exit.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        username: str,
        password: str,
        app: str | Sequence[str],
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 10.0,
        ws_heartbeat: float = 20.0,
    ) -> None:
        apps = (app,) if isinstance(app, str) else tuple(app)
        if not apps or any(not a or "," in a for a in apps):
            raise ValueError(
                f"app must be one or more non-empty names without commas: {app!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.apps: tuple[str, ...] = apps
        self.request_timeout = request_timeout
        self.ws_heartbeat = ws_heartbeat
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._session = session
        self._owns_session = session is None
        self._streams: set[ARIEventStream] = set()
        self.channels = Channels(self)
        self.bridges = Bridges(self)
        self.playbacks = Playbacks(self)
        self.applications = Applications(self)
        self.endpoints = Endpoints(self)
        self.device_states = DeviceStates(self)

    def __repr__(self) -> str:
        return f"ARIClient({self.base_url!r}, username={self.username!r}, app={self.apps!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create the HTTP session if we own one (idempotent). Does not contact Asterisk."""
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession()
            self._owns_session = True

    async def close(self) -> None:
        """Close every event stream of this client, then the session if we own it."""
        for stream in list(self._streams):
            await stream.close()
        if (
            self._owns_session
            and self._session is not None
            and not self._session.closed
        ):
            await self._session.close()

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError(
                "ARIClient is not open: use 'async with ARIClient(...)' or open()"
            )
        return self._session

    # ------------------------------------------------------------------ REST

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object | None] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One ARI call; ``path`` is relative to ``/ari`` with segments already encoded.

        Returns the decoded JSON (None for 204 No Content). Public so a route we have not
        wrapped yet can be used without bypassing the error mapping.
        """
        session = self._require_session()
        url = URL(f"{self.base_url}/ari{path}", encoded=True)
        query = _query(params or {})
        try:
            async with asyncio.timeout(self.request_timeout):
                async with session.request(
                    method, url, params=query, json=body, headers=self._headers
                ) as resp:
                    status = resp.status
                    text = await resp.text()
        except TimeoutError:
            raise ARIConnectionError(
                None, f"no answer within {self.request_timeout:g}s", method, path
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ARIConnectionError(
                None, str(exc) or type(exc).__name__, method, path
            ) from exc
        log.debug("ARI %s %s -> %d", method, path, status)
        if status >= 400:
            message = text
            try:
                decoded = json.loads(text)
                if isinstance(decoded, dict) and isinstance(
                    decoded.get("message"), str
                ):
                    message = decoded["message"]
            except ValueError:
                pass
            error = {
                401: ARIAuthError,
                403: ARIAuthError,
                404: ARINotFound,
                409: ARIConflict,
            }.get(status, ARIError)
            raise error(status, message, method, path)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise ARIError(
                status, f"answer is not JSON: {text[:200]!r}", method, path
            ) from None

    async def _get_one(
        self,
        parse: Callable[[Any], _T],
        method: str,
        path: str,
        **kwargs: Any,
    ) -> _T:
        data = await self.request(method, path, **kwargs)
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ARIError(
                None, f"unexpected answer shape ({exc!r})", method, path
            ) from exc

    async def _get_list(self, parse: Callable[[Any], _T], path: str) -> list[_T]:
        return await self._get_one(
            lambda data: [parse(item) for item in data], "GET", path
        )

    async def asterisk_info(self) -> AsteriskInfo:
        """GET /asterisk/info: version and uptime (a cheap 'is ARI up and are we allowed in')."""
        return await self._get_one(AsteriskInfo.from_json, "GET", "/asterisk/info")

    # ------------------------------------------------------------------ events

    def events(self) -> ARIEventStream:
        """The events websocket for this client's apps.

        Prefer ``async with ari.events() as events: async for event in events:``: the
        websocket is connected (and the app registered in Asterisk) when the ``async with``
        body starts, so a channel originated there cannot enter Stasis before we listen.
        Plain ``async for event in ari.events()`` also works (connects on first iteration).
        Iteration raises :class:`ARIConnectionError` when the websocket is lost; see
        :meth:`run_event_loop` for reconnection.
        """
        return ARIEventStream(self)

    async def run_event_loop(
        self,
        handler: Callable[[Event], Awaitable[None]],
        *,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 30.0,
        max_attempts: int | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Feed every event to ``handler`` in order, reconnecting when the websocket drops.

        Connection failures, including a handshake answered 503 (Asterisk starting, its HTTP
        server up before ARI) or any status but 401/403, are retried: the delay doubles from
        ``reconnect_delay`` up to ``max_reconnect_delay``, each wait drawn between half and
        all of it (jitter: routers restarted together by one Asterisk restart do not knock
        in lockstep), and resets after a successful connection. After ``max_attempts``
        failed connections in a row (None: never give up) the last ARIConnectionError is
        raised. 401/403 raise :class:`ARIAuthError` at once: wrong credentials do not heal.

        Events sent while disconnected are lost (Asterisk does not queue them), so
        ``on_connected`` runs after each (re)connection, before the first event, for the
        app to resynchronise (``applications.get``, ``channels.list()``).

        ``ApplicationReplaced`` (another websocket registered our app name) is logged and
        *ends* the loop (returns): re-registering would take the name back, the other
        process would do the same, and two routers would flap, each owning half the calls.
        Whoever runs us decides (the other instance may be a deliberate replacement).

        Exceptions from ``handler`` or ``on_connected`` propagate and end the loop: give a
        handler that cannot fail per call, e.g. :meth:`EventDispatcher.dispatch`.
        """
        rng = rng or random.Random()
        delay = reconnect_delay
        failures = 0
        while True:
            try:
                async with self.events() as stream:
                    delay = reconnect_delay
                    failures = 0
                    if on_connected is not None:
                        await on_connected()
                    async for event in stream:
                        if isinstance(event, ApplicationReplaced):
                            log.error(
                                "ARI app %s was registered by another connection "
                                "(ApplicationReplaced): this one stops receiving events",
                                event.application or self.apps,
                            )
                            return
                        await handler(event)
            except ARIConnectionError as exc:
                failures += 1
                if max_attempts is not None and failures >= max_attempts:
                    raise
                wait = rng.uniform(delay / 2, delay)
                log.warning(
                    "ARI events for %s: %s; reconnecting in %.2fs", self.apps, exc, wait
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, max_reconnect_delay)
                continue
            # The stream ended because we closed it (close() from another task).
            return


class ARIEventStream:
    """One events websocket (``GET /ari/events?app=...&subscribeAll=false``).

    ``subscribeAll=false``: Asterisk sends only events of channels and bridges that are in
    (or subscribed by) our apps, not every channel of the PBX.
    """

    def __init__(self, client: ARIClient) -> None:
        self._client = client
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the websocket; when this returns, Asterisk has registered our apps."""
        if self._ws is not None:
            return
        if self._closed:
            raise RuntimeError(
                "this event stream was closed; call ARIClient.events() again"
            )
        client = self._client
        session = client._require_session()
        path = "/events"
        url = URL(f"{client.base_url}/ari{path}", encoded=True)
        params = {"app": ",".join(client.apps), "subscribeAll": "false"}
        try:
            async with asyncio.timeout(client.request_timeout):
                # heartbeat: aiohttp pings every N s and closes the socket if no pong comes
                # back within N/2 s, which bounds how long a dead Asterisk goes unnoticed.
                self._ws = await session.ws_connect(
                    url,
                    params=params,
                    headers=client._headers,
                    heartbeat=client.ws_heartbeat,
                )
        except TimeoutError:
            raise ARIConnectionError(
                None, f"no websocket within {client.request_timeout:g}s", "GET", path
            ) from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise ARIAuthError(exc.status, exc.message, "GET", path) from exc
            # Anything else (503 while Asterisk starts, 502 from a proxy, 400 while the
            # app module reloads) may pass: the caller's retry decides.
            raise ARIConnectionError(exc.status, exc.message, "GET", path) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ARIConnectionError(
                None, str(exc) or type(exc).__name__, "GET", path
            ) from exc
        client._streams.add(self)
        log.info("ARI events connected for %s", client.apps)

    async def close(self) -> None:
        """Close the websocket; a pending iteration ends with StopAsyncIteration."""
        self._closed = True
        self._client._streams.discard(self)
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()

    def __aiter__(self) -> ARIEventStream:
        return self

    async def __anext__(self) -> Event:
        if self._ws is None:
            if self._closed:
                raise StopAsyncIteration
            await self.connect()
        while True:
            ws = self._ws
            if ws is None:  # closed by close() from another task
                raise StopAsyncIteration
            # No timeout here on purpose: a quiet PBX sends nothing for hours; the heartbeat
            # (see connect) is what detects a dead peer.
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                event = parse_event_json(msg.data)
                if event is not None:
                    return event
                continue
            if msg.type in (
                aiohttp.WSMsgType.BINARY,
                aiohttp.WSMsgType.PING,
                aiohttp.WSMsgType.PONG,
            ):
                continue
            # CLOSE / CLOSING / CLOSED / ERROR
            if self._closed:
                raise StopAsyncIteration
            detail = (
                f"{msg.type.name} {msg.data!r}"
                if msg.data is not None
                else msg.type.name
            )
            await self.close()
            raise ARIConnectionError(
                None, f"events websocket closed ({detail})", "GET", "/events"
            )


class _Resource:
    def __init__(self, client: ARIClient) -> None:
        self._client = client


class Channels(_Resource):
    """``/channels`` routes. Most need the channel to be in one of our Stasis apps (else 409)."""

    async def list(self) -> list[Channel]:
        """GET /channels: every channel of the PBX (not only ours)."""
        return await self._client._get_list(Channel.from_json, "/channels")

    async def get(self, channel_id: str) -> Channel:
        return await self._client._get_one(
            Channel.from_json, "GET", f"/channels/{_segment(channel_id)}"
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: Sequence[str] = (),
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        timeout: int = 30,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
    ) -> Channel:
        """POST /channels: dial ``endpoint`` (``PJSIP/1001``, ``Local/s@ctx``).

        When answered the channel goes either into Stasis ``app`` (with ``app_args``) or to
        ``context``/``extension``/``priority`` in the dialplan; ARI forbids both. With
        neither, it goes to this client's first app. ``caller_id`` is ``"Name" <number>``;
        ``variables`` are set on the new channel (``CALLERID(name)`` works too);
        ``timeout`` is seconds of ringing. Passing ``channel_id`` lets the caller know the
        id before any event about it can arrive.
        """
        dialplan = (
            context is not None
            or extension is not None
            or priority is not None
            or label is not None
        )
        if app is not None and dialplan:
            raise ValueError(
                "originate: give either app or context/extension/priority, not both"
            )
        if app is None and not dialplan:
            app = self._client.apps[0]
        if app_args and app is None:
            raise ValueError("originate: app_args need an app")
        params = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": _csv(app_args, "app arg") if app_args else None,
            "context": context,
            "extension": extension,
            "priority": priority,
            "label": label,
            "callerId": caller_id,
            "timeout": timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return await self._client._get_one(
            Channel.from_json, "POST", "/channels", params=params, body=body
        )

    async def create(
        self,
        endpoint: str,
        *,
        channel_id: str,
        app: str | None = None,
        app_args: Sequence[str] = (),
        other_channel_id: str | None = None,
        originator: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """POST /channels/create: a channel that does not ring yet; :meth:`dial` rings it.

        Why create + dial rather than originate: the owner of the new channel exists
        (keyed by our ``channel_id``) before Asterisk can send a single event about it,
        and events between create and dial arrive before it rings. The new channel
        enters Stasis *after* this returns: dial it once its StasisStart (found by our
        ``channel_id``, hence required) has arrived; a dial before that is a 409 "Channel
        not in Stasis application" (seen on Asterisk 22). ``originator`` is the channel
        this one is placed for (the caller): Asterisk copies its language and codecs.
        """
        params = {
            "endpoint": endpoint,
            "app": app or self._client.apps[0],
            "appArgs": _csv(app_args, "app arg") if app_args else None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
        }
        body = {"variables": dict(variables)} if variables else None
        return await self._client._get_one(
            Channel.from_json, "POST", "/channels/create", params=params, body=body
        )

    async def dial(
        self, channel_id: str, *, caller: str | None = None, timeout: int | None = None
    ) -> None:
        """POST /channels/{id}/dial: ring a created channel for ``timeout`` s. Progress
        comes as ``Dial`` events (dialstatus RINGING, ANSWER, BUSY, NOANSWER...)."""
        await self._client.request(
            "POST",
            f"/channels/{_segment(channel_id)}/dial",
            params={"caller": caller, "timeout": timeout},
        )

    async def ring(self, channel_id: str) -> None:
        """POST /channels/{id}/ring: ringback to an unanswered caller while we pick an agent."""
        await self._client.request("POST", f"/channels/{_segment(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self._client.request("DELETE", f"/channels/{_segment(channel_id)}/ring")

    async def snoop(
        self,
        channel_id: str,
        *,
        snoop_id: str,
        spy: Literal["none", "in", "out", "both"] = "both",
        whisper: Literal["none", "in", "out", "both"] = "none",
        app: str | None = None,
        app_args: Sequence[str] = (),
    ) -> Channel:
        """POST /channels/{id}/snoop: a supervisor's listen (``spy``) or whisper channel on
        a call, entering Stasis ``app`` under our ``snoop_id``."""
        params = {
            "spy": spy,
            "whisper": whisper,
            "app": app or self._client.apps[0],
            "appArgs": _csv(app_args, "app arg") if app_args else None,
            "snoopId": snoop_id,
        }
        return await self._client._get_one(
            Channel.from_json,
            "POST",
            f"/channels/{_segment(channel_id)}/snoop",
            params=params,
        )

    async def answer(self, channel_id: str) -> None:
        await self._client.request("POST", f"/channels/{_segment(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: HangupReason = "normal") -> None:
        """DELETE /channels/{id}: ``reason`` sets the hangup cause (normal = 16)."""
        await self._client.request(
            "DELETE", f"/channels/{_segment(channel_id)}", params={"reason": reason}
        )

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        *,
        label: str | None = None,
    ) -> None:
        """Leave Stasis and resume the dialplan (at the next priority if nothing is given).

        This is how a Stasis app hands a call back to the dialplan, e.g. to a fallback
        context, instead of letting it fall off.
        """
        params = {
            "context": context,
            "extension": extension,
            "priority": priority,
            "label": label,
        }
        await self._client.request(
            "POST", f"/channels/{_segment(channel_id)}/continue", params=params
        )

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        lang: str | None = None,
        playback_id: str | None = None,
    ) -> Playback:
        """Start playing ``sound:hello-world`` (or several, in order); returns at once.

        Completion arrives as a PlaybackFinished event with the returned playback's id.
        """
        params = {
            "media": _csv(media, "media"),
            "lang": lang,
            "playbackId": playback_id,
        }
        return await self._client._get_one(
            Playback.from_json,
            "POST",
            f"/channels/{_segment(channel_id)}/play",
            params=params,
        )

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration: int | None = None,
        max_silence: int | None = None,
        beep: bool = False,
        terminate_on: str = "none",
        if_exists: Literal["fail", "overwrite", "append"] = "fail",
    ) -> None:
        """Record what the channel sends into ``<recordings dir>/<name>.<format>``;
        returns at once. The end arrives as a RecordingFinished (or RecordingFailed)
        event naming the recording; *max_duration* and *max_silence* are seconds."""
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration,
            "maxSilenceSeconds": max_silence,
            "beep": beep,
            "terminateOn": terminate_on,
            "ifExists": if_exists,
        }
        await self._client.request(
            "POST", f"/channels/{_segment(channel_id)}/record", params=params
        )

    async def get_variable(self, channel_id: str, name: str) -> str:
        """Read a channel variable or function (``CALLERID(num)``); ARINotFound if unset."""
        data = await self._client.request(
            "GET",
            f"/channels/{_segment(channel_id)}/variable",
            params={"variable": name},
        )
        return str(data["value"]) if isinstance(data, dict) and "value" in data else ""

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._client.request(
            "POST",
            f"/channels/{_segment(channel_id)}/variable",
            params={"variable": name, "value": value},
        )

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        between_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        params = {"dtmf": dtmf, "between": between_ms, "duration": duration_ms}
        await self._client.request(
            "POST", f"/channels/{_segment(channel_id)}/dtmf", params=params
        )

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        """Music on hold, e.g. while a caller waits in queue (``musiconhold.conf`` class)."""
        await self._client.request(
            "POST",
            f"/channels/{_segment(channel_id)}/moh",
            params={"mohClass": moh_class},
        )

    async def stop_moh(self, channel_id: str) -> None:
        await self._client.request("DELETE", f"/channels/{_segment(channel_id)}/moh")


class Bridges(_Resource):
    """``/bridges`` routes: a mixing bridge joins caller and agent."""

    async def list(self) -> list[Bridge]:
        return await self._client._get_list(Bridge.from_json, "/bridges")

    async def get(self, bridge_id: str) -> Bridge:
        return await self._client._get_one(
            Bridge.from_json, "GET", f"/bridges/{_segment(bridge_id)}"
        )

    async def create(
        self,
        type: str = "mixing",  # ARI's own parameter name
        *,
        bridge_id: str | None = None,
        name: str | None = None,
    ) -> Bridge:
        """POST /bridges; ``type`` is comma-separated ARI flags (mixing, holding, dtmf_events, ...)."""
        params = {"type": type, "bridgeId": bridge_id, "name": name}
        return await self._client._get_one(
            Bridge.from_json, "POST", "/bridges", params=params
        )

    async def add_channel(
        self, bridge_id: str, channel: str | Sequence[str], *, role: str | None = None
    ) -> None:
        params = {"channel": _csv(channel, "channel id"), "role": role}
        await self._client.request(
            "POST", f"/bridges/{_segment(bridge_id)}/addChannel", params=params
        )

    async def remove_channel(
        self, bridge_id: str, channel: str | Sequence[str]
    ) -> None:
        params = {"channel": _csv(channel, "channel id")}
        await self._client.request(
            "POST", f"/bridges/{_segment(bridge_id)}/removeChannel", params=params
        )

    async def destroy(self, bridge_id: str) -> None:
        """DELETE /bridges/{id}: channels still in it are not hung up, they leave the bridge."""
        await self._client.request("DELETE", f"/bridges/{_segment(bridge_id)}")

    async def play(
        self, bridge_id: str, media: str | Sequence[str], *, lang: str | None = None
    ) -> Playback:
        params = {"media": _csv(media, "media"), "lang": lang}
        return await self._client._get_one(
            Playback.from_json,
            "POST",
            f"/bridges/{_segment(bridge_id)}/play",
            params=params,
        )

    async def start_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self._client.request(
            "POST",
            f"/bridges/{_segment(bridge_id)}/moh",
            params={"mohClass": moh_class},
        )

    async def stop_moh(self, bridge_id: str) -> None:
        await self._client.request("DELETE", f"/bridges/{_segment(bridge_id)}/moh")


class Playbacks(_Resource):
    """``/playbacks``: stop a prompt early, e.g. when an agent becomes free mid-announcement."""

    async def get(self, playback_id: str) -> Playback:
        return await self._client._get_one(
            Playback.from_json, "GET", f"/playbacks/{_segment(playback_id)}"
        )

    async def stop(self, playback_id: str) -> None:
        await self._client.request("DELETE", f"/playbacks/{_segment(playback_id)}")


class Applications(_Resource):
    """``/applications``: what an app is subscribed to; on reconnect, what it still owns."""

    async def list(self) -> list[Application]:
        return await self._client._get_list(Application.from_json, "/applications")

    async def get(self, name: str) -> Application:
        return await self._client._get_one(
            Application.from_json, "GET", f"/applications/{_segment(name)}"
        )

    async def subscribe(self, name: str, event_source: str | Sequence[str]) -> Application:
        """POST /applications/{app}/subscription: also receive the events of
        ``endpoint:PJSIP/carmen``, ``deviceState:PJSIP/carmen``, ``channel:<id>``,
        ``bridge:<id>`` (e.g. agents' phones, which are never in Stasis while idle)."""
        return await self._client._get_one(
            Application.from_json,
            "POST",
            f"/applications/{_segment(name)}/subscription",
            params={"eventSource": _csv(event_source, "event source")},
        )

    async def unsubscribe(self, name: str, event_source: str | Sequence[str]) -> Application:
        return await self._client._get_one(
            Application.from_json,
            "DELETE",
            f"/applications/{_segment(name)}/subscription",
            params={"eventSource": _csv(event_source, "event source")},
        )


class Endpoints(_Resource):
    """``/endpoints``: is an agent's softphone registered (state online/offline)?"""

    async def list(self, technology: str | None = None) -> list[Endpoint]:
        path = "/endpoints" if technology is None else f"/endpoints/{_segment(technology)}"
        return await self._client._get_list(Endpoint.from_json, path)

    async def get(self, technology: str, resource: str) -> Endpoint:
        return await self._client._get_one(
            Endpoint.from_json,
            "GET",
            f"/endpoints/{_segment(technology)}/{_segment(resource)}",
        )


class DeviceStates(_Resource):
    """``/deviceStates``: read any device's state; set our own ``Stasis:<name>`` devices
    (e.g. an agent's availability, which hints and BLF lamps can then show)."""

    async def list(self) -> list[DeviceState]:
        return await self._client._get_list(DeviceState.from_json, "/deviceStates")

    async def get(self, name: str) -> DeviceState:
        return await self._client._get_one(
            DeviceState.from_json, "GET", f"/deviceStates/{_segment(name)}"
        )

    async def update(self, name: str, state: str) -> None:
        """PUT /deviceStates/{name}: only ``Stasis:`` devices are ours to set (else 409)."""
        await self._client.request(
            "PUT", f"/deviceStates/{_segment(name)}", params={"deviceState": state}
        )

    async def delete(self, name: str) -> None:
        await self._client.request("DELETE", f"/deviceStates/{_segment(name)}")
