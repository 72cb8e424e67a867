"""The IVR benchmark's pure parts: its arithmetic, its func_odbc twin, its dialplan twins.

The benchmark itself needs minutes of load; these checks keep its figures honest
between runs (a ramp's capacity, ratios paired per repeat) and fail when the product's
generated dialplan or modules.conf drifts from what the bench edits.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import agi_scripts
from bench import curl_twin, ivr, odbc_twin
from bench.measure import (
    Spread,
    StepResult,
    cpu_per_call,
    highest_clean,
    paired_ratios,
    percentile,
)
from bench.queue_measure import QueueStep
from bench.queue_measure import highest_clean as queue_highest_clean
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.config.loader import load_config
from dialplan.generator import render
from tests.passwords import fake_passwords


def step(rate: int, *, p99: float = 4.0, failed: int = 0, ivr_name: str = "fastagi",
         ok: int = 100, cpu: float = 0.5) -> StepResult:
    return StepResult(ivr_name, rate, 0, ok + failed, ok, failed, (0.0,) * 98 + (p99,) * 2,
                      (1000.0,), 0, 1.0, cpu, 0.0)


def test_a_step_is_clean_only_with_p99_under_10_ms_and_no_failure() -> None:
    assert step(100, p99=8.0).clean
    assert not step(100, p99=12.0).clean
    assert not step(100, failed=1).clean
    assert percentile([1, 2, 3, 4], 50) == 2
    assert math.isnan(percentile([], 99))


def test_capacity_is_the_last_clean_rate_before_the_first_unclean_step() -> None:
    ramp = [step(300, p99=12.0), step(100), step(200), step(350)]  # 350 clean by luck
    assert highest_clean(ramp) == 200
    assert highest_clean([step(100, failed=3), step(200)]) == 0
    assert highest_clean([]) == 0


def test_ratios_pair_repeats_and_skip_a_zero_capacity() -> None:
    assert paired_ratios({0: 300, 1: 250, 2: 300}, {0: 300, 1: 0, 3: 100}) == [1.0]
    s = Spread.of([0.8, 1.0, math.nan, 0.9])
    assert (s.median, s.low, s.high, s.n) == (0.9, 0.8, 1.0, 3)
    assert s.format(2) == "0.90 (0.80-1.00, n=3)"
    assert Spread.of([]).format() == "-"


def test_cpu_per_call_is_total_cpu_over_total_calls_at_the_chosen_rates() -> None:
    steps = [step(100, ok=100, cpu=0.4), step(200, ok=300, cpu=0.8),
             step(300, ok=900, cpu=9.0), step(100, ivr_name="odbc", cpu=5.0)]
    assert cpu_per_call(steps, "fastagi", {100, 200}) == pytest.approx(3.0)
    assert math.isnan(cpu_per_call(steps, "fastagi", set()))


def test_the_odbc_twin_escapes_the_key_and_sets_the_variables_account_lookup_sets() -> None:
    conf = odbc_twin.func_odbc_conf()
    assert "account_number = '${SQL_ESC(${ARG1})}'" in conf
    assert "status = 'active'" in conf
    lines = odbc_twin.dip_lines(ivr.DIP_KEY)
    assert lines.startswith(" same => n,Set(ARRAY(CC_ACCOUNT_ID,CC_ACCOUNT_NAME,"
                            "CC_ACCOUNT_LANGUAGE,CC_ACCOUNT_VIP)=${ODBC_CC_ACCOUNT("
                            "${FILTER(0-9,${CALLERID(num)})})})\n")
    assert "CC_LOOKUP_STATUS=${IF($[0${ODBCROWS} > 0]?found:not_found)}" in lines
    with pytest.raises(odbc_twin.OdbcTwinError, match="apt-get install -y libsqliteodbc"):
        odbc_twin.find_driver((Path("/nonexistent/libsqlite3odbc.so"),))


def test_the_odbc_modules_are_allowed_in_the_products_modules_conf(tmp_path: Path) -> None:
    instance = AsteriskInstance(tmp_path / "home")
    instance.setup(AsteriskInstallation("22-test", tmp_path / "tree"), InstanceSettings())
    product = (instance.etc / "modules.conf").read_text()
    edited = odbc_twin.allow_modules(product)
    assert product.splitlines()[:2] == edited.splitlines()[:2] == ["[modules]", "autoload=yes"]
    removed = set(product.splitlines()) - set(edited.splitlines())
    assert removed == {"noload => res_odbc.so", "noload => res_odbc_transaction.so",
                       "noload => func_odbc.so"}
    assert "noload => res_config_odbc.so" in edited
    with pytest.raises(odbc_twin.OdbcTwinError, match="noload => res_odbc.so"):
        odbc_twin.allow_modules(edited)


def _flow(text: str, name: str) -> list[str]:
    start = text.index(f"\n[cc-flow-bench_{name}]\n") + 1
    end = text.find("\n[", start)
    body = text[start:end].replace(f"bench_{name}", "bench_X")
    return [line for line in body.splitlines() if not line.startswith(";")]


def test_the_twins_differ_from_the_fastagi_flow_only_in_the_dip(tmp_path: Path) -> None:
    config_dir = ivr.bench_config(tmp_path / "config", 4999)
    loaded = load_config(config_dir, agi_scripts=agi_scripts.handlers().keys())
    files = ivr.twin_dialplan(render(loaded.config, loaded.where,
                                     agent_passwords=fake_passwords(loaded.config)), "agi://127.0.0.1:4999",
                              Path("/opt/cc-agi"))
    text = files["extensions_callcenter.conf"]
    fastagi = _flow(text, "fastagi")
    dip = [i for i, line in enumerate(fastagi) if "AGI(" in line]
    assert len(dip) == 1
    i = dip[0]
    assert fastagi[i] == (" same => n,AGI(agi://127.0.0.1:4999/account_lookup,account,"
                          "${FILTER(0-9,${CALLERID(num)})})")
    for name, replacement in [
        ("native", [" same => n,Set(CC_LOOKUP_STATUS=found)"]),
        ("odbc", odbc_twin.dip_lines(ivr.DIP_KEY).splitlines()),
        ("classic", [" same => n,AGI(/opt/cc-agi,account_lookup,account,"
                     "${FILTER(0-9,${CALLERID(num)})})"]),
    ]:
        twin = _flow(text, name)
        assert twin == fastagi[:i] + replacement + fastagi[i + 1:], name
    for name, number in ivr.NUMBERS.items():
        assert f"exten => {number},1,Goto(cc-entrypoint-bench_{name},s,1)\n" in text


def test_the_curl_twin_sets_the_variables_account_lookup_sets_from_the_json() -> None:
    lines = curl_twin.dip_lines("http://127.0.0.1:8080", "${FILTER(0-9,${CALLERID(num)})}")
    assert lines.splitlines() == [
        " same => n,Set(CC_BENCH_ACCOUNT_JSON=${CURL(http://127.0.0.1:8080/accounts/"
        "${FILTER(0-9,${CALLERID(num)})})})",
        " same => n,Set(CC_ACCOUNT_ID=${JSON_DECODE(CC_BENCH_ACCOUNT_JSON,account_id)})",
        " same => n,Set(CC_ACCOUNT_NAME=${JSON_DECODE(CC_BENCH_ACCOUNT_JSON,name)})",
        " same => n,Set(CC_ACCOUNT_LANGUAGE=${JSON_DECODE(CC_BENCH_ACCOUNT_JSON,language)})",
        ' same => n,Set(CC_ACCOUNT_VIP=${IF($["${JSON_DECODE(CC_BENCH_ACCOUNT_JSON,vip)}"'
        ' = "true"]?1:0)})',
        ' same => n,Set(CC_LOOKUP_STATUS=${IF($["${CC_ACCOUNT_ID}" = ""]?not_found:found)})',
    ]


async def test_the_account_service_answers_what_the_http_lookup_reads(tmp_path: Path) -> None:
    import sqlite3

    from aiohttp.test_utils import TestClient, TestServer

    from bench.account_http import account_app
    from callcenter.config.models import HttpLookup
    from callcenter.flows.lookup import perform_lookup

    db = tmp_path / "accounts.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER, account_number TEXT, name TEXT,"
                     " language TEXT, vip BOOLEAN, status TEXT)")
        conn.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)",
                         [(1, "100200", "Ada Lovelace", "en", 1, "active"),
                          (2, "100300", "Gone", None, 0, "suspended")])
    async with TestClient(TestServer(account_app(db))) as client:
        lookup = HttpLookup(source="http", url=f"{client.make_url('/accounts/')}{{value}}")
        found = await perform_lookup(lookup, "100200", http=client.session)
        assert (found.status, found.fields) == ("found", {
            "account_id": "1", "name": "Ada Lovelace", "language": "en", "vip": "1"})
        assert (await perform_lookup(lookup, "100300", http=client.session)).status == "not_found"
        assert (await client.get("/accounts/1' OR '1'='1")).status == 404


async def test_the_agi_floor_sends_the_one_command_account_lookup_sends_and_closes() -> None:
    import asyncio

    from bench.agi_floor import _serve_one

    server = await asyncio.start_server(_serve_one, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\nagi_network_script: account_lookup\n\n")
        command = await asyncio.wait_for(reader.readline(), 5)
        writer.write(b"200 result=0\n")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed: dialplan goes on
        writer.close()
    assert command.startswith(b'EXEC MSet "CC_ACCOUNT_ID=1,') and command.endswith(
        b'CC_LOOKUP_STATUS=found"\n')


def test_a_goal_is_met_or_missed_only_over_every_repeat() -> None:
    from bench.measure import verdict

    assert verdict(Spread.of([1.0, 1.1, 1.2]), 1.0, at_least=True) == "met"
    assert verdict(Spread.of([0.6, 0.9]), 1.0, at_least=True) == "NOT met"
    assert verdict(Spread.of([0.0, 1.0, 2.0]), 1.0, at_least=True).startswith("undecided")
    assert verdict(Spread.of([3.2, 3.8]), 1.0, at_least=False) == "NOT met"
    assert verdict(Spread.of([]), 1.0, at_least=False) == "no figure"


def test_only_an_unclean_step_on_a_busy_machine_is_run_again() -> None:
    from dataclasses import replace

    from bench.measure import spoiled

    busy = 0.5 * 1.0  # cores x wall (1 s)
    assert spoiled(replace(step(300, p99=12.0), other_cpu_s=busy))
    assert not spoiled(replace(step(300, p99=12.0), other_cpu_s=0.1))  # our own limit
    assert not spoiled(replace(step(300), other_cpu_s=busy))  # clean anyway


# -- bench/queue.py: the queue router against app_queue ------------------------------

def _newexten(uid: str, app: str, ts: float, linked: str | None = None) -> dict[str, str]:
    return {"Event": "Newexten", "Application": app, "Uniqueid": uid,
            "Linkedid": linked or uid, "Timestamp": f"{ts:.6f}"}


def _dial(event: str, leg: str, linked: str, ts: float, status: str = "") -> dict[str, str]:
    return {"Event": event, "DestUniqueid": leg, "DestLinkedid": linked,
            "Timestamp": f"{ts:.6f}", **({"DialStatus": status} if status else {})}


def test_entry_to_ring_is_matched_per_caller_by_the_agent_legs_linked_id() -> None:
    """app_queue's DialBegin names the caller; ARI's channels/dial does not (no Channel
    fields, as recorded from Asterisk 22): both are matched on the leg's DestLinkedid. The
    router's own offer leg entering Stasis is not a caller."""
    from bench.queue_measure import caller_times

    events = [
        _newexten("1.1", "Stasis", 100.000),
        _newexten("1.2", "Stasis", 100.010),
        _newexten("1.1-o1", "Stasis", 100.015, linked="1.1"),  # the offer leg itself
        _dial("DialBegin", "1.1-o1", "1.1", 100.020),
        _dial("DialEnd", "1.1-o1", "1.1", 100.300, "ANSWER"),
        _dial("DialBegin", "1.2-o1", "1.2", 100.050),
        _dial("DialEnd", "1.2-o1", "1.2", 100.400, "NOANSWER"),
        _dial("DialBegin", "1.2-o2", "1.2", 100.500),  # second offer: not the first ring
        _dial("DialBegin", "9.9", "9.9", 100.600),  # somebody else's dial
        _newexten("1.3", "Queue", 100.700),  # another app: not counted
    ]
    times = caller_times(events, "Stasis")
    assert set(times) == {"1.1", "1.2"}
    assert times["1.1"].wait_ms == pytest.approx(20.0)
    assert times["1.1"].answered
    assert times["1.2"].wait_ms == pytest.approx(40.0)
    assert not times["1.2"].answered
    queue = caller_times(events, "Queue")
    assert list(queue) == ["1.3"] and queue["1.3"].wait_ms is None


