"""Property: the statistics, supervision and event-stream routes answer any query string,
body and token (every role's, bad ones) with JSON and a status their OpenAPI operation
lists; a 422 names the field; never a 500. The event stream is asked without and with a
websocket upgrade."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from ari_apps.supervision import SupervisionRefused
from callcenter.web.api import document
from callcenter.web.supervise import router_hook
from tests.unit.test_stats_cli import seed
from tests.web_api import TOKENS
from tests.web_live import LiveApi, live_api, live_config

CONFIG = live_config()
DOC = document()
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


class Refusing:
    """The router's supervision refusing every request (the agent is never on a call)."""

    async def supervise(self, supervisor: str, agent: str, mode: str) -> None:
        raise SupervisionRefused("not_on_call", f"{agent} is not on a call")


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[LiveApi]:
    await seed(sessions)
    async with live_api(CONFIG, sessions, supervise=router_hook(Refusing())) as running:
        yield running


def _statuses(template: str, method: str = "get") -> set[int]:
    return {int(s) for s in DOC["paths"][template][method]["responses"]}


_times = st.one_of(st.sampled_from(["2026-11-30", "2026-11-30T09:00", "2026-11-30T14:00:00Z",
                                    "2026-11-29T23:00:00-05:00", "0001-01-01", "9999-12-31",
                                    "yesterday", "", "2026-02-30"]), st.text(max_size=25))
_durations = st.one_of(st.sampled_from(["15m", "1h", "7d", "0m", "1s", "999999w", "-5m",
                                        "1.5h", ""]), st.text(max_size=10))
_values = {"from": _times, "to": _times, "last": _durations, "interval": _durations,
           "by": st.one_of(st.sampled_from(["queue", "agent", "interval", "", "QUEUE"]),
                           st.text(max_size=10)),
           "queue": st.one_of(st.sampled_from(["sales", "tech_support", "nope", ""]),
                              st.text(max_size=10)),
           "queues": st.one_of(st.sampled_from(["sales", "sales,tech_support", ",", "nope"]),
                               st.text(max_size=20)),
           "agents": st.one_of(st.sampled_from(["alice", "carmen,bob", "zoe", ""]),
                               st.text(max_size=20)),
           "token": st.one_of(st.sampled_from(list(TOKENS.values())), st.text(max_size=20))}
_known_keys = st.sampled_from(sorted(_values))
_keys = st.one_of(_known_keys, _known_keys, _known_keys, st.text(max_size=8))
_users = st.one_of(st.sampled_from(sorted(TOKENS)), st.sampled_from(sorted(TOKENS)),
                   st.sampled_from([None, "bad"]))


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{urllib.parse.quote(k, safe='')}={urllib.parse.quote(v, safe='')}"
                    for k, v in pairs)


def _headers(user: str | None) -> dict[str, str]:
    if user is None:
        return {}
    return {"Authorization": f"Bearer {TOKENS.get(user, 'not-a-token')}"}


def _url(api: LiveApi, path: str) -> URL:
    return URL(f"http://{api.client.server.host}:{api.client.server.port}{path}", encoded=True)


def _check(status: int, raw: bytes, allowed: set[int]) -> None:
    assert status in allowed | {401}, (status, raw)
    answer = json.loads(raw)
    assert b"Traceback" not in raw
    if status >= 400:
        assert isinstance(answer["error"], str) and answer["error"]
    if status == 422:
        assert isinstance(answer["field"], str) and answer["field"], answer


@FUZZ
@given(data=st.data(), user=_users,
       path=st.sampled_from(["/api/v1/stats", "/api/v1/queues/sales/stats",
                             "/api/v1/queues/tech_support/stats", "/api/v1/events"]))
async def test_any_query_gets_a_documented_json_answer(api: LiveApi, data: st.DataObject,
                                                       user: str | None, path: str) -> None:
    keys = data.draw(st.lists(_keys, max_size=5, unique=True))
    pairs = [(k, data.draw(_values.get(k, st.text(max_size=10)))) for k in keys]
    template = path if "/queues/" not in path else "/api/v1/queues/{queue}/stats"
    url = _url(api, f"{path}?{_query(pairs)}" if pairs else path)
    async with api.client.session.get(url, headers=_headers(user)) as response:
        _check(response.status, await response.read(), _statuses(template))


@settings(FUZZ, max_examples=300)
@given(data=st.data(), user=st.sampled_from(sorted(TOKENS)))
async def test_any_range_of_the_statistics_gets_a_documented_json_answer(
        api: LiveApi, data: st.DataObject, user: str) -> None:
    keys = data.draw(st.lists(st.sampled_from(["from", "to", "last", "by", "interval",
                                               "queue"]), max_size=4, unique=True))
    pairs = [(k, data.draw(_values[k])) for k in keys]
    url = _url(api, f"/api/v1/stats?{_query(pairs)}")
    async with api.client.session.get(url, headers=_headers(user)) as response:
        _check(response.status, await response.read(), _statuses("/api/v1/stats"))


@FUZZ
@given(data=st.data(), user=_users)
async def test_a_websocket_upgrade_with_any_query_opens_or_gets_a_documented_error(
        api: LiveApi, data: st.DataObject, user: str | None) -> None:
    keys = data.draw(st.lists(_keys, max_size=4, unique=True))
    pairs = [(k, data.draw(_values.get(k, st.text(max_size=10)))) for k in keys]
    url = _url(api, f"/api/v1/events?{_query(pairs)}")
    try:
        ws = await api.client.session.ws_connect(url, headers=_headers(user))
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status in _statuses("/api/v1/events") | {401}, exc
        assert exc.status != 101
        return
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "subscribed"
    await ws.close()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=8)
_bodies = st.one_of(
    st.none(), st.binary(max_size=100),
    st.dictionaries(st.sampled_from(["supervisor", "supervisor", "mode", ""]),
                    st.one_of(st.sampled_from(["bob", "alice", "zoe", "admin"]), _json_values),
                    max_size=2).map(lambda v: json.dumps(v).encode()),
    _json_values.map(lambda v: json.dumps(v).encode()))


@FUZZ
@given(user=_users, agent=st.one_of(st.sampled_from(["alice", "bob", "carmen", "zoe"]),
                                    st.text(max_size=12)),
       mode=st.sampled_from(["listen", "whisper", "barge"]), body=_bodies)
async def test_any_supervision_request_gets_a_documented_json_answer(
        api: LiveApi, user: str | None, agent: str, mode: str, body: bytes | None) -> None:
    path = f"/api/v1/agents/{urllib.parse.quote(agent, safe='')}/{mode}"
    async with api.client.session.post(_url(api, path), headers=_headers(user),
                                       data=body) as response:
        raw = await response.read()
        _check(response.status, raw, _statuses(f"/api/v1/agents/{{name}}/{mode}", "post"))
