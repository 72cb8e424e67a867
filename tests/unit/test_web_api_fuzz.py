"""Property: whatever the method, path, headers and body, the HTTP API answers with
JSON and a status from its documented set; never a 500, never a traceback, and the
server still serves a good request afterwards."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from tests.web_api import REASON, TOKEN, Api, config_with_pause_reason, running_api

DOCUMENTED = {200, 401, 404, 405, 409, 413, 422}

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


@pytest.fixture
async def api(config, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    async with running_api(config, sessions) as running:
        yield running


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
_paths = st.one_of(
    _action_paths, _action_paths, _action_paths,
    st.builds(lambda n: f"/api/v1/agents/{_segment(n)}", _names),
    st.sampled_from(["/api/v1/agents", "/api/v1/calls/waiting", "/api/v1/agents/", "/", "/api",
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
_bodies = st.one_of(
    st.none(), _reason_bodies, _reason_bodies,
    st.binary(max_size=200),
    _json_values.map(lambda v: json.dumps(v).encode()),
)
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)
_valid = st.just(f"Bearer {TOKEN}")
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
        answer = json.loads(raw)
        assert b"Traceback" not in raw
        if response.status >= 400:
            assert isinstance(answer["error"], str) and answer["error"]


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