def _queue_step(rate: float, *, p99: float = 5.0, **counts: int) -> QueueStep:
    calls = counts.pop("calls", 10)
    base = {"ok": calls, "failed": 0, "entered": calls, "rung": calls, "answered": calls,
            "agent_calls": calls, "agent_ok": calls, "agent_failed": 0, "left_channels": 0}
    base.update(counts)
    return QueueStep("app_queue", rate, 0, calls, wait_ms=(1.0,) * 98 + (p99,) * 2,
                     wall=1.0, **base)


def test_a_queue_step_fails_a_call_unless_every_count_agrees() -> None:
    assert _queue_step(10).failed_calls == 0 and _queue_step(10).clean
    for broken in ({"answered": 9}, {"agent_ok": 8}, {"ok": 9, "failed": 1}, {"rung": 7},
                   {"agent_failed": 1}):
        step = _queue_step(10, **broken)
        assert step.failed_calls >= 1 and not step.clean, broken
    assert not _queue_step(10, left_channels=2).clean
    assert not _queue_step(10, p99=1500.0).clean
    ramp = [_queue_step(40, answered=9), _queue_step(10), _queue_step(20), _queue_step(80)]
    assert queue_highest_clean(ramp) == 20


def test_the_queue_benchs_pbx_files_give_both_contenders_the_same_agents() -> None:
    from bench import queue_pbx as q
    from callcenter.asterisk.stasis_args import QueueCall

    agents = q.agent_names(5)
    groups = q.group_agents(agents, [5001, 5002])
    assert [g.agents for g in groups] == [("agent001", "agent003", "agent005"),
                                          ("agent002", "agent004")]
    pjsip = q.pjsip_conf(groups)
    assert "[agent004]\ntype=aor\nmax_contacts=1\ncontact=sip:agent004@127.0.0.1:5002\n" in pjsip
    assert pjsip.count("direct_media=no") == 1 and pjsip.count("(bench-endpoint)") == 6
    queues = q.queues_conf(agents)
    assert "strategy=rrmemory\nringinuse=no\nautofill=yes\ntimeout=15\n" in queues
    assert "wrapuptime=0\n" in queues
    assert queues.count("member => PJSIP/agent") == 5
    with pytest.raises(ValueError, match="rrmemory or leastrecent"):
        q.queues_conf(agents, strategy="ringall")
    line = q.stasis_line("cc-queue")
    args = tuple(line.removeprefix("Stasis(cc-queue,").removesuffix(")").split(","))
    call = QueueCall.parse(args)
    assert (call.queue, call.skills, call.priority, call.language) == ("bench", (), 0, "en")
    plan = q.caller_dialplan({"7100": "Queue(bench,,,,60)", "7200": line})
    assert ("exten => 7100,1,Answer()\n same => n,Queue(bench,,,,60)\n same => n,Hangup()\n"
            in plan)


