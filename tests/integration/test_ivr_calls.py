"""Real SIP calls walk the example IVR; the real PBX and ``simulate`` must agree.

Each case is a caller (number, keys with their timing) and the outcome a
telephony engineer expects. For every case the same key sequence is placed
as a real call (sipp -> PJSIP -> generated dialplan -> FastAGI) and run
through ``simulate``; the test asserts that both reach the expected outcome
through the same flows and menus.

Calls of one clock setting run concurrently (one sipp each, distinct caller
IDs) to keep the suite fast; the session fixture checks afterwards that no
channel is left in Asterisk.

Key timing: ``"1@2500"`` presses 1 2.5 s after the previous key (or the
ACK). ``"t"`` is a timeout for the simulator and nothing for sipp: the next
key's delay covers the wait. Prompt lengths (GSM, en): greeting
hello-world 1.4 s; menus ~3.3-5 s; ``invalid`` 4.1 s (not interruptible).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import pytest

from callcenter.flows.lookup import perform_lookup
from callcenter.flows.simulate import Simulation, simulate
from callcenter.storage.directory import AccountDirectory
from callcenter.testing.sipp import Caller, Keypress, run_call
from tests.conftest import OPEN_TIME, PBX
from tests.integration.route import ObservedCall, RouteObserver

pytestmark = pytest.mark.integration

SUNDAY = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
CHRISTMAS = dt.datetime(2026, 12, 25, 15, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Case:
    name: str
    tokens: str
    expected: str
    route: tuple[str, ...] | None = None
    caller_id: str = ""
    at: dt.datetime = OPEN_TIME
    hold_ms: int = 4000

    def sim_keys(self) -> list[str]:
        out: list[str] = []
        for token in self.tokens.split():
            key = token.split("@")[0]
            out.extend("t" if key == "t" else list(key))
        return out

    def sipp_keys(self) -> tuple[Keypress, ...]:
        keys = []
        for token in self.tokens.split():
            if token == "t":
                continue
            key, _, delay = token.partition("@")
            keys.append(Keypress(key, int(delay)))
        return tuple(keys)


_ACCOUNT_OK = "1@500 0@400 0@400 2@400 0@400 0@400 #@400"
_ACCOUNT_UNKNOWN = "9@500 9@400 9@400 9@400 9@400 9@400 #@400"

CASES = [
    Case("sales", "1@2500 2@1200", "queue sales skills=sales priority=5 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main")),
    Case("spanish_tech_internet", "2@2500 3@1200 1@1200",
         "queue tech_support skills=internet priority=0 language=es",
         ("flow:inbound", "menu:language", "flow:spanish", "menu:main", "menu:tech_support")),
    Case("tech_back_to_main", "1@2500 3@1200 *@1200 2@1200",
         "queue sales skills=sales priority=5 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main", "menu:tech_support",
          "menu:main")),
    Case("account_found", f"1@2500 1@1200 {_ACCOUNT_OK}",
         "queue customer_service skills=billing priority=0 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main",
          "flow:customer_service")),
    Case("account_not_found", f"1@2500 1@1200 {_ACCOUNT_UNKNOWN}",
         "queue customer_service skills=billing priority=0 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main",
          "flow:customer_service", "flow:unknown_account"), hold_ms=9000),
    Case("invalid_then_valid", "1@2500 7@1200 2@5500",
         "queue sales skills=sales priority=5 language=en"),
    Case("exhausted_invalid", "1@2500 7@1200 8@5500 9@5500", "voicemail general",
         ("flow:inbound", "menu:language", "flow:english", "menu:main"), hold_ms=8000),
    Case("language_timeout", "t 2@11000", "queue sales skills=sales priority=5 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main")),
    Case("vip_priority", "1@2500 2@1200", "queue sales skills=sales priority=15 language=en",
         caller_id="+15551230001"),
    Case("blocked_caller", "", "hangup 21", (), caller_id="+15550000666"),
    Case("operator", "1@2500 0@1200", "extension 1000"),
]

AFTER_HOURS = [
    Case("after_hours_sunday", "", "voicemail general", ("flow:inbound", "flow:after_hours"),
         at=SUNDAY, hold_ms=9000),
    Case("holiday", "", "voicemail general", ("flow:inbound", "flow:after_hours"),
         at=CHRISTMAS, hold_ms=9000),
]


@dataclass
class Result:
    observed: ObservedCall
    simulated: Simulation
    sipp_rc: int
    sipp_err: str
    sip_messages: list[str]

    def invite_final_response(self) -> str:
        """Status line of the first final response to the INVITE (200, 403...)."""
        for message in self.sip_messages:
            for line in message.splitlines():
                line = line.strip()
                if line.startswith("SIP/2.0 ") and not line.startswith("SIP/2.0 1"):
                    return line
        return ""


async def _place_all(pbx: PBX, observer: RouteObserver, cases: list[Case], base: int) -> dict:
    accounts = AccountDirectory(pbx.db_url)
    config = pbx.loaded.config

    async def lookup(name: str, key: str):
        return await perform_lookup(config.lookups[name], key, accounts=accounts)

    async def one(i: int, case: Case) -> tuple[str, Result]:
        caller_id = case.caller_id or f"1555900{base + i:04d}"
        sip, media = pbx.sipp_ports()
        sim = await simulate(config, "main_line", keys=case.sim_keys(), caller_id=caller_id,
                             now=case.at, lookup=lookup)
        res = await run_call(
            Caller("5551000", caller_id=caller_id, keys=case.sipp_keys(), hold_ms=case.hold_ms),
            sip_port=pbx.sip_port, local_port=sip, media_port=media, timeout=90)
        observed = await observer.wait_outcome(caller_id, timeout=5)
        return case.name, Result(observed, sim, res.returncode, res.stderr[-2000:],
                                 res.messages)

    try:
        pairs = await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
    finally:
        await accounts.close()
    return dict(pairs)


@pytest.fixture(scope="session")
async def ivr_results(pbx: PBX, ami_observer: RouteObserver) -> dict[str, Result]:
    results: dict[str, Result] = {}
    await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
    results.update(await _place_all(pbx, ami_observer, CASES, 0))
    for i, case in enumerate(AFTER_HOURS):
        await asyncio.to_thread(pbx.set_clock, case.at)
        results.update(await _place_all(pbx, ami_observer, [case], 100 + i))
    await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
    left = await pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left in Asterisk after the IVR calls"
    return results


@pytest.mark.parametrize("case", CASES + AFTER_HOURS, ids=lambda c: c.name)
async def test_real_call_matches_simulation(case: Case, ivr_results: dict[str, Result]) -> None:
    r = ivr_results[case.name]
    detail = "\nreal steps:\n  " + "\n  ".join(r.observed.apps()) + f"\nsipp: {r.sipp_err}"
    assert r.observed.outcome == case.expected, detail
    assert str(r.simulated.outcome) == case.expected, r.simulated.events
    assert r.observed.route == r.simulated.route, detail
    if case.route is not None:
        assert tuple(r.observed.route) == case.route, detail


async def test_blocked_caller_is_rejected_before_answer(ivr_results: dict[str, Result]) -> None:
    """Blocked numbers get 403 Forbidden: the call is never connected (nor billed)."""
    r = ivr_results["blocked_caller"]
    assert r.invite_final_response().startswith("SIP/2.0 403"), r.sip_messages[:3]
    assert "Answer" not in " ".join(r.observed.apps())


async def test_callers_are_answered_once_admitted(ivr_results: dict[str, Result]) -> None:
    assert ivr_results["sales"].invite_final_response().startswith("SIP/2.0 200")
