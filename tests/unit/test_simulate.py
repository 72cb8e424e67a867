"""``simulate`` walks calls through the example config the way Asterisk does.

The table repeats the real-call cases of ``tests/integration/test_ivr_calls.py``
(same keys, same expected outcome and route); a fake lookup stands in for the
account database: ``100200`` is a known account, anything else is not.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from callcenter.flows.lookup import LookupResult
from callcenter.flows.simulate import Simulation, SimulationError, parse_keys, simulate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"

#: Wednesday 10:00 in New York: open. Sunday: closed. Christmas: holiday.
OPEN = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
SUNDAY = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.UTC)
CHRISTMAS = dt.datetime(2026, 12, 25, 15, 0, tzinfo=dt.UTC)

SALES = "queue sales skills=sales priority=5 language=en"
BILLING = "queue customer_service skills=billing priority=0 language=en"
TO_MAIN = ("flow:inbound", "menu:language", "flow:english", "menu:main")


class FakeLookup:
    """Answers like the account database seeded with the demo accounts."""

    def __init__(self, known: dict[str, str] | None = None, status: str | None = None) -> None:
        self.known = known if known is not None else {"100200": "Ada Lovelace"}
        self.status = status
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, name: str, key: str) -> LookupResult:
        self.calls.append((name, key))
        if self.status is not None:
            return LookupResult(self.status)  # type: ignore[arg-type]
        if key in self.known:
            return LookupResult("found", {"account_id": "1", "name": self.known[key]})
        return LookupResult("not_found")


@pytest.fixture(scope="module")
def example() -> CallCenterConfig:
    return load_config(EXAMPLE).config


async def run(config: CallCenterConfig, keys: str = "", *, entry: str = "main_line",
              caller_id: str = "15559000001", at: dt.datetime = OPEN,
              lookup: Any = "fake") -> Simulation:
    return await simulate(config, entry, keys=parse_keys(keys), caller_id=caller_id, now=at,
                          lookup=FakeLookup() if lookup == "fake" else lookup)


# (name, keys, caller id, time, outcome, route or None)
CASES = [
    ("sales", "1,2", "", OPEN, SALES, TO_MAIN),
    ("spanish_tech_internet", "2,3,1", "", OPEN,
     "queue tech_support skills=internet priority=0 language=es",
     ("flow:inbound", "menu:language", "flow:spanish", "menu:main", "menu:tech_support")),
    ("tech_back_to_main", "1,3,*,2", "", OPEN, SALES,
     TO_MAIN + ("menu:tech_support", "menu:main")),
    ("account_found", "1,1,100200#", "", OPEN, BILLING, TO_MAIN + ("flow:customer_service",)),
    ("account_not_found", "1,1,999999#", "", OPEN, BILLING,
     TO_MAIN + ("flow:customer_service", "flow:unknown_account")),
    ("invalid_then_valid", "1,7,2", "", OPEN, SALES, TO_MAIN),
    ("exhausted_invalid", "1,7,8,9", "", OPEN, "voicemail general", TO_MAIN),
    ("language_timeout", "t,2", "", OPEN, SALES, TO_MAIN),
    ("vip_priority", "1,2", "+15551230001", OPEN,
     "queue sales skills=sales priority=15 language=en", TO_MAIN),
    ("blocked_caller", "", "+15550000666", OPEN, "hangup 21", ()),
    ("operator", "1,0", "", OPEN, "extension 1000", TO_MAIN),
    ("after_hours_sunday", "", "", SUNDAY, "voicemail general",
     ("flow:inbound", "flow:after_hours")),
    ("holiday", "", "", CHRISTMAS, "voicemail general", ("flow:inbound", "flow:after_hours")),
]


@pytest.mark.parametrize("name, keys, caller_id, at, outcome, route", CASES,
                         ids=[c[0] for c in CASES])
async def test_example_calls(example: CallCenterConfig, name: str, keys: str, caller_id: str,
                             at: dt.datetime, outcome: str, route: tuple[str, ...]) -> None:
    sim = await run(example, keys, caller_id=caller_id or "15559000001", at=at)
    assert str(sim.outcome) == outcome, sim.events
    assert tuple(sim.route) == route, sim.events


async def test_account_lookup_gets_collected_digits(example: CallCenterConfig) -> None:
    lookup = FakeLookup()
    sim = await run(example, "1,1,100200#", lookup=lookup)
    assert lookup.calls == [("account", "100200")]
    assert sim.variables["ACCOUNT"] == "100200"
    assert any(e.kind == "lookup" and e.detail.startswith("100200 -> found") for e in sim.events)


async def test_lookup_error_takes_error_branch(example: CallCenterConfig) -> None:
    sim = await run(example, "1,1,100200#", lookup=FakeLookup(status="error"))
    assert str(sim.outcome) == BILLING
    assert "flow:unknown_account" not in sim.route


async def test_no_lookup_function_is_an_error(example: CallCenterConfig) -> None:
    sim = await run(example, "1,1,100200#", lookup=None)
    assert str(sim.outcome) == BILLING
    assert any(e.kind == "lookup" and e.detail.endswith("-> error") for e in sim.events)


async def test_christmas_eve_special_hours(example: CallCenterConfig) -> None:
    # 2026-12-24 is open 08:00-12:00 only (New York).
    morning = dt.datetime(2026, 12, 24, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    afternoon = morning.replace(hour=14)
    assert str((await run(example, "1,2", at=morning)).outcome) == SALES
    assert str((await run(example, "1,2", at=afternoon)).outcome) == "voicemail general"


# -- menus: back, repeat, retries -------------------------------------------------

async def test_repeat_replays_menu_without_resetting(example: CallCenterConfig) -> None:
    sim = await run(example, "1,3,9,1")
    assert str(sim.outcome) == "queue tech_support skills=internet priority=0 language=en"
    assert sim.route == list(TO_MAIN + ("menu:tech_support",))


async def test_repeat_keeps_retry_count(example: CallCenterConfig) -> None:
    # tech_support allows 3 tries; the repeat in between does not reset the count
    # (the dialplan's Goto(s,prompt) skips Set(CC_TRIES=0)).
    sim = await run(example, "1,3,7,9,7,7")
    assert str(sim.outcome) == "queue tech_support skills=internet+phone priority=0 language=en"


async def test_back_then_back_again_from_main_is_invalid(example: CallCenterConfig) -> None:
    # "*" is not an option of main: after going back, it counts as invalid.
    sim = await run(example, "1,3,*,*,2")
    assert str(sim.outcome) == SALES
    assert [e.kind for e in sim.events].count("invalid") == 1


async def test_invalid_keys_exhaust_sub_menu(example: CallCenterConfig) -> None:
    sim = await run(example, "1,3,7,7,7")
    assert str(sim.outcome) == "queue tech_support skills=internet+phone priority=0 language=en"
    kinds = [e.kind for e in sim.events]
    assert kinds.count("invalid") == 3
    assert "exhausted" in kinds


async def test_silence_exhausts_main_menu(example: CallCenterConfig) -> None:
    sim = await run(example, "1")  # then stays silent: main has no on_timeout
    assert str(sim.outcome) == "voicemail general"
    assert [e.kind for e in sim.events].count("timeout") == 3


async def test_mixed_invalid_and_timeout_share_the_count(example: CallCenterConfig) -> None:
    sim = await run(example, "1,7,t,8")
    assert str(sim.outcome) == "voicemail general"


async def test_language_menu_exhausted_goes_english(example: CallCenterConfig) -> None:
    # language: max_retries 2, on_exhausted english.
    sim = await run(example, "5,6,2")
    assert sim.route == list(TO_MAIN)
    assert str(sim.outcome) == SALES


# -- collect ------------------------------------------------------------------------

async def test_collect_with_terminator(example: CallCenterConfig) -> None:
    sim = await run(example, "1,1,1002003#,2")
    assert sim.variables["ACCOUNT"] == "1002003"
    assert [e.detail for e in sim.events if e.kind == "collect"] == ["1002003 ok"]


async def test_collect_max_digits_without_terminator(example: CallCenterConfig) -> None:
    lookup = FakeLookup()
    # max_digits 8: Read() returns after the 8th digit; the 9th key is not part of it.
    sim = await run(example, "1,1,100200301", lookup=lookup)
    assert sim.variables["ACCOUNT"] == "10020030"
    assert lookup.calls == [("account", "10020030")]


async def test_collect_too_short_retries(example: CallCenterConfig) -> None:
    sim = await run(example, "1,1,123#,100200#")
    assert [e.detail for e in sim.events if e.kind == "collect"] == ["123 invalid", "100200 ok"]
    assert "flow:unknown_account" not in sim.route


async def test_collect_pattern_mismatch_then_on_failure(example: CallCenterConfig) -> None:
    # Six keys pass min_digits, but '*' fails the pattern ^[0-9]{6,8}$; three tries.
    lookup = FakeLookup()
    sim = await run(example, "1,1,12345*#,12345*#,12345*#", lookup=lookup)
    assert [e.detail for e in sim.events if e.kind == "collect"] == ["12345* invalid"] * 3
    assert str(sim.outcome) == BILLING  # on_failure: {queue: customer_service}
    assert lookup.calls == []


async def test_collect_silence_fails(example: CallCenterConfig) -> None:
    sim = await run(example, "1,1")
    assert [e.detail for e in sim.events if e.kind == "collect"] == ["- invalid"] * 3
    assert str(sim.outcome) == BILLING


# -- temp configs: branch, caller ID rules --------------------------------------------

def _write(tmp_path: Path, data: dict[str, Any]) -> CallCenterConfig:
    directory = tmp_path / "cfg"
    directory.mkdir()
    for section, value in data.items():
        (directory / f"{section}.yaml").write_text(json.dumps({section: value}, indent=2))
    return load_config(directory).config


def _small(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "entry_points": {"main": {"numbers": ["100"], "flow": "start"}},
        "flows": {
            "start": {"steps": [
                {"collect": {"variable": "CHOICE", "prompts": ["vm-press"], "max_digits": 2,
                             "on_failure": {"hangup": True, "cause": 17}}},
                {"branch": {"variable": "CHOICE",
                            "cases": {"1": {"queue": "sales"}, "42": {"voicemail": "box"}},
                            "default": {"hangup": True}}},
            ]},
        },
        "skills": ["sales"],
        "queues": {"sales": {"skills": ["sales"], "priority": 2}},
        "agents": {"alice": {"extension": "1001", "skills": {"sales": 5}}},
        "voicemail": {"box": {"mailbox": "8000", "name": "Box"}},
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("keys, outcome", [
    ("1#", "queue sales skills=sales priority=2 language=en"),
    ("42", "voicemail box"),
    ("7#", "hangup 16"),
    ("", "hangup 17"),
])
async def test_branch_step(tmp_path: Path, keys: str, outcome: str) -> None:
    config = _write(tmp_path, _small())
    sim = await run(config, keys, entry="main")
    assert str(sim.outcome) == outcome, sim.events


async def test_caller_id_rule_with_destination(tmp_path: Path) -> None:
    config = _write(tmp_path, _small(caller_id_rules=[
        {"name": "vip", "numbers": ["+1 (555) 000-1111"], "priority": 20,
         "destination": {"queue": "sales", "priority": 1}},
    ]))
    sim = await run(config, "", entry="main", caller_id="+15550001111")
    assert str(sim.outcome) == "queue sales skills=sales priority=23 language=en"
    assert sim.route == []  # straight to the queue, no flow
    other = await run(config, "1#", entry="main", caller_id="15550002222")
    assert str(other.outcome) == "queue sales skills=sales priority=2 language=en"


async def test_caller_id_prefix_rule_first_match_wins(tmp_path: Path) -> None:
    config = _write(tmp_path, _small(caller_id_rules=[
        {"name": "premium", "prefixes": ["1555"], "priority": 7},
        {"name": "blocked", "prefixes": ["15550"], "block": True},
    ]))
    sim = await run(config, "1#", entry="main", caller_id="+1 555 012 3456")
    assert str(sim.outcome) == "queue sales skills=sales priority=9 language=en"
    assert [e.name for e in sim.events if e.kind == "rule"] == ["premium"]


async def test_no_caller_id_matches_no_rule(example: CallCenterConfig) -> None:
    sim = await run(example, "1,2", caller_id="")
    assert str(sim.outcome) == SALES
    assert not [e for e in sim.events if e.kind == "rule"]


async def test_unconditional_flow_loop_is_cut(tmp_path: Path) -> None:
    # Checks reject this config; simulate on the model still terminates.
    config = CallCenterConfig.model_validate({
        "entry_points": {"main": {"numbers": ["100"], "flow": "a"}},
        "flows": {"a": {"steps": [{"goto": "b"}]}, "b": {"steps": [{"goto": "a"}]}},
    })
    sim = await run(config, "", entry="main")
    assert sim.outcome is not None and sim.outcome.kind == "failure"


# -- input ------------------------------------------------------------------------

async def test_unknown_entry_point(example: CallCenterConfig) -> None:
    with pytest.raises(SimulationError, match="unknown entry point 'nope' .*main_line"):
        await run(example, "1", entry="nope")


@pytest.mark.parametrize("text, tokens", [
    ("1,3,#", ["1", "3", "#"]),
    ("1,t,100200#", ["1", "t", "1", "0", "0", "2", "0", "0", "#"]),
    (" 1 , timeout ,* ", ["1", "t", "*"]),
    ("", []),
])
def test_parse_keys(text: str, tokens: list[str]) -> None:
    assert parse_keys(text) == tokens


@pytest.mark.parametrize("text", ["x", "1,x", "1a", "t1"])
def test_parse_keys_rejects(text: str) -> None:
    with pytest.raises(SimulationError, match="invalid key"):
        parse_keys(text)


def test_outcome_str() -> None:
    from callcenter.flows.simulate import Outcome

    assert str(Outcome("queue", "q", ("a", "b"), 3, "es")) == "queue q skills=a+b priority=3 language=es"
    assert str(Outcome("hangup", "21")) == "hangup 21"