def test_the_router_contenders_config_has_the_same_agents_as_devices(tmp_path: Path) -> None:
    from bench import queue_pbx as q

    (tmp_path / "bench.yaml").write_text(q.router_config_yaml(q.agent_names(3)))
    config = load_config(tmp_path).config
    assert {name: a.dial_string(name) for name, a in config.agents.items()} == {
        "agent001": "PJSIP/agent001", "agent002": "PJSIP/agent002",
        "agent003": "PJSIP/agent003"}
    queue = config.queues["bench"]
    assert (queue.strategy, queue.wrapup, queue.ring_timeout) == ("longest_idle", 0, 15)


def test_the_agents_phone_answers_a_cancel_with_200_and_487_to_the_invite() -> None:
    from bench.queue_pbx import agent_scenario

    xml = agent_scenario(100, 1000)
    cancel = xml.index('<recv request="CANCEL" timeout="100" ontimeout="answer"/>')
    after = xml[cancel:xml.index('<label id="answer"/>')]
    assert after.index("SIP/2.0 200 OK") < after.index("SIP/2.0 487 Request Terminated")
    assert "CSeq: [$invite_cseq] INVITE" in after
    assert '<pause milliseconds="1000"/>' in xml


async def test_the_queue_bench_quick_run_against_app_queue_and_the_ari_floor_gives_sane_figures(
) -> None:
    """The whole bench, small (a real Asterisk, sipp agents and callers, the ARI floor's
    own process, about 30 s): every call of every step reached an agent who answered,
    entry->ring is positive and p99 >= p50, the concurrency asked for was reached, and
    the floor's CPU is counted apart from Asterisk's."""
    from bench.queue import Options, run_bench

    options = Options.quick(contenders=("app_queue", "ari_floor"))
    report = await run_bench(options)
    steps = report.steps + report.held
    assert report.complete_repeats == 1 and len(report.steps) == 2 * len(options.rates)
    assert sorted(s.contender for s in report.held) == ["app_queue", "ari_floor"]
    for step in steps:
        assert step.failed_calls == 0 and step.clean, step
        assert min(step.wait_ms) > 0 and step.p99 >= step.p50 > 0, step
        assert step.agent_ok == step.calls and step.answered == step.calls
        assert math.isnan(step.contender_cpu_s) == (step.contender == "app_queue"), step
    assert all(len(step.wait_ms) == step.calls for step in report.steps)
    for held in report.held:
        assert held.concurrent == options.concurrency
        assert 0 < len(held.wait_ms) < held.calls  # only callers entering at full concurrency
    for start in ("  floor: Asterisk alone under ARI floor", "  CPU bound: app_queue "):
        assert any(line.startswith(start) for line in report.lines), start


def test_a_contender_still_clean_at_the_top_rate_bounds_the_capacity_ratio() -> None:
    from bench.queue import capacity_verdict

    assert capacity_verdict(Spread.of([0.2, 0.25]), {"app_queue"}).startswith("NOT met")
    assert capacity_verdict(Spread.of([0.8, 1.2]), {"app_queue"}).startswith("no verdict")
    assert capacity_verdict(Spread.of([1.0, 1.5]), {"router"}).startswith("met")
    assert capacity_verdict(Spread.of([1.0]), {"app_queue", "router"}).startswith("no verdict")
    assert capacity_verdict(Spread.of([0.5, 0.6]), set()) == "NOT met"
    assert capacity_verdict(Spread.of([1.1, 1.3]), {"ari_floor"}, "ari_floor").startswith(
        "met (a lower bound: ari_floor")
