"""Data dips over HTTP and the database: every backend failure is a branch, not a crash."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from callcenter.config.models import DatabaseLookup, HttpLookup
from callcenter.flows.lookup import perform_lookup
from callcenter.storage import make_engine, make_sessionmaker
from callcenter.storage.directory import AccountDirectory
from callcenter.storage.migrate import upgrade
from callcenter.storage.repositories import seed_demo_accounts


@pytest.fixture
async def crm() -> tuple[str, list[str]]:
    """A small CRM on 127.0.0.1: /accounts/<n> -> JSON, 404, 500, garbage or slow."""
    seen: list[str] = []

    async def account(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        seen.append(key)
        if key == "100200":
            return web.json_response({"account_id": 7, "name": "Ada, \"Countess\"; x",
                                      "language": "en", "vip": True})
        if key == "500":
            return web.Response(status=500)
        if key == "777":
            return web.Response(text="not json", content_type="application/json")
        if key == "888":
            await asyncio.sleep(3)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/accounts/{key}", account)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/accounts/{{value}}", seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("key", "status"), [
    ("100200", "found"), ("999", "not_found"), ("500", "error"), ("777", "error"),
    ("888", "error"), ("", "not_found"),
])
async def test_http_lookup_outcomes(crm, key: str, status: str) -> None:
    url, _ = crm
    lookup = HttpLookup(source="http", url=url, timeout=0.5)
    async with aiohttp.ClientSession() as http:
        result = await perform_lookup(lookup, key, http=http)
    assert result.status == status


async def test_http_lookup_cleans_fields_and_key(crm) -> None:
    url, seen = crm
    lookup = HttpLookup(source="http", url=url, timeout=1)
    result = await perform_lookup(lookup, "10/../0200", http=None)
    assert seen[-1] == "100200"  # only digits reach the backend
    assert result.status == "found"
    assert result.fields == {"account_id": "7", "name": "Ada Countess x", "language": "en",
                             "vip": "1"}


async def test_http_lookup_unreachable_is_error() -> None:
    lookup = HttpLookup(source="http", url="http://127.0.0.1:9/x/{value}", timeout=0.5)
    assert (await perform_lookup(lookup, "1")).status == "error"


async def test_database_lookup_by_number_and_phone(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await seed_demo_accounts(session)
    finally:
        await engine.dispose()
    by_number = DatabaseLookup(source="database", by="account_number")
    by_phone = DatabaseLookup(source="database", by="phone")
    accounts = AccountDirectory(url)
    try:
        found = await perform_lookup(by_number, "100200", accounts=accounts)
        assert found.status == "found"
        assert found.fields == {"account_id": found.fields["account_id"], "name": "Ada Lovelace",
                                "language": "en", "vip": "1"}
        assert (await perform_lookup(by_number, "100400", accounts=accounts)).status \
            == "not_found"  # suspended
        assert (await perform_lookup(by_number, "555", accounts=accounts)).status == "not_found"
        assert (await perform_lookup(by_phone, "15551230002", accounts=accounts)).status == "found"
        assert (await perform_lookup(by_phone, "", accounts=accounts)).status == "not_found"
    finally:
        await accounts.close()
    assert (await perform_lookup(by_number, "100200", accounts=None)).status == "error"


async def test_database_lookup_with_a_broken_database_is_error(tmp_path) -> None:
    accounts = AccountDirectory(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        by_number = DatabaseLookup(source="database", by="account_number")
        assert (await perform_lookup(by_number, "100200", accounts=accounts)).status == "error"
    finally:
        await accounts.close()
