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
