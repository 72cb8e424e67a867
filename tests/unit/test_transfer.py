"""Transfers without a PBX: the pure decisions (callcenter/routing/transfer.py), the
queue_log lines, and the HTTP API's transfer routes in front of a fake router that speaks
:class:`callcenter.web.transfers.TransferPort` (it records what it was asked)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.transfer import TransferRefused, leg_variables, number_dial, requeue
from callcenter.agents.rules import rules_from_config
from callcenter.agents.store import AgentStore
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.models import CallCenterConfig, Trunk
from callcenter.events import CallTransferred
from callcenter.reporting.queue_log import queue_log_lines
from callcenter.routing.transfer import (
    Target,
    TransferError,
    TransferRequest,
    may_transfer,
    parse_request,
    pick_agent,
    refer_target,
)
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.api import document
from tests.web_api import T0, TOKENS, config_with_pause_reason


@pytest.fixture(scope="module")
def config() -> CallCenterConfig:
    return config_with_pause_reason()


@pytest.fixture(scope="module")
def with_trunk(config: CallCenterConfig) -> CallCenterConfig:
    settings = config.settings.model_copy(update={"outbound_trunk": "carrier"})
    return config.model_copy(update={"settings": settings})


# -- the request ---------------------------------------------------------------------


def test_a_request_names_one_target_and_a_mode(with_trunk: CallCenterConfig) -> None:
    assert parse_request({"to": {"queue": "sales"}}, with_trunk) == TransferRequest(
        Target("queue", "sales"), "blind")
    assert parse_request({"to": {"agent": "alice"}, "mode": "attended"}, with_trunk) == \
        TransferRequest(Target("agent", "alice"), "attended")
    assert parse_request({"to": {"number": "+15551230000"}}, with_trunk).target == \
        Target("number", "+15551230000")


@pytest.mark.parametrize(("body", "field"), [
    ({}, "to"),
    ({"to": "sales"}, "to"),
    ({"to": {}}, "to"),
    ({"to": {"queue": "sales", "agent": "alice"}}, "to"),
    ({"to": {"extension": "1000"}}, "to.extension"),
    ({"to": {"queue": "salse"}}, "to.queue"),
    ({"to": {"agent": "zed"}}, "to.agent"),
    ({"to": {"queue": 7}}, "to.queue"),
    ({"to": {"queue": "sales"}, "mode": "warm"}, "mode"),
    ({"to": {"queue": "sales"}, "priority": 9}, "priority"),
    # Hostile numbers: each would be dialplan or a second dial string after PJSIP/.
    ({"to": {"number": "1234&PJSIP/alice"}}, "to.number"),
    ({"to": {"number": "12;Dial(PJSIP/x)"}}, "to.number"),
    ({"to": {"number": "${SHELL(id)}"}}, "to.number"),
    ({"to": {"number": "555\n0100"}}, "to.number"),
    ({"to": {"number": "555 0100"}}, "to.number"),
    ({"to": {"number": "+1555123000011112222333"}}, "to.number"),
    ({"to": {"number": "12"}}, "to.number"),
    ({"to": {"number": ""}}, "to.number"),
    ({"to": {"number": "1;Hangup"}}, "to.number"),
    ({"to": {"number": "+1555abc0100"}}, "to.number"),
    ({"to": {"number": "１２３４"}}, "to.number"),  # full-width digits
])
def test_a_bad_request_names_its_field(with_trunk: CallCenterConfig, body: dict[str, Any],
                                       field: str) -> None:
    with pytest.raises(TransferError) as refused:
        parse_request(body, with_trunk)
    assert refused.value.field == field
    assert refused.value.status == 422


def test_a_number_needs_an_outbound_trunk(config: CallCenterConfig) -> None:
    assert config.settings.outbound_trunk is None
    with pytest.raises(TransferError, match="outbound_trunk") as refused:
        parse_request({"to": {"number": "+15551230000"}}, config)
    assert refused.value.field == "to.number"


# -- who may, where a REFER leads, whom a warm hand-off consults ---------------------


@pytest.mark.parametrize(("role", "agent", "queues", "allowed"), [
    ("admin", None, (), True),
    ("agent", "carmen", (), True),            # its own call
    ("agent", "alice", (), False),            # another agent's call
    ("supervisor", None, ("sales",), True),   # its team's call
    ("supervisor", None, ("tech_support",), False),
])
def test_who_may_transfer_a_call_of_carmen_in_sales(role: str, agent: str | None,
                                                    queues: tuple[str, ...],
                                                    allowed: bool) -> None:
    assert may_transfer(role, agent, queues, "sales", "carmen") is allowed


def test_a_number_goes_out_through_the_trunks_dial_context(
        with_trunk: CallCenterConfig) -> None:
    """outbound_trunk naming a trunk of ``trunks:``: its dial context (caller ID, ring
    time, number check), a Local channel never optimised away (``/n``); any other name
    is a PJSIP endpoint of the PBX's own."""
    endpoint_only = with_trunk.model_copy(update={"trunks": {}})
    assert number_dial("+15550100004", endpoint_only) == ("PJSIP/+15550100004@carrier", 30)
    trunks = {"carrier": Trunk(host="127.0.0.2", ring_timeout=25)}
    config = with_trunk.model_copy(update={"trunks": trunks})
    assert number_dial("+15550100004", config) == (
        "Local/+15550100004@cc-trunk-carrier-out/n", 25)
    for hostile in ("1;Hangup", "${SHELL(x)}", "+1555abc0100", "", "+" + "1" * 21,
                    "5550100/n", "555@other"):
        with pytest.raises(TransferError) as refused:
            number_dial(hostile, config)
        assert refused.value.field == "to.number"


