"""Real SIP calls walk the example IVR; the real PBX and ``simulate`` must agree.

Each case is a caller (number, keys with their timing) and the outcome a
telephony engineer expects. For every case the same key sequence is placed
as a real call (sipp -> PJSIP -> generated dialplan -> FastAGI) and run
through ``simulate``; the test asserts that both take the same flows and menus
to the expected destination, and that the destination really took the call:
the queue router (played by the test over ARI) received the call with these
Stasis args, the voicemail box holds the caller's message, the agent's phone
(baresip registered as agent ``carmen`` on her generated endpoint) answered, or the caller's channel was
hung up with this cause.

Calls of one clock setting run concurrently (one sipp each, distinct caller
IDs) to keep the suite fast; the session fixture checks afterwards that no
channel is left in Asterisk.

Key timing: ``"1@2500"`` presses 1 2.5 s after the previous key (or the
ACK). ``"t"`` is a timeout for the simulator and nothing for sipp: the next
key's delay covers the wait. Prompt lengths (GSM, en): greeting
hello-world 1.4 s; menus ~3.3-5 s; ``invalid`` 4.1 s (not interruptible).
``after`` keys are pressed once the IVR is done, for the destination only
(``#`` skips the voicemail greeting to the beep, so a message is recorded).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import pytest

from callcenter.asterisk.ari import StasisStart
from callcenter.flows.lookup import perform_lookup
from callcenter.flows.simulate import Simulation, simulate
from callcenter.storage.directory import AccountDirectory
from callcenter.testing.sipp import Caller, Keypress, SippResult, run_call
from callcenter.testing.softphone import SoftphoneCall
from tests.conftest import OPEN_TIME, PBX
from tests.integration.queue_router import QueueRouterStub, queue_outcome
from tests.integration.route import ObservedCall, RouteObserver, voicemail_left

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
    #: The agent whose phone answers (the test starts it before the call).
    agent: str | None = None
    #: Keys for the destination, after ``tokens`` (sipp only: ``simulate`` stops earlier).
    after: str = ""

    @property
    def real(self) -> str:
        """What really happens: ``expected`` in the same words, but an extension is
        the endpoint that answered it."""
        return f"answered by PJSIP/{self.agent}" if self.agent else self.expected

    def sim_keys(self) -> list[str]:
        out: list[str] = []
        for token in self.tokens.split():
            key = token.split("@")[0]
            out.extend("t" if key == "t" else list(key))
        return out

    def sipp_keys(self) -> tuple[Keypress, ...]:
        keys = []
        for token in (self.tokens + " " + self.after).split():
            if token == "t":
                continue
            key, _, delay = token.partition("@")
            keys.append(Keypress(key, int(delay)))
        return tuple(keys)


# '#' 2.5 s into the box's greeting ("the person at extension 8 0 0 0 is
# unavailable", ~6.5 s) skips it to the beep: after the last menu key and vm-goodbye,
# or after the ACK, hello-world and vm-sorry (after hours).
_SKIP_GREETING = "#@3500"
_SKIP_GREETING_AFTER_HOURS = f"#@{1400 + 3100 + 2500}"
#: After the beep, record this long (silence), then hang up: the message is kept.
_MESSAGE_MS = 2500

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
         ("flow:inbound", "menu:language", "flow:english", "menu:main"), after=_SKIP_GREETING,
         hold_ms=_MESSAGE_MS),
    Case("language_timeout", "t 2@11000", "queue sales skills=sales priority=5 language=en",
         ("flow:inbound", "menu:language", "flow:english", "menu:main")),
    Case("vip_priority", "1@2500 2@1200", "queue sales skills=sales priority=15 language=en",
         caller_id="+15551230001"),
    Case("blocked_caller", "", "hangup 21", (), caller_id="+15550000666"),
    Case("operator", "1@2500 0@1200", "extension 1000", agent="carmen"),
]

AFTER_HOURS = [
    Case("after_hours_sunday", "", "voicemail general", ("flow:inbound", "flow:after_hours"),
         at=SUNDAY, after=_SKIP_GREETING_AFTER_HOURS, hold_ms=_MESSAGE_MS),
    Case("holiday", "", "voicemail general", ("flow:inbound", "flow:after_hours"),
         at=CHRISTMAS, after=_SKIP_GREETING_AFTER_HOURS, hold_ms=_MESSAGE_MS),
]


@dataclass
class Result:
    caller_id: str
    observed: ObservedCall
    simulated: Simulation
    sipp: SippResult
    #: What the queue router received, if the call reached it.
    stasis: StasisStart | None
    #: Voicemail names (``general``) the caller left a message in.
    voicemail: list[str]
    #: The agent phone's side of the call, for the cases where one answers.
    agent: SoftphoneCall | None

    def invite_final_response(self) -> str:
        """Status line of the first final response to the INVITE (200, 403...)."""
        for message in self.sipp.messages:
            for line in message.splitlines():
                line = line.strip()
                if line.startswith("SIP/2.0 ") and not line.startswith("SIP/2.0 1"):
                    return line
        return ""

    def real_outcome(self) -> str:
        """Where the call really ended, from what the far end saw, in ``simulate``'s words."""
        if self.stasis is not None:
            return queue_outcome(self.stasis)
        if self.voicemail:
            return "voicemail " + ",".join(self.voicemail)
        if self.observed.answered_by:
            return f"answered by {self.observed.answered_by}"
        return f"hangup {self.observed.hangup_cause}"

    def detail(self) -> str:
        agent = (f"\nagent phone: {self.agent.flow()} {self.agent.stderr[-500:]}"
                 if self.agent else "")
        return ("\nreal steps:\n  " + "\n  ".join(self.observed.apps())
                + f"\ndials: {self.observed.dials}\nhangup: {self.observed.hangup}"
                + f"\nsipp: {self.sipp.stderr[-2000:]}{agent}")


