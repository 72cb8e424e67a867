"""The HTTP API of ``callcenter serve``: agents' state and actions, queues, calls in
progress, and the OpenAPI 3.1 document that describes them.

Routes (JSON; every request but ``GET /openapi.json`` needs ``Authorization: Bearer
<token>``, a user's token from the home's ``secrets.json``; the event stream also takes
``?token=`` for browsers)::

    GET  /openapi.json                         this API's OpenAPI 3.1 document (no token)
    GET  /api/v1/me                            who the token belongs to
    GET  /api/v1/agents                        the agents the user may see, with their state
    GET  /api/v1/agents/{name}                 one agent
    POST /api/v1/agents/{name}/{action}        login, logout, pause ({"reason": "lunch"}),
                                               unpause, end-wrapup: the agent's new state
    POST /api/v1/agents/{name}/listen          listen, whisper or barge on the agent's call
         (also .../whisper, .../barge)         from a supervisor's phone (web.supervise)
    GET  /api/v1/queues                        queues: members, callers waiting, longest wait
    GET  /api/v1/queues/{queue}/calls          the callers waiting in one queue
    GET  /api/v1/queues/{queue}/stats          the queue now and today (web.statistics)
    GET  /api/v1/stats                         callcenter stats over a range (web.statistics)
    GET  /api/v1/events                        websocket: live domain events (web.stream)
    GET  /api/v1/calls                         calls in progress (waiting or connected)
    GET  /api/v1/calls/waiting                 callers waiting, every queue the user sees
    POST /api/v1/calls/{channel}/hangup        hang a caller up (admin, the queue's supervisor)
    GET  /api/v1/calls/{channel}/recordings    a call's recordings (whoever may see the call)
    GET  /api/v1/recordings/{recording}/audio  a recording's file (audio/wav, audio/x-gsm)
    POST /api/v1/calls/{channel}/transfer      blind or attended transfer, and its
         .../transfer/complete|cancel          end (:mod:`callcenter.web.transfers`)
    POST /api/v1/campaigns/attempts/{attempt}/disposition
                                               an agent's disposition of a campaign call
                                               (:mod:`callcenter.web.campaigns`)
    GET  /api/v1/campaigns/{campaign}/answers  an agentless campaign's answers per contact
                                               (:mod:`callcenter.web.answers`)
    POST /api/v1/campaigns/{campaign}/start|pause|stop
                                               a campaign's run state, obeyed by its
                                               dialers (:mod:`callcenter.web.campaign_state`)
    POST /api/v1/campaigns/{campaign}/preview  a preview campaign's next contact for an
    POST /api/v1/campaigns/preview/{contact}/dial|skip
                                               agent, then its dial or skip
                                               (:mod:`callcenter.web.preview`)

:data:`ROUTES` is the one description of them: the router is built from it and so is
the document (:mod:`callcenter.web.openapi`). Who may do what is decided in
:mod:`callcenter.web.access`; lists are filtered, a refused action is a 403.

An agent action goes through :meth:`callcenter.agents.store.AgentStore.apply` (the state
machine judges it; compare-and-set in the database, so it is safe next to every router),
then the ``on_agent_change`` hook tells the queue router to look at the agent again. A
hang-up goes to the ``hang_up`` hook (ARI ``DELETE /channels/{id}`` in the service): the
router then sees the caller leave, as if the caller had hung up.

Errors are JSON ``{"error": message}`` (and ``"field"`` for a bad body), with the
statuses of :data:`callcenter.web.openapi.ERRORS`. Bad input never gets a 500; an
unexpected error is logged here and answered with a plain 500 (no traceback leaves the
process).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import IllegalTransition, UnknownPauseReason, logged_out
from callcenter.agents.store import AgentStore, StoreConflict
from callcenter.asterisk.ari import ARIClient, ARINotFound
from callcenter.config.models import CallCenterConfig
from callcenter.dialer.dispose import HandoffPort
from callcenter.dialer.preview_desk import PreviewDesk
from callcenter.recording import files as recording_files
from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.storage.recordings import RecordingRepository
from callcenter.web import recordings as recording_views
from callcenter.web.access import BUILTIN_ADMIN, Access, users_from_config
from callcenter.web.answers import ANSWER_SCHEMAS, campaign_answers
from callcenter.web.auth import TokenBook
from callcenter.web.campaign_state import STATE_ROUTES, STATE_SCHEMAS, STATE_SUMMARIES
from callcenter.web.campaigns import DISPOSITION_SCHEMAS, HANDOFF
from callcenter.web.campaigns import dispose as _dispose
from callcenter.web.context import (
    ACCESS,
    CLOCK,
    CONFIG,
    SESSIONS,
    STORE,
    USER,
    ApiError,
    forbidden,
    known_name,
    user_of,
)
from callcenter.web.openapi import API_PREFIX, Param, Route, openapi_document
from callcenter.web.preview import PREVIEW_SCHEMAS, PreviewPort
from callcenter.web.preview import dial as _preview_dial
from callcenter.web.preview import install as install_preview
from callcenter.web.preview import preview as _preview
from callcenter.web.preview import skip as _preview_skip
from callcenter.web.statistics import SCHEMAS as STATS_SCHEMAS
from callcenter.web.statistics import queue_stats_route, stats_route
from callcenter.web.stream import EVENT_SCHEMAS, EVENTS_PATH, StreamHub, events_route
from callcenter.web.stream import install as install_stream
from callcenter.web.supervise import MODES, SuperviseHook, no_router, supervise_route
from callcenter.web.supervise import SCHEMAS as SUPERVISE_SCHEMAS
from callcenter.web.supervise import install as install_supervise
from callcenter.web.transfers import TRANSFER_SCHEMAS, TRANSFERS, TransferPort
from callcenter.web.transfers import cancel as _transfer_cancel
from callcenter.web.transfers import complete as _transfer_complete
from callcenter.web.transfers import transfer as _transfer
from callcenter.web.views import (
    ACTIONS,
    SCHEMAS,
    BadBody,
    agent_json,
    call_json,
    event_for,
    field_label,
    parse_body,
    queue_json,
    waiting_json,
)

__all__ = ["OPENAPI_PATH", "ROUTES", "AgentChangeHook", "HangUpHook", "ari_hang_up",
           "create_api_app", "document", "no_asterisk"]

log = logging.getLogger(__name__)

#: Called with an agent's name after the API changed it (the router's ``agent_changed``).
AgentChangeHook = Callable[[str], None]
#: Hangs up a caller's channel; ``False`` when the channel was already gone.
HangUpHook = Callable[[str], Awaitable[bool]]


def ari_hang_up(ari: ARIClient) -> HangUpHook:
    """The service's hang-up: ARI ``DELETE /channels/{id}`` (cause 16, normal clearing).
    The router then sees the caller's channel leave Stasis, as when the caller hangs up,
    and ends the call (record, agent) its usual way; a 404 means it was already gone."""

    async def hang_up(channel_id: str) -> bool:
        try:
            await ari.channels.hangup(channel_id)
        except ARINotFound:
            return False
        return True

    return hang_up

#: Largest request body read (a pause body is a few dozen bytes).
MAX_BODY: Final = 16 * 1024
#: The OpenAPI document's path (outside the versioned prefix, where tools look for it).
OPENAPI_PATH: Final = "/openapi.json"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Shared with the views of other modules (callcenter.web.context); the short names stay.
_CONFIG, _STORE, _SESSIONS, _ACCESS, _CLOCK, _USER = CONFIG, STORE, SESSIONS, ACCESS, CLOCK, USER
_ApiError = ApiError
_TOKENS: Final = web.AppKey("tokens", TokenBook)
_HOOK: Final = web.AppKey("on_agent_change", Callable[[str], None])
_HANG_UP: Final = web.AppKey("hang_up", Callable[[str], Awaitable[bool]])
_DOCUMENT: Final = web.AppKey("document", dict)
_RECORDINGS: Final = web.AppKey("recordings", Path)


def _error(status: int, message: str, **extra: str) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _presented_token(request: web.Request) -> bytes | None:
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if (not scheme and request.path == EVENTS_PATH
            and len(request.query.getall("token", [])) == 1):
        # Browsers cannot set a websocket's headers: the token in the query, on the event
        # stream only (the service's access log hides it: callcenter.web.server).
        scheme, credentials = "bearer", request.query["token"]
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    # Header values may hold any code point (and surrogates): compare bytes, never str,
    # so compare_digest cannot raise on non-ASCII input.
    return credentials.strip().encode("utf-8", "surrogatepass")


@web.middleware
async def _json_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every error as JSON; an unexpected exception logged with its route, answered 500."""
    try:
        return await handler(request)
    except _ApiError as exc:
        extra = {"field": exc.field} if exc.field is not None else {}
        return _error(exc.status, exc.message, **extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason
        if exc.status == 404:
            message = f"no such route: {request.method} {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        elif exc.status == 413:
            message = f"request body too large (at most {MAX_BODY} bytes)"
        response = _error(exc.status, message)
        for header in ("Allow", "WWW-Authenticate"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
        return response
    except Exception:
        log.exception("HTTP API: %s %s failed", request.method, request.path)
        return _error(500, "internal error (logged by the service)")


@web.middleware
async def _bearer_auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """401 unless the request carries a user's token (constant-time comparison); the
    user is then ``request[_USER]`` for the handler to authorise."""
    if request.path == OPENAPI_PATH:
        return await handler(request)
    presented = _presented_token(request)
    user = None if presented is None else request.app[_TOKENS].user_for(presented)
    if user is None:
        response = _error(401, "missing or wrong token: send 'Authorization: Bearer <token>' "
                               "(a user's token: 'callcenter api token NAME' prints it)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="callcenter"'
        return response
    request[_USER] = user
    return await handler(request)


_user = user_of
_forbidden = forbidden


def _no_body(raw: bytes, what: str) -> None:
    """A route that takes no body refuses one with fields (``{}`` or nothing is fine)."""
    try:
        body = parse_body(raw)
    except BadBody as exc:
        raise _ApiError(422, str(exc), exc.field) from None
    if body:
        field = field_label(min(body))
        raise _ApiError(422, f"{field}: unknown field for {what} (expected none)", field)


def _known_agent(request: web.Request) -> str:
    """The agent ``{name}`` of the path, one the user may act on (404, 403)."""
    return known_name(request, "name", "agent", request.app[CONFIG].agents,
                      request.app[ACCESS].may_manage_agent, "act on")


def _known_queue(request: web.Request) -> str:
    """The queue ``{queue}`` of the path, one the user may see (404, 403)."""
    return known_name(request, "queue", "queue", request.app[CONFIG].queues,
                      request.app[ACCESS].may_see_queue, "see")


# -- handlers ----------------------------------------------------------------------


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[_DOCUMENT])


async def _me(request: web.Request) -> web.Response:
    user = _user(request)
    return web.json_response({"name": user.name, "role": user.role, "agent": user.agent,
                              "queues": sorted(user.queues)})


async def _list_agents(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    user, access = _user(request), request.app[_ACCESS]
    stored = {state.agent: state for state in await request.app[_STORE].all()}
    return web.json_response({"agents": [
        agent_json(stored.get(name) or logged_out(name, now))
        for name in sorted(request.app[_CONFIG].agents) if access.may_manage_agent(user, name)
    ]})


async def _get_agent(request: web.Request) -> web.Response:
    name = _known_agent(request)
    state = await request.app[_STORE].get(name, request.app[_CLOCK]())
    return web.json_response(agent_json(state))


async def _act(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise _ApiError(404, f"no action {action!r} (actions: {', '.join(ACTIONS)})")
    name = _known_agent(request)
    try:
        event = event_for(action, parse_body(await request.read()))
    except BadBody as exc:
        return _error(422, str(exc), field=exc.field)
    app = request.app
    try:
        outcome = await app[_STORE].apply(name, event, app[_CLOCK](), reason="api")
    except UnknownPauseReason as exc:
        return _error(422, f"reason: {exc}", field="reason")
    except IllegalTransition as exc:
        return _error(409, str(exc))
    except StoreConflict as exc:
        return _error(503, f"{exc}; try again")
    if outcome.changed:
        try:
            app[_HOOK](name)
        except Exception:
            # The change is stored; the router also re-reads agents on its own timer.
            log.exception("HTTP API: telling the router about agent %s failed", name)
    return web.json_response(agent_json(outcome.state))


async def _list_queues(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    user, access, config = _user(request), request.app[_ACCESS], request.app[_CONFIG]
    async with request.app[_SESSIONS]() as session:
        waiting = await QueuedCallRepository(session).waiting()
    return web.json_response({"queues": [
        queue_json(name, queue.description,
                   [a for a in config.agents if name in access.queues_of(a)],
                   [c for c in waiting if c.queue == name], now)
        for name, queue in sorted(config.queues.items()) if access.may_see_queue(user, name)
    ]})


async def _queue_calls(request: web.Request) -> web.Response:
    queue = _known_queue(request)
    now = request.app[_CLOCK]()
    async with request.app[_SESSIONS]() as session:
        calls = await QueuedCallRepository(session).waiting(queue)
        return web.json_response({"calls": [waiting_json(call, now) for call in calls]})


async def _waiting_calls(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    user, access = _user(request), request.app[_ACCESS]
    async with request.app[_SESSIONS]() as session:
        calls = await QueuedCallRepository(session).waiting()
        return web.json_response({"calls": [waiting_json(call, now) for call in calls
                                            if access.may_see_queue(user, call.queue)]})


async def _calls(request: web.Request) -> web.Response:
    now = request.app[_CLOCK]()
    user, access = _user(request), request.app[_ACCESS]
    async with request.app[_SESSIONS]() as session:
        calls = await QueuedCallRepository(session).open_calls()
        return web.json_response({"calls": [
            call_json(call, now) for call in calls
            if access.may_see_call(user, call.queue, call.agent if call.answered_at else None)]})


async def _hang_up(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    user = _user(request)
    _no_body(await request.read(), "hangup")
    async with request.app[_SESSIONS]() as session:
        call = await QueuedCallRepository(session).get_by_channel(channel)
        if call is None or call.ended_at is not None:
            raise _ApiError(404, f"no call in progress on channel {channel!r}")
        if not request.app[_ACCESS].may_hang_up(user, call.queue):
            raise _forbidden(user, f"hang up calls of queue {call.queue!r}")
        answer = call_json(call, request.app[_CLOCK]())
    try:
        gone_before = not await request.app[_HANG_UP](channel)
    except _ApiError:
        raise
    except Exception as exc:
        log.exception("HTTP API: hanging up channel %s failed", channel)
        raise _ApiError(503, f"the PBX did not hang up the call ({type(exc).__name__}); "
                             "try again") from None
    if gone_before:
        raise _ApiError(404, f"no call in progress on channel {channel!r} (it just ended)")
    log.info("HTTP API: user %s hung up channel %s (queue %s)", user.name, channel, call.queue)
    return web.json_response(answer)


async def _call_recordings(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    user = _user(request)
    async with request.app[_SESSIONS]() as session:
        call, recordings = await RecordingRepository(session).of_call(channel)
        if call is None:
            raise _ApiError(404, f"no call on channel {channel!r}")
        if not request.app[_ACCESS].may_see_call(
                user, call.queue, call.agent if call.answered_at else None):
            raise _forbidden(user, f"see the recordings of call {channel!r}")
        return web.json_response(recording_views.recordings_json(call, recordings))


async def _recording_audio(request: web.Request) -> web.StreamResponse:
    text = request.match_info["recording"]
    recording_id = recording_views.parse_recording_id(text)
    async with request.app[_SESSIONS]() as session:
        found = None if recording_id is None else \
            await RecordingRepository(session).get(recording_id)
    if found is None:
        raise _ApiError(404, f"no recording {text!r}")
    user = _user(request)
    if not request.app[_ACCESS].may_see_call(user, found.queue, found.agent):
        raise _forbidden(user, f"hear recording {text!r}")
    directory = request.app.get(_RECORDINGS)
    handle = None if directory is None or found.path is None else await asyncio.to_thread(
        recording_files.open_recording, directory, found.path)
    if handle is None:
        raise _ApiError(404, f"recording {text!r} has no file here (still recording, "
                             "removed, or this service has no recordings directory)")
    with handle:
        size = await asyncio.to_thread(lambda: handle.seek(0, 2))
        handle.seek(0)
        response = web.StreamResponse(headers={
            "Content-Type": recording_views.MEDIA_TYPES.get(found.format,
                                                            "application/octet-stream"),
            "Content-Length": str(size),
            "Content-Disposition": f'attachment; filename="{Path(found.path or "").name}"'})
        await response.prepare(request)
        while chunk := await asyncio.to_thread(handle.read, 64 * 1024):
            await response.write(chunk)
    await response.write_eof()
    return response


def _no_change(agent: str) -> None:
    """The default hook: no router runs, nobody to tell."""


async def no_asterisk(channel: str) -> bool:
    """The default hang-up: no Asterisk to ask."""
    raise _ApiError(503, "this service has no Asterisk connection: it cannot hang up calls")


_AGENT = Param("name", "An agent's name (a key of agents).")
_QUEUE = Param("queue", "A queue's name (a key of queues).")
_CHANNEL = Param("channel", "The caller's channel id (the 'channel' of a call).")
_ACTION = Param("action", "What to do to the agent.", tuple(ACTIONS))
_RECORDING = Param("recording", "A recording's id (the 'id' of a recording).")
_ATTEMPT = Param("attempt", "A campaign call's id (contact_attempts.id).")
_CAMPAIGN = Param("campaign", "A campaign's name (a key of campaigns).")
_CONTACT = Param("contact", "A campaign contact's id (the 'contact' of a preview).")
_P = API_PREFIX

#: Every route the API serves: the router and the OpenAPI document are built from this.
ROUTES: Final[tuple[Route, ...]] = (
    Route("GET", OPENAPI_PATH, "getOpenApi", "This API's OpenAPI 3.1 document", "anyone",
          _openapi, "OpenApiDocument", public=True, tag="meta"),
    Route("GET", f"{_P}/me", "getMe", "Who the token belongs to", "every user", _me, "User",
          tag="meta"),
    Route("GET", f"{_P}/agents", "listAgents", "The agents the user may act on, with their state",
          "every user (an agent sees itself, a supervisor its queues' agents)",
          _list_agents, "AgentList"),
    Route("GET", f"{_P}/agents/{{name}}", "getAgent", "One agent's state",
          "admin; a supervisor of one of the agent's queues; the agent itself",
          _get_agent, "Agent", (_AGENT,), errors=(403, 404)),
    # Supervisor actions (callcenter.web.supervise): before actOnAgent, whose {action}
    # would take their paths.
    *(Route("POST", f"{_P}/agents/{{name}}/{mode}", f"{mode}OnAgent",
            f"{mode.capitalize()} on the agent's call from a supervisor's phone (ARI snoop; "
            "answered once the phone is answered and bridged)",
            "admin; a supervisor (API user) of one of the agent's queues; never an agent",
            supervise_route[mode], "Supervision", (_AGENT,), body="SuperviseBody",
            errors=(403, 404, 409, 422, 503), tag="supervision") for mode in MODES),
    Route("POST", f"{_P}/agents/{{name}}/{{action}}", "actOnAgent",
          "Change an agent's state through its state machine (pause takes a reason)",
          "admin; a supervisor of one of the agent's queues; the agent itself",
          _act, "Agent", (_AGENT, _ACTION), body="PauseBody",
          errors=(403, 404, 409, 422, 503)),
    Route("GET", f"{_P}/queues", "listQueues", "Queues: members, callers waiting, longest wait",
          "every user (a supervisor sees its queues, an agent those it serves)",
          _list_queues, "QueueList", tag="queues"),
    Route("GET", f"{_P}/queues/{{queue}}/calls", "listQueueCalls",
          "The callers waiting in one queue, in the order they are served",
          "admin; the queue's supervisors; the agents who serve it",
          _queue_calls, "WaitingCallList", (_QUEUE,), errors=(403, 404), tag="queues"),
    Route("GET", f"{_P}/queues/{{queue}}/stats", "getQueueStats",
          "A queue now (callers waiting, longest wait, its agents by state) and today's "
          "service level", "admin; the queue's supervisors; the agents who serve it",
          queue_stats_route, "QueueStats", (_QUEUE,), errors=(403, 404), tag="statistics"),
    Route("GET", f"{_P}/stats", "getStats",
          "Service level, ASA, AHT, abandon rate, occupancy for a range (callcenter stats "
          "--format json)", "every user (a supervisor's queues and agents, an agent the "
          "queues it serves and itself)", stats_route, "StatsReport", errors=(403, 422),
          tag="statistics", query=(
              Param("from", "Start, ISO 8601 (local time of settings.timezone without an "
                            "offset); default today's midnight."),
              Param("to", "End, excluded, ISO 8601; default now."),
              Param("last", "The last 15m, 1h, 7d... (not with from/to)."),
              Param("by", "One row per queue, agent or interval (default queue).",
                    ("queue", "agent", "interval")),
              Param("interval", "Interval length for by=interval (default 15m)."),
              Param("queue", "Only this queue's calls."))),
    Route("GET", EVENTS_PATH, "streamEvents",
          "Live domain events on a websocket (JSON text frames), as the user may see them",
          "every user (an agent its own events and calls, a supervisor its queues' and "
          "their agents', an admin all)", events_route, "StreamMessage", errors=(403, 422, 426),
          tag="events", websocket=True, query=(
              Param("token", "The token, for browsers (whose websockets cannot send an "
                             "Authorization header)."),
              Param("queues", "Only events of these queues (comma-separated names)."),
              Param("agents", "Only events of these agents (comma-separated names)."))),
    Route("GET", f"{_P}/calls", "listCalls", "Calls in progress (waiting or connected)",
          "every user (a supervisor sees its queues' calls, an agent its own)",
          _calls, "CallList", tag="calls"),
    Route("GET", f"{_P}/calls/waiting", "listWaitingCalls",
          "Callers waiting in every queue the user sees, in the order they are served",
          "every user (filtered as listQueueCalls)", _waiting_calls, "WaitingCallList",
          tag="calls"),
    Route("POST", f"{_P}/calls/{{channel}}/hangup", "hangUpCall", "Hang a caller up",
          "admin; the supervisors of the call's queue", _hang_up, "Call", (_CHANNEL,),
          errors=(403, 404, 422, 503), tag="calls"),
    # Recordings (callcenter.web.recordings): whoever may see the call.
    Route("GET", f"{_P}/calls/{{channel}}/recordings", "listCallRecordings",
          "A call's recordings (caller and agent mixed), in the order they started",
          "admin; the supervisors of the call's queue; the agent who answered it",
          _call_recordings, "RecordingList", (_CHANNEL,), errors=(403, 404), tag="calls"),
    Route("GET", f"{_P}/recordings/{{recording}}/audio", "getRecordingAudio",
          "A recording's file", "whoever may list the call's recordings",
          _recording_audio, "", (_RECORDING,), errors=(403, 404), tag="calls",
          media=recording_views.AUDIO),
    # Transfers (callcenter/web/transfers.py; the work is ari_apps/transfer.py's).
    Route("POST", f"{_P}/calls/{{channel}}/transfer", "transferCall",
          "Transfer a connected call blind or attended to a queue, an agent or a number",
          "admin; the supervisors of the call's queue; the call's own agent",
          _transfer, "Transfer", (_CHANNEL,), body="TransferBody",
          errors=(403, 404, 409, 422, 503), tag="calls"),
    Route("POST", f"{_P}/calls/{{channel}}/transfer/complete", "completeTransfer",
          "Attended transfer: the consulted target takes the caller, the agent leaves",
          "as transferCall", _transfer_complete, "Transfer", (_CHANNEL,),
          errors=(403, 404, 409, 422, 503), tag="calls"),
    Route("POST", f"{_P}/calls/{{channel}}/transfer/cancel", "cancelTransfer",
          "Attended transfer: end the consultation, back to the caller",
          "as transferCall", _transfer_cancel, "Transfer", (_CHANNEL,),
          errors=(403, 404, 409, 422, 503), tag="calls"),
    # Outbound campaigns (callcenter/web/campaigns.py; the rules are callcenter.dialer's).
    Route("POST", f"{_P}/campaigns/attempts/{{attempt}}/disposition", "disposeAttempt",
          "Record the disposition of an ended campaign call; the contact is retried, "
          "scheduled for its callback, closed or put on the do-not-call list. A "
          "disposition naming a queue, given on the live call, hands the contact to "
          "that inbound queue (a warm transfer) and the agent wraps up",
          "admin; a supervisor of the agent's queues; the agent who took the call",
          _dispose, "Disposed", (_ATTEMPT,), body="DispositionBody",
          errors=(403, 404, 409, 422, 503), tag="campaigns"),
    # Agentless campaigns' answers (callcenter/web/answers.py; stored by their dialer).
    Route("GET", f"{_P}/campaigns/{{campaign}}/answers", "getCampaignAnswers",
          "An agentless campaign's answers, per contact's call", "admin; a supervisor",
          campaign_answers, "CampaignAnswers", (_CAMPAIGN,), errors=(403, 404, 409),
          tag="campaigns"),
    # A campaign's run state (callcenter/web/campaign_state.py; the dialers obey it).
    *(Route("POST", f"{_P}/campaigns/{{campaign}}/{action}", f"{action}Campaign", summary,
            "admin; a supervisor", STATE_ROUTES[action], "CampaignState", (_CAMPAIGN,),
            body="CampaignStateBody", errors=(403, 404, 422), tag="campaigns")
      for action, summary in STATE_SUMMARIES.items()),
    # Preview campaigns (callcenter/web/preview.py; the call is ari_apps/preview.py's).
    Route("POST", f"{_P}/campaigns/{{campaign}}/preview", "previewContact",
          "Hold a preview campaign's next due contact for an agent (reserved meanwhile): "
          "its number, data, the script and dispositions",
          "an agent for itself; a supervisor for its queues' agents; admin",
          _preview, "Preview", (_CAMPAIGN,), body="PreviewBody",
          errors=(403, 404, 409, 422, 503), tag="campaigns"),
    Route("POST", f"{_P}/campaigns/preview/{{contact}}/dial", "dialPreview",
          "Dial a held contact: the attempt is written, the agent's phone rings, then the "
          "contact is dialled through the trunk and bridged",
          "as previewContact (for the contact's agent)", _preview_dial, "PreviewDial",
          (_CONTACT,), errors=(403, 404, 409, 422, 503), tag="campaigns"),
    Route("POST", f"{_P}/campaigns/preview/{{contact}}/skip", "skipPreview",
          "Put a held contact back (pending, due again) and free its agent",
          "as previewContact (for the contact's agent)", _preview_skip, "PreviewSkip",
          (_CONTACT,), body="SkipBody", errors=(403, 404, 409, 422, 503), tag="campaigns"),
)


def create_api_app(
    *,
    config: CallCenterConfig,
    store: AgentStore,
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    tokens: TokenBook | None = None,
    token: str | None = None,
    on_agent_change: AgentChangeHook = _no_change,
    hang_up: HangUpHook = no_asterisk,
    events: StreamHub | None = None,
    supervise: SuperviseHook = no_router,
    recordings: Path | None = None,
    transfers: Callable[[], TransferPort | None] = lambda: None,
    preview: Callable[[], PreviewPort | None] = lambda: None,
    handoff: Callable[[], HandoffPort | None] = lambda: None,
) -> web.Application:
    """The API as an aiohttp application (run it with
    :class:`callcenter.web.server.ApiServer`, or aiohttp's test client).

    The agents and queues of *config* are the ones the API knows; *tokens* says which
    user a token is (compared in constant time, never logged); *token* instead: only the
    built-in admin, with that token. Without *hang_up* (no Asterisk) a hang-up is a 503.
    *events*: the hub the router's bus feeds (:mod:`callcenter.web.stream`; none: a
    stream that stays quiet); *supervise*: the router's supervision (none: a 503).
    *recordings*: the directory recordings' files are read from (none: not served).
    *transfers*: returns the queue router's transfers (none: a transfer is a 503).
    *preview*: returns the preview dialer (none: a preview's dial is a 503).
    *handoff*: returns the PBX side of a campaign call's warm transfer (none: a 503).
    """
    if (tokens is None) == (token is None):
        raise TypeError("create_api_app() takes tokens or token, not both nor neither")
    if tokens is None:
        admin = users_from_config(config)[BUILTIN_ADMIN]
        tokens = TokenBook.fixed({BUILTIN_ADMIN: admin}, {BUILTIN_ADMIN: str(token)})
    app = web.Application(middlewares=[_json_errors, _bearer_auth], client_max_size=MAX_BODY)
    app[_CONFIG] = config
    app[_STORE] = store
    app[_SESSIONS] = sessions
    app[_TOKENS] = tokens
    app[_ACCESS] = Access(config)
    app[_HOOK] = on_agent_change
    app[_HANG_UP] = hang_up
    app[TRANSFERS] = transfers
    app[HANDOFF] = handoff
    app[_CLOCK] = clock
    app[_DOCUMENT] = document()
    install_stream(app, events if events is not None else StreamHub())
    install_supervise(app, supervise)
    install_preview(app, PreviewDesk(config, sessions, store), preview)
    if recordings is not None:
        app[_RECORDINGS] = recordings
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    return app


def document() -> dict[str, Any]:
    """The OpenAPI document, without a server (``callcenter api openapi``, tests)."""
    return openapi_document(ROUTES, {**SCHEMAS, **SUPERVISE_SCHEMAS, **STATS_SCHEMAS,
                                     **EVENT_SCHEMAS, **recording_views.SCHEMAS,
                                     **TRANSFER_SCHEMAS, **DISPOSITION_SCHEMAS,
                                     **PREVIEW_SCHEMAS, **STATE_SCHEMAS,
                                     **ANSWER_SCHEMAS},
                            version="1")