def test_a_refer_number_is_an_extension_a_queue_or_an_external_number(
        config: CallCenterConfig, with_trunk: CallCenterConfig) -> None:
    assert refer_target("1002", config) == Target("agent", "bob")
    assert refer_target("sales", config) == Target("queue", "sales")
    assert refer_target("5551230000", with_trunk) == Target("number", "5551230000")
    for hostile in ("5551230000", "1002;x", "sales&bob", "", "*70"):
        with pytest.raises(TransferError) as refused:
            refer_target(hostile, config)
        assert refused.value.field == "refer_to"


def test_a_warm_hand_off_consults_the_longest_idle_free_member() -> None:
    members = {"alice": frozenset({"sales"}), "carmen": frozenset({"sales"}),
               "bob": frozenset({"tech_support"})}
    free = [("carmen", 200.0), ("alice", 100.0), ("bob", 50.0)]
    assert pick_agent("sales", free, members, exclude="dora") == "alice"
    assert pick_agent("sales", free, members, exclude="alice") == "carmen"
    assert pick_agent("sales", [("bob", 1.0)], members, exclude="carmen") is None


def test_the_requeued_caller_keeps_priority_and_language_not_skills() -> None:
    call = QueueCall("sales", ("sales",), 15, "es", "main", "100200")
    assert requeue(call, "tech_support") == QueueCall("tech_support", (), 15, "es", "main",
                                                      "100200")


def test_only_pjsip_offer_legs_hand_their_refer_to_the_app() -> None:
    assert leg_variables("PJSIP/carmen") == {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
    assert leg_variables("IAX2/desk") == {}


# -- queue_log ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "kind", "target", "line"), [
    ("blind", "queue", "tech_support", ("BLINDTRANSFER", "tech_support|cc-queue|12|95|2")),
    ("blind", "number", "+15551230000", ("BLINDTRANSFER", "+15551230000|cc-external|12|95|2")),
    ("attended", "agent", "alice", ("ATTENDEDTRANSFER", "BRIDGE|cc-c1|12|95|2")),
])
def test_a_transfer_is_written_in_app_queues_words(mode: str, kind: str, target: str,
                                                   line: tuple[str, str]) -> None:
    event = CallTransferred(at=T0, queue="sales", call="c1", agent="carmen", mode=mode,  # type: ignore[arg-type]
                            target_kind=kind, target=target, hold_seconds=12.3,
                            talk_seconds=95.4, position=2, bridge="cc-c1")
    (written,) = queue_log_lines(event, lambda agent: f"PJSIP/{agent}")
    assert (written.queue, written.callid, written.agent) == ("sales", "c1", "carmen")
    assert (written.verb, written.message) == line


# -- the HTTP API ----------------------------------------------------------------------


@dataclass
class FakeTransfers:
    """Speaks TransferPort: one connected call, c-talk (sales, carmen)."""

    calls: dict[str, tuple[str, str | None]] = field(
        default_factory=lambda: {"c-talk": ("sales", "carmen")})
    asked: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: TransferRefused | None = None

    def connected_call(self, call: str) -> tuple[str, str | None] | None:
        return self.calls.get(call)

    async def start(self, call: str, request: TransferRequest, *, via: str,
                    by_agent: str | None = None) -> Any:
        self.asked.append(("start", call, request, via, by_agent))
        if self.refuse is not None:
            raise self.refuse
        return _Done({"call": call, "state": "ended", "result": "requeued"})

    async def complete(self, call: str, *, by_agent: str | None = None) -> Any:
        self.asked.append(("complete", call, by_agent))
        return _Done({"call": call, "state": "ended", "result": "completed"})

    async def cancel(self, call: str, *, by_agent: str | None = None) -> Any:
        self.asked.append(("cancel", call, by_agent))
        raise TransferRefused(409, f"call {call!r} has no consultation in progress")


@dataclass
class _Done:
    body: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return self.body


@pytest.fixture
async def fake() -> FakeTransfers:
    return FakeTransfers()