async def _place_all(pbx: PBX, observer: RouteObserver, router: QueueRouterStub,
                     cases: list[Case], base: int) -> dict[str, Result]:
    accounts = AccountDirectory(pbx.db_url)
    config = pbx.loaded.config
    boxes = {f"{vm.mailbox}@callcenter": name for name, vm in config.voicemail.items()}
    spool = pbx.instance.dir / "spool"

    async def lookup(name: str, key: str):
        return await perform_lookup(config.lookups[name], key, accounts=accounts)

    async def place(case: Case, caller_id: str) -> tuple[SippResult, SoftphoneCall | None]:
        sip, media = pbx.sipp_ports()
        caller = Caller("5551000", caller_id=caller_id, keys=case.sipp_keys(),
                        hold_ms=case.hold_ms)
        if case.agent is None:
            return await run_call(caller, sip_port=pbx.sip_port, local_port=sip,
                                  media_port=media, timeout=90), None
        async with pbx.agent_phone(case.agent) as phone:
            res = await run_call(caller, sip_port=pbx.sip_port, local_port=sip,
                                 media_port=media, timeout=90)
            return res, await phone.call()

    async def one(i: int, case: Case) -> tuple[str, Result]:
        caller_id = case.caller_id or f"1555900{base + i:04d}"
        sim = await simulate(config, "main_line", keys=case.sim_keys(), caller_id=caller_id,
                             now=case.at, lookup=lookup)
        observer.expect(caller_id)
        res, agent = await place(case, caller_id)
        observed = await observer.wait_ended(caller_id, timeout=10)
        # The Hangup event follows app_voicemail's writing of the message.
        left = voicemail_left(spool).get(caller_id, [])
        return case.name, Result(caller_id, observed, sim, res, router.starts.get(caller_id),
                                 [boxes.get(b, b) for b in left], agent)

    try:
        async with asyncio.TaskGroup() as calls:
            tasks = [calls.create_task(one(i, c)) for i, c in enumerate(cases)]
    finally:
        await accounts.close()
    return dict(t.result() for t in tasks)


@pytest.fixture(scope="session")
async def ivr_results(pbx: PBX, ami_observer: RouteObserver) -> dict[str, Result]:
    results: dict[str, Result] = {}
    async with pbx.queue_router() as router:
        await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
        results.update(await _place_all(pbx, ami_observer, router, CASES, 0))
        for i, case in enumerate(AFTER_HOURS):
            await asyncio.to_thread(pbx.set_clock, case.at)
            results.update(await _place_all(pbx, ami_observer, router, [case], 100 + i))
    await asyncio.to_thread(pbx.set_clock, OPEN_TIME)
    left = await pbx.wait_no_channels()
    assert left == 0, f"{left} channel(s) left in Asterisk after the IVR calls"
    return results


@pytest.mark.parametrize("case", CASES + AFTER_HOURS, ids=lambda c: c.name)
async def test_real_call_matches_simulation(case: Case, ivr_results: dict[str, Result]) -> None:
    r = ivr_results[case.name]
    assert r.real_outcome() == case.real, r.detail()
    assert r.observed.dialplan_destination == case.expected, r.detail()
    assert str(r.simulated.outcome) == case.expected, r.simulated.events
    assert r.observed.route == r.simulated.route, r.detail()
    if case.route is not None:
        assert tuple(r.observed.route) == case.route, r.detail()


async def test_blocked_caller_is_rejected_before_answer(ivr_results: dict[str, Result]) -> None:
    """Blocked numbers get 403 Forbidden: the call is never connected (nor billed)."""
    r = ivr_results["blocked_caller"]
    assert r.invite_final_response().startswith("SIP/2.0 403"), r.sipp.messages[:3]
    assert r.observed.hangup_cause == 21, r.detail()  # call rejected
    assert "Answer" not in " ".join(r.observed.apps())


async def test_callers_are_answered_once_admitted(ivr_results: dict[str, Result]) -> None:
    assert ivr_results["sales"].invite_final_response().startswith("SIP/2.0 200")


async def test_operator_key_rings_carmen_who_answers(ivr_results: dict[str, Result]) -> None:
    """Key 0 reaches a person: carmen's softphone, registered with her generated
    password, gets the INVITE from this caller, answers, and stays connected until
    the caller hangs up (the BYE reaches her phone)."""
    r = ivr_results["operator"]
    assert r.agent is not None
    assert r.invite_final_response().startswith("SIP/2.0 200"), r.detail()
    assert r.agent.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], r.detail()
    assert r.agent.peer_uri.startswith(f"sip:{r.caller_id}@"), r.detail()
    # baresip's words for a BYE from the far end.
    assert r.agent.close_reason == "Connection reset by peer", r.detail()
    assert r.observed.answered_by == "PJSIP/carmen", r.detail()
    assert not r.sipp.remote_hangup  # the caller hung up, not Asterisk
    assert r.observed.hangup_cause == 16, r.detail()


async def test_data_dip_result_reaches_the_queue_router(pbx: PBX,
                                                        ivr_results: dict[str, Result]) -> None:
    """The account the dip found rides along to the router; an unknown one does not."""
    accounts = AccountDirectory(pbx.db_url)
    try:
        found = await perform_lookup(pbx.loaded.config.lookups["account"], "100200",
                                     accounts=accounts)
    finally:
        await accounts.close()
    assert found.status == "found", found
    for case, account in (("account_found", found.fields["account_id"]),
                          ("account_not_found", "")):
        start = ivr_results[case].stasis
        assert start is not None, ivr_results[case].detail()
        assert dict(a.split("=", 1) for a in start.args[1:])["account"] == account, start.args
