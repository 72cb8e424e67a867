"""Data dips: look a key up in the database or over HTTP.

Shared by the ``account_lookup`` FastAGI script and ``callcenter simulate``.
A lookup never raises for bad data or a dead backend: it answers ``error``
and the call takes the flow's ``error`` branch.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from callcenter.config.models import DatabaseLookup, HttpLookup, Lookup
from callcenter.storage.directory import AccountDirectory

__all__ = ["LookupResult", "perform_lookup"]

log = logging.getLogger(__name__)

LookupStatus = Literal["found", "not_found", "error"]


@dataclass(frozen=True)
class LookupResult:
    status: LookupStatus
    #: account_id, name, language, vip — only what the dialplan may use.
    fields: dict[str, str] = field(default_factory=dict)


def _clean(value: Any, limit: int = 64) -> str:
    """A value safe to put in a channel variable: printable, no separators."""
    text = str(value) if value is not None else ""
    return re.sub(r"[^\w .@+-]", "", text)[:limit]


async def perform_lookup(
    lookup: Lookup,
    key: str,
    *,
    accounts: AccountDirectory | None = None,
    http: aiohttp.ClientSession | None = None,
) -> LookupResult:
    """Run one lookup. ``key`` is already digits-only (FILTERed by the dialplan)."""
    key = re.sub(r"[^0-9]", "", key)
    if not key:
        return LookupResult("not_found")
    try:
        if isinstance(lookup, DatabaseLookup):
            return await _database(lookup, key, accounts)
        if isinstance(lookup, HttpLookup):
            return await _http(lookup, key, http)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a backend failure is a routing outcome
        log.warning("lookup failed: %s: %s", type(exc).__name__, exc)
        return LookupResult("error")
    return LookupResult("error")


async def _database(lookup: DatabaseLookup, key: str,
                    accounts: AccountDirectory | None) -> LookupResult:
    if accounts is None:
        log.warning("database lookup without a database configured")
        return LookupResult("error")
    account = await (accounts.by_number(key) if lookup.by == "account_number"
                     else accounts.by_phone(key))
    if account is None or not account.active:
        return LookupResult("not_found")
    return LookupResult("found", {
        "account_id": _clean(account.id),
        "name": _clean(account.name),
        "language": _clean(account.language or ""),
        "vip": "1" if account.vip else "0",
    })


async def _http(lookup: HttpLookup, key: str, http: aiohttp.ClientSession | None) -> LookupResult:
    url = lookup.url.replace("{value}", quote(key, safe=""))
    own = http is None
    session = http or aiohttp.ClientSession()
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=lookup.timeout)) as resp:
            if resp.status == 404:
                return LookupResult("not_found")
            if resp.status != 200:
                log.warning("HTTP lookup answered %d", resp.status)
                return LookupResult("error")
            data = await resp.json(content_type=None)
    finally:
        if own:
            await session.close()
    if not isinstance(data, dict):
        return LookupResult("error")
    return LookupResult("found", {
        "account_id": _clean(data.get("account_id") or data.get("id") or ""),
        "name": _clean(data.get("name")),
        "language": _clean(data.get("language") or ""),
        "vip": "1" if data.get("vip") in (True, 1, "1", "true") else "0",
    })
