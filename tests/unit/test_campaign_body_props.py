"""Properties of the bodies today's campaign routes parse: a campaign's start, pause or
stop (``{"reason": ...}``) and a disposition (``disposition``, ``callback_at``, ``note``),
whatever JSON object comes (hostile keys and values: huge, unicode, control characters,
wrong types): either the checked values, or a :class:`BadBody` naming a field; through
the API, a documented 4xx naming it, never a 500; and a disposition's hand-off sets on
the channel only what the configuration and the database say, never the request's text."""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.dialer.handoff import HandoffPlan
from callcenter.storage.campaigns import CampaignRepository, NewContact
from callcenter.storage.models import NOTE_MAX, CampaignStateChange
from callcenter.web.campaign_state import REASON_MAX, parse_state_body
from callcenter.web.campaigns import parse_disposition
from callcenter.web.views import BadBody, field_label
from tests.web_api import TOKENS, Api, config_with_pause_reason, running_api

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
PROPS = settings(max_examples=200, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])

_hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "a\nb", "\u202e", "../../etc/passwd", "${SHELL}",
                     "sale,1)", "x" * (REASON_MAX + 1), " " * 300 + "x", "\u00e9t\u00e9",
                     "sale\r\nHangup()", "warm_transfer_sales\x00"]),
    st.integers(1, 5000).map(lambda n: "y" * n))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _hostile_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3), max_leaves=8)
_keys = st.one_of(st.sampled_from(["reason", "disposition", "note", "callback_at",
                                   "Reason", "", " ", "\x07", "reason "]), st.text(max_size=8))
_bodies = st.dictionaries(_keys, _json, max_size=4)


def _bad(exc: BadBody, body: dict[str, Any], fields: set[str]) -> None:
    """The error names a known field, or the body's unknown key (JSON-spelt when blank or
    not printable)."""
    assert isinstance(exc.field, str) and exc.field.strip() and exc.field.isprintable()
    named = {field_label(key) for key in body} | fields
    assert exc.field in named, (exc.field, body)


@PROPS
@given(body=st.one_of(_bodies, st.fixed_dictionaries({"reason": _json})))
def test_a_state_body_is_a_short_printable_reason_or_names_its_bad_field(
        body: dict[str, Any]) -> None:
    try:
        reason = parse_state_body(body)
    except BadBody as exc:
        _bad(exc, body, {"reason"})
        return
    assert set(body) <= {"reason"}
    if reason is not None:
        assert reason == reason.strip() and 0 < len(reason) <= REASON_MAX
        assert reason.isprintable()


@PROPS
@given(body=st.one_of(_bodies, st.fixed_dictionaries(
    {"disposition": _json}, optional={"note": _json, "callback_at": _json})))
@example(body={'"': None}).via("a key that is a quote, named as itself")
def test_a_disposition_body_is_checked_or_names_its_bad_field(body: dict[str, Any]) -> None:
    try:
        disposition, when, note = parse_disposition(body)
    except BadBody as exc:
        _bad(exc, body, {"disposition", "note", "callback_at"})
        return
    assert set(body) <= {"disposition", "note", "callback_at"}
    assert isinstance(disposition, str) and 0 < len(disposition) <= 48
    assert when is None or when.tzinfo is not None
    assert note is None or (isinstance(note, str) and len(note) <= NOTE_MAX)


# -- through the API ----------------------------------------------------------------------

class _Recording:
    """The PBX side of a hand-off: records each plan, takes none (the call stays live)."""

    def __init__(self) -> None:
        self.plans: list[HandoffPlan] = []

    async def hand_off(self, plan: HandoffPlan) -> None:
        from callcenter.dialer.handoff import HandoffRefused

        self.plans.append(plan)
        raise HandoffRefused(409, "attempt", "recorded only")


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[Api, Any]]:
    async with sessions.begin() as session:
        await CampaignRepository(session).import_contacts(
            "renewals", [NewContact("+12125550100", "America/New_York")])
    async with sessions.begin() as session:
        repo = CampaignRepository(session)
        (due,) = await repo.claim_due("renewals", NOW, 1)
        attempt = await repo.start_attempt(due.id, at=NOW, channel_id="cc-dial-0100")
        await repo.mark_answered(attempt, at=NOW, agent="alice")
    side = _Recording()
    async with running_api(config_with_pause_reason(), sessions,
                           handoff=lambda: side) as running:
        yield running, side


_raw = st.one_of(_bodies.map(lambda b: json.dumps(b).encode()),
                 st.binary(max_size=60),
                 st.integers(17_000, 30_000).map(lambda n: b'{"reason": "' + b"r" * n + b'"}'))


@PROPS
@given(action=st.sampled_from(["start", "pause", "stop"]), raw=_raw)
async def test_any_state_body_gets_a_documented_answer_and_stores_only_a_clean_reason(
        api: tuple[Api, Any], sessions: async_sessionmaker[AsyncSession], action: str,
        raw: bytes) -> None:
    client = api[0].client
    async with client.post(f"/api/v1/campaigns/renewals/{action}", data=raw,
                           headers={"Authorization": f"Bearer {TOKENS['sue']}"}) as response:
        answer = await response.json()
    assert response.status in (200, 413, 422), answer
    if response.status == 422:
        assert isinstance(answer["field"], str) and answer["field"], answer
    async with sessions() as session:
        reasons = list(await session.scalars(select(CampaignStateChange.reason)))
    assert all(r is None or (r.isprintable() and 0 < len(r) <= REASON_MAX) for r in reasons)


_dispositions = st.one_of(st.sampled_from(["sale", "warm_transfer_sales", "do_not_call"]),
                          _hostile_text, st.text(string.printable, max_size=48))


@PROPS
@given(disposition=_dispositions, note=st.one_of(st.none(), _hostile_text))
async def test_a_hand_off_sets_only_configured_names_and_stored_ids_on_the_channel(
        api: tuple[Api, Any], disposition: str, note: str | None) -> None:
    running, side = api
    body: dict[str, Any] = {"disposition": disposition}
    if note is not None:
        body["note"] = note
    async with running.client.post("/api/v1/campaigns/attempts/1/disposition", json=body,
                                   headers=running.headers()) as response:
        answer = await response.json()
    assert response.status in (200, 409, 422), answer
    config = config_with_pause_reason()
    keys = set(config.campaigns["renewals"].dispositions)
    for plan in side.plans:
        variables = plan.variables()
        assert variables["CC_HANDOFF"] in keys and plan.queue in config.queues
        assert variables["CALLERID(num)"] == "+12125550100"
        assert note is None or note not in variables.values() or note in keys
    if disposition not in keys:  # never reaches the PBX
        assert response.status == 422 and answer["field"] in ("disposition", "note"), answer
