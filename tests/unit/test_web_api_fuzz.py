"""Property: whatever the method, path (every route of :data:`callcenter.web.api.ROUTES`,
with good and junk parameters, and paths of no route), token (every role's, bad ones),
headers and body (bad JSON, wrong types, unknown fields, huge or deeply nested), the
HTTP API answers with JSON and a status its OpenAPI document lists for that operation;
a 422 names the field; never a 500, never a traceback, and the server still serves a
good request afterwards."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.web.api import ROUTES, document
from tests.web_api import (
    REASON,
    T0,
    TOKEN,
    TOKENS,
    Api,
    config_with_pause_reason,
    running_api,
)

DOCUMENTED = {200, 401, 403, 404, 405, 409, 413, 422, 426, 503}
DOC = document()

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


@pytest.fixture
async def api(config, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        for channel, queue in [("c-1", "sales"), ("c-2", "tech_support"), ("c-3", "sales")]:
            await repo.enter_by_id(channel, queue, entered_at=T0)

    async def hang_up(channel: str) -> bool:
        # Hung up once per example at most matters not: the record stays open, as when
        # the router has not seen the hang-up yet (then the answer is a 404).
        return channel != "c-3"

    async with running_api(config, sessions, hang_up=hang_up) as running:
        yield running


def _statuses(method: str, path: str) -> set[int]:
    """What the document allows for *path* (already encoded; no query string)."""
    path = path.split("?", 1)[0]
    for template, item in DOC["paths"].items():
        # A path parameter matches as aiohttp's router does: a segment without "/" and
        # without braces (decoded: %7B/%7D are braces too), so "/calls/%7B/hangup" is no route.
        segment = "(?:(?!%7[BbDd])[^/{}])+"
        pattern = "^" + re.sub(r"\\\{\w+\\\}", lambda _: segment, re.escape(template)) + "$"
        if re.match(pattern, path):
            operation = item.get(method.lower())
            if operation is None:
                return {401, 405}
            return {int(s) for s in operation["responses"]}
    return {401, 404}


def _segment(text: str) -> str:
    return urllib.parse.quote(text, safe="")


_agents = st.sampled_from(["alice", "bob", "carmen"])
_names = st.one_of(_agents, _agents, st.sampled_from(
    ["zoe", "", "..", "ALICE", "alice\x00", "a" * 300]), st.text(max_size=40))
_known_actions = st.sampled_from(["login", "logout", "pause", "unpause", "end-wrapup"])
_actions = st.one_of(_known_actions, _known_actions, st.sampled_from(
    ["end_wrapup", "LOGIN", "pause/"]), st.text(max_size=20))
_action_paths = st.builds(lambda n, a: f"/api/v1/agents/{_segment(n)}/{_segment(a)}",
                          _names, _actions)
_param_values = {
    "name": _names, "action": _actions,
    "queue": st.one_of(st.sampled_from(["sales", "tech_support", "customer_service", "nope",
                                        "SALES", ""]), st.text(max_size=30)),
    "channel": st.one_of(st.sampled_from(["c-1", "c-2", "c-3", "c-none", "", "%00"]),
                         st.text(max_size=40)),
    "recording": st.one_of(st.sampled_from(["1", "0", "-1", "1.0", "٣", "9" * 30, ""]),
                           st.text(max_size=20)),
    "attempt": st.one_of(st.sampled_from(["1", "0", "-1", "1.0", "٣", "9" * 30, ""]),
                         st.text(max_size=20)),
    "campaign": st.one_of(st.sampled_from(["renewals", "preview", "nope", "", "%00"]),
                          st.text(max_size=30)),
    "contact": st.one_of(st.sampled_from(["1", "0", "-1", "1.0", "٣", "9" * 30, ""]),
                         st.text(max_size=20)),
}


def _route_path(route) -> st.SearchStrategy[str]:
    names = re.findall(r"\{(\w+)\}", route.path)
    return st.tuples(*(_param_values[n] for n in names)).map(
        lambda values: route.path.format(**{n: _segment(v) for n, v in zip(names, values)}))


_route_paths = st.one_of(*(_route_path(r) for r in ROUTES))
_paths = st.one_of(
    _route_paths, _route_paths, _route_paths, _action_paths,
    st.builds(lambda n: f"/api/v1/agents/{_segment(n)}", _names),
    st.sampled_from(["/api/v1/agents", "/api/v1/calls/waiting", "/api/v1/agents/", "/", "/api",
                     "/api/agents", "/api/v1/queues/", "/api/v1/calls/c-1/hangup/x",
                     "/openapi.json/", "/api/v1/me?who=1", "/api/v1/queues/sales/calls/",
                     "/api/v1/agents/alice/login/extra", "/api//agents", "/api/v1/calls/waiting?x=1",
                     "/api/v1/agents/alice/../bob/login"]),
    st.lists(st.text(max_size=12), max_size=5).map(
        lambda parts: "/" + "/".join(_segment(p) for p in parts)),
)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_reason_bodies = st.dictionaries(
    st.sampled_from(["reason", "reason", "Reason", "force", ""]),
    st.one_of(st.just(REASON), st.sampled_from(["lunch", "unregistered", "no_answer", "x" * 65]),
              _json_values), max_size=3).map(lambda v: json.dumps(v).encode())
_huge = st.integers(16_000, 40_000).map(lambda n: b'{"reason": "' + b"x" * n + b'"}')
_bodies = st.one_of(
    st.none(), _reason_bodies, _reason_bodies, _huge,
    st.binary(max_size=200),
    _json_values.map(lambda v: json.dumps(v).encode()),
)
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)
_valid = st.sampled_from([f"Bearer {token}" for token in TOKENS.values()])
_auth = st.one_of(
    _valid, _valid, _valid, _valid, st.none(),
    st.builds(lambda s: f"Bearer {s}", _header_text), _header_text,
    st.sampled_from([f"Bearer {TOKEN} {TOKEN}", f"Bearer  {TOKEN}", f"bearer {TOKEN}",
                     f"Bearer {TOKEN[:-1]}"]),
)
_methods = st.one_of(st.just("POST"), st.just("POST"), st.just("GET"),
                     st.sampled_from(["PUT", "DELETE", "PATCH", "OPTIONS"]))
_content_types = st.one_of(st.none(), st.sampled_from(
    ["application/json", "text/plain", "application/json; charset=latin-1",
     "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]), _header_text)


@FUZZ
@given(method=_methods,
       path=_paths, auth=_auth, content_type=_content_types, body=_bodies)
async def test_any_request_gets_a_documented_json_answer(
        api: Api, method: str, path: str, auth: str | None, content_type: str | None,
        body: bytes | None) -> None:
    headers = {}
    if auth is not None:
        headers["Authorization"] = auth
    if content_type is not None:
        headers["Content-Type"] = content_type
    # The path as sent, already percent-encoded: yarl must not re-encode or resolve it.
    url = URL(f"http://{api.client.server.host}:{api.client.server.port}{path}", encoded=True)
    async with api.client.session.request(method, url, headers=headers, data=body) as response:
        raw = await response.read()
        assert response.status in DOCUMENTED, (response.status, raw)
        assert response.status in _statuses(method, path) | {401}, (method, path, raw)
        answer = json.loads(raw)
        assert b"Traceback" not in raw
        if response.status >= 400:
            assert isinstance(answer["error"], str) and answer["error"]
        if response.status == 422:
            assert isinstance(answer["field"], str) and answer["field"], answer


_deep = st.integers(500, 7000).map(lambda n: b"[" * n + b"]" * n)
_action_bodies = st.one_of(
    st.fixed_dictionaries({"reason": _json_values}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"reason": st.sampled_from([REASON, "lunch", "unregistered",
                                                      "no_answer", "", "x" * 65])})
    .map(lambda v: json.dumps(v).encode()),
    _reason_bodies, _json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100), _deep,
    _deep.map(lambda nested: b'{"reason": ' + nested + b"}"),
    st.none(),
)


@FUZZ
@given(agent=_agents, action=_known_actions, body=_action_bodies,
       content_type=_content_types)
async def test_any_body_of_an_authorised_action_gets_a_documented_answer(
        api: Api, agent: str, action: str, body: bytes | None, content_type: str | None) -> None:
    headers = api.headers()
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with api.client.post(f"/api/v1/agents/{agent}/{action}", headers=headers,
                               data=body) as response:
        raw = await response.read()
        assert response.status in DOCUMENTED, (response.status, raw)
        answer = json.loads(raw)
        if response.status == 422:
            assert isinstance(answer["field"], str), answer
        elif response.status == 200:
            assert answer["name"] == agent


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=300))
async def test_raw_garbage_on_the_socket_leaves_the_server_serving(
        api: Api, garbage: bytes) -> None:
    host, port = api.client.server.host, api.client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(garbage + b"\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read(65536)
    except (ConnectionError, TimeoutError):
        answer = b""
    finally:
        writer.close()
    assert not answer.startswith(b"HTTP/1.1 5"), answer
    assert b"Traceback" not in answer
    async with api.client.get("/api/v1/agents", headers=api.headers()) as response:
        assert response.status == 200


#: Parameters of an agent and a call each user may act on (the body is read before a
#: hang-up's role is checked, so alice_phone's bad bodies are refused as bad too).
_GOOD_PARAMS = {user: {"name": "alice", "action": "pause", "queue": "sales", "channel": "c-1",
                       "attempt": "1", "campaign": "renewals", "contact": "1"}
                for user in TOKENS} | {"sam": {"name": "bob", "action": "pause",
                                               "queue": "tech_support", "channel": "c-2",
                                               "attempt": "2", "campaign": "renewals",
                                               "contact": "2"}}
_BAD_BODIES = [
    (b"{", 422, "body"), (b'"lunch"', 422, "body"), (b"[]", 422, "body"),
    (b"\xff\xfe", 422, "body"), (b"[" * 5000 + b"]" * 5000, 422, "body"),
    (b'{"zzz": 1}', 422, "zzz"), (b'{"reason": {"a": 1}}', 422, "reason"),
    (b'{"reason": "' + b"x" * 20_000 + b'"}', 413, None),
]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "POST"],
                         ids=lambda r: r.operation_id)
@pytest.mark.parametrize("user", sorted(TOKENS))
async def test_every_route_that_takes_a_body_refuses_a_bad_one_naming_the_field(
        api: Api, route, user: str) -> None:
    path = route.path.format(**_GOOD_PARAMS[user])
    for body, status, field in _BAD_BODIES:
        async with api.client.post(path, data=body, headers=api.as_user(user)) as response:
            answer = await response.json()
        assert (response.status, answer.get("field")) == (status, field), (body[:40], answer)
        assert isinstance(answer["error"], str)
    assert api.changed == []