@pytest.fixture
async def client(config: CallCenterConfig, sessions: async_sessionmaker[AsyncSession],
                 fake: FakeTransfers) -> AsyncIterator[TestClient]:
    app = create_api_app(config=config, store=AgentStore(sessions, rules_from_config(config),
                                                         node="test"),
                         sessions=sessions, clock=lambda: T0 + dt.timedelta(seconds=9),
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS),
                         transfers=lambda: fake)
    async with TestClient(TestServer(app, host="127.0.0.1")) as running:
        yield running


async def _post(client: TestClient, user: str, path: str, body: object = None
                ) -> tuple[int, dict[str, Any]]:
    async with client.post(path, json=body, headers={
            "Authorization": f"Bearer {TOKENS[user]}"}) as response:
        return response.status, await response.json()


async def test_an_agent_may_not_transfer_another_agents_call(client: TestClient,
                                                             fake: FakeTransfers) -> None:
    status, body = await _post(client, "alice_phone", "/api/v1/calls/c-talk/transfer",
                               {"to": {"queue": "tech_support"}})
    assert status == 403 and "alice_phone" in body["error"], body
    status, _ = await _post(client, "sam", "/api/v1/calls/c-talk/transfer",
                            {"to": {"queue": "tech_support"}})
    assert status == 403
    for action in ("complete", "cancel"):
        status, _ = await _post(client, "alice_phone", f"/api/v1/calls/c-talk/transfer/{action}")
        assert status == 403
    assert fake.asked == []


async def test_the_calls_agent_supervisor_and_admin_may(client: TestClient,
                                                        fake: FakeTransfers) -> None:
    fake.calls["c-talk"] = ("sales", "alice")
    status, body = await _post(client, "alice_phone", "/api/v1/calls/c-talk/transfer",
                               {"to": {"agent": "carmen"}, "mode": "attended"})
    assert (status, body["result"]) == (200, "requeued"), body
    await _post(client, "sue", "/api/v1/calls/c-talk/transfer", {"to": {"queue": "sales"}})
    await _post(client, "admin", "/api/v1/calls/c-talk/transfer/complete")
    assert fake.asked == [
        ("start", "c-talk", TransferRequest(Target("agent", "carmen"), "attended"),
         "api:alice_phone", "alice"),
        ("start", "c-talk", TransferRequest(Target("queue", "sales"), "blind"), "api:sue", None),
        ("complete", "c-talk", None)]


@pytest.mark.parametrize(("body", "field"), [
    ({"to": {"number": "1234&PJSIP/alice"}}, "to.number"),
    ({"to": {"number": "+15551230000"}}, "to.number"),  # no outbound trunk
    ({"to": {"queue": "tech_support"}, "mode": "cold"}, "mode"),
    ({"to": {"agent": "nobody"}}, "to.agent"),
    ({"target": "sales"}, "target"),
    ([1, 2], None),
])
async def test_bad_bodies_are_422_naming_the_field(client: TestClient, fake: FakeTransfers,
                                                   body: object, field: str | None) -> None:
    status, answer = await _post(client, "sue", "/api/v1/calls/c-talk/transfer", body)
    assert status == 422, answer
    if field is not None:
        assert answer["field"] == field, answer
    assert fake.asked == []


async def test_refusals_from_the_router_are_json_errors(client: TestClient,
                                                        fake: FakeTransfers) -> None:
    status, body = await _post(client, "sue", "/api/v1/calls/c-gone/transfer",
                               {"to": {"queue": "sales"}})
    assert status == 404 and "c-gone" in body["error"]
    fake.refuse = TransferRefused(409, "agent 'bob' is not available now", "to.agent")
    status, body = await _post(client, "sue", "/api/v1/calls/c-talk/transfer",
                               {"to": {"agent": "bob"}})
    assert (status, body["field"]) == (409, "to.agent"), body
    status, body = await _post(client, "sue", "/api/v1/calls/c-talk/transfer/cancel")
    assert status == 409 and "no consultation" in body["error"]
    status, body = await _post(client, "sue", "/api/v1/calls/c-talk/transfer/complete",
                               {"now": True})
    assert (status, body["field"]) == (422, "now")


async def test_without_a_router_a_transfer_is_a_503(config: CallCenterConfig,
                                                   sessions: async_sessionmaker[AsyncSession]
                                                   ) -> None:
    app = create_api_app(config=config, store=AgentStore(sessions, rules_from_config(config),
                                                         node="test"),
                         sessions=sessions, clock=lambda: T0,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        status, body = await _post(client, "admin", "/api/v1/calls/c-talk/transfer",
                                   {"to": {"queue": "sales"}})
    assert status == 503 and "queue router" in body["error"]


def test_the_openapi_document_describes_the_transfer_routes() -> None:
    paths = document()["paths"]
    for suffix in ("", "/complete", "/cancel"):
        operation = paths[f"/api/v1/calls/{{channel}}/transfer{suffix}"]["post"]
        assert {"403", "404", "409", "422"} <= set(operation["responses"])
    body = paths["/api/v1/calls/{channel}/transfer"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("TransferBody")
