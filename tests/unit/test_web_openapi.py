"""The OpenAPI 3.1 document at ``/openapi.json``: valid by an outside validator
(openapi-spec-validator), served without a token, describing exactly the routes the
server serves, and every answer the server gives (bodies and statuses, for every role)
is what the document says it is."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.web.api import ROUTES, document
from tests.web_api import REASON, T0, TOKENS, Api, config_with_pause_reason, running_api

DOC_URI = "urn:callcenter:openapi"


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


@pytest.fixture
async def api(config, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Api]:
    async with sessions.begin() as session:
        repo = QueuedCallRepository(session)
        await repo.enter_by_id("c-1", "sales", entered_at=T0, language="en", node="pbx1")
        talk = await repo.enter_by_id("c-2", "tech_support", entered_at=T0)
        offer = await repo.add_offer_by_id(talk, "bob", offered_at=T0)
        await repo.answered_by_id(talk, offer, "bob", at=T0 + dt.timedelta(seconds=3))

    async def hang_up(channel: str) -> bool:
        return True

    async with running_api(config, sessions, hang_up=hang_up) as running:
        yield running


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_a_broken_document_is_caught_by_the_validator() -> None:
    """The validator is not a rubber stamp: a response without description fails."""
    doc = document()
    del doc["paths"]["/api/v1/me"]["get"]["responses"]["200"]["description"]
    with pytest.raises(Exception, match="description"):
        validate(doc)


async def test_it_is_served_without_a_token_and_is_the_generated_one(api: Api) -> None:
    async with api.client.get("/openapi.json") as response:
        assert response.status == 200
        assert await response.json() == document()


def _served(api: Api) -> set[tuple[str, str]]:
    routes = set()
    for resource in api.client.server.app.router.resources():
        path = resource.canonical
        for route in resource:
            routes.add((route.method.lower(), path))
    return routes


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}


async def test_every_served_route_is_documented_and_every_documented_one_served(
        api: Api) -> None:
    served = _served(api)
    assert served == _documented(document())
    assert ("get", "/api/v1/queues") in served
    assert ("post", "/api/v1/calls/{channel}/hangup") in served
    for path, item in document()["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"\{(\w+)\}", path)), path


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not documented")


REQUESTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    (user, method, path, body)
    for user in ("admin", "sue", "sam", "alice_phone")
    for method, path, body in [
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/agents", None),
        ("GET", "/api/v1/agents/alice", None),
        ("GET", "/api/v1/agents/zoe", None),
        ("POST", "/api/v1/agents/alice/login", None),
        ("POST", "/api/v1/agents/alice/pause", {"reason": REASON}),
        ("POST", "/api/v1/agents/alice/pause", {"reason": 5}),
        ("POST", "/api/v1/agents/bob/unpause", None),
        ("POST", "/api/v1/agents/alice/dance", None),
        ("GET", "/api/v1/queues", None),
        ("GET", "/api/v1/queues/sales/calls", None),
        ("GET", "/api/v1/queues/tech_support/calls", None),
        ("GET", "/api/v1/queues/nope/calls", None),
        ("GET", "/api/v1/calls", None),
        ("GET", "/api/v1/calls/waiting", None),
        ("POST", "/api/v1/calls/c-9/hangup", None),
        ("POST", "/api/v1/calls/c-2/hangup", {"x": 1}),
        ("POST", "/api/v1/calls/c-1/hangup", None),
        ("DELETE", "/api/v1/agents", None),
        ("POST", "/api/v1/agents/alice/pause", {"reason": "x" * 20_000}),
    ]
]


async def test_every_answer_is_what_the_document_says(api: Api) -> None:
    doc = document()
    registry = Registry().with_resource(DOC_URI, Resource.opaque(doc))
    statuses: set[int] = set()
    for user, method, path, body in REQUESTS:
        operation = _operation(doc, method if method != "DELETE" else "GET", path)
        async with api.client.request(method, path, headers=api.as_user(user),
                                      json=body) as response:
            answer = await response.json()
            status = response.status
        statuses.add(status)
        where = (user, method, path, status, answer)
        if method == "DELETE":
            assert status == 405, where
        assert str(status) in operation["responses"], where
        ref = operation["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]
        Draft202012Validator({"$ref": DOC_URI + ref}, registry=registry).validate(answer)
    # The requests reach every kind of answer, so the check covers them all.
    assert statuses >= {200, 403, 404, 405, 409, 413, 422}, statuses
    assert TOKENS.keys() >= {"admin", "sue", "sam", "alice_phone"}


def test_the_schemas_reject_what_the_api_never_sends() -> None:
    doc = document()
    registry = Registry().with_resource(DOC_URI, Resource.opaque(doc))
    agent = Draft202012Validator({"$ref": DOC_URI + "#/components/schemas/Agent"},
                                 registry=registry)
    assert not agent.is_valid({"name": "alice"})
    assert not agent.is_valid({"name": "alice", "status": "dancing", "since": "x",
                               "pause_reason": None, "pending_pause": None, "call": None,
                               "phone_lost": False, "wrap_up_until": None, "version": 0})


def test_each_route_is_described_once() -> None:
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))
    assert len({r.operation_id for r in ROUTES}) == len(ROUTES)
