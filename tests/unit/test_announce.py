"""Waiting-caller announcements, the pure parts: the wait estimate, the prompts, the
language, the schedule, and the ``announce`` config keys with located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.config.models import Announce
from callcenter.routing.announce import next_due, prompts, sound_language
from callcenter.routing.estimate import (
    HandleStats,
    estimate_wait,
    free_in,
    handle_stats,
    minutes_to_say,
)
from tests.unit.test_checks import errors, lines, load
from tests.unit.test_routing_config import queues

T0 = 1_796_115_600.0  # 2026-12-01 09:00 UTC
STATS = HandleStats(calls=5, setup=1.0, talk=100.0, wrapup=19.0)  # handle 120 s


def at(seconds: float) -> float:
    return T0 + seconds


# -- the estimate ------------------------------------------------------------------------

def test_handle_stats_are_means_of_setup_and_talk_plus_the_wrapup() -> None:
    calls = [(at(0), at(2), at(62)), (at(10), at(14), at(134))]
    stats = handle_stats(calls, wrapup=10)
    assert stats == HandleStats(2, 3.0, 90.0, 10.0) and stats.handle == 103.0
    assert handle_stats([], wrapup=10) is None


def test_free_in_by_agent_status() -> None:
    kw = {"since": at(0), "wrap_up_until": None, "now": at(40), "stats": STATS}
    assert free_in("available", **kw) == 0.0
    assert free_in("reserved", **kw) == 0.0 and free_in("ringing", **kw) == 0.0
    assert free_in("on_call", **kw) == 60.0 + 19.0       # 100 s mean talk, 40 s done
    assert free_in("on_call", **kw | {"now": at(500)}) == 19.0  # longer than the mean
    assert free_in("wrap_up", **kw | {"wrap_up_until": at(45)}) == 5.0
    assert free_in("paused", **kw) is None and free_in("logged_out", **kw) is None


def test_one_agent_serves_the_queue_in_turn() -> None:
    """One agent, 30 s from free: position p waits 30 + (p - 1) x 120 s, plus the setup."""
    assert [estimate_wait(p, [30.0], STATS) for p in (1, 2, 3)] == [31.0, 151.0, 271.0]


def test_several_agents_take_the_callers_as_they_free_up() -> None:
    """Free in 0, 50 and 100 s: positions 1-3 take them; position 4 gets the first agent
    again, one handle time after it took position 1."""
    waits = [estimate_wait(p, [100.0, 0.0, 50.0], STATS) for p in (1, 2, 3, 4, 5)]
    assert waits == [1.0, 51.0, 101.0, 121.0, 171.0]


def test_no_estimate_without_a_measurement_or_an_agent() -> None:
    assert estimate_wait(1, [0.0], None) is None
    assert estimate_wait(3, [], STATS) is None
    with pytest.raises(ValueError, match="position starts at 1"):
        estimate_wait(0, [0.0], STATS)


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=8), st.integers(1, 30))
def test_estimate_grows_with_the_position_and_falls_with_more_agents(
        free: list[float], position: int) -> None:
    here = estimate_wait(position, free, STATS)
    assert here is not None and here >= STATS.setup
    assert estimate_wait(position + 1, free, STATS) >= here  # type: ignore[operator]
    assert estimate_wait(position, [*free, 0.0], STATS) <= here  # type: ignore[operator]


def test_minutes_are_rounded_up() -> None:
    assert [minutes_to_say(s) for s in (0, 59.9, 60, 61, 120, 121)] == [0, 0, 1, 2, 2, 3]


# -- the prompts, the language, the schedule -----------------------------------------------

def test_prompts_follow_app_queue_words() -> None:
    both = Announce()
    assert prompts(both, 1, None) == ("sound:queue-youarenext",)
    assert prompts(both, 3, 150) == (
        "sound:queue-thereare", "number:3", "sound:queue-callswaiting",
        "sound:queue-holdtime", "number:3", "sound:queue-minutes")
    assert prompts(both, 2, 45)[-4:] == (
        "sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute")
    assert prompts(both, 2, 60)[-3:] == ("sound:queue-holdtime", "number:1", "sound:queue-minute")
    assert prompts(Announce(position=False), 4, 200) == (
        "sound:queue-holdtime", "number:4", "sound:queue-minutes")
    assert prompts(Announce(position=False), 4, None) == ()
    assert prompts(Announce(wait=False), 2, 200) == (
        "sound:queue-thereare", "number:2", "sound:queue-callswaiting")


def test_sound_language_falls_back_to_base_then_english() -> None:
    have = {"en", "es", "pt"}
    assert sound_language("es", have) == "es"
    assert sound_language("pt_BR", have) == "pt"
    assert sound_language("fr", have) == "en"
    assert sound_language(None, have) == "en"


def test_schedule_first_after_then_every_after_the_end() -> None:
    settings = Announce(first_after=30, every=60)
    assert next_due(settings, at(0), None, 0) == at(30)
    assert next_due(settings, at(0), at(41), 1) == at(101)
    assert next_due(Announce(first_after=30, every=0), at(0), at(41), 1) is None


# -- the config ------------------------------------------------------------------------

def test_announce_defaults_and_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "on").mkdir()
    plain = load(tmp_path / "plain", queues=queues("sales: {skills: [sales]}")).config
    assert plain.queues["sales"].announce is None
    on = load(tmp_path / "on", queues=queues("sales: {skills: [sales], announce: {}}")).config
    assert on.queues["sales"].announce == Announce(first_after=30, every=60, position=True,
                                                   wait=True)


def test_announce_errors_are_located(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  announce: {first_after: -1, every: 20, position: yes, colour: red}
support:
  announce: {position: false, wait: false}
""")
    assert lines(errors(tmp_path, queues=text)) == [
        ("queues.yaml:5:29: queues.sales.announce.first_after: input should be greater than "
         "or equal to 0 (got -1)"),
        ("queues.yaml:5:54: queues.sales.announce.position: expected true or false, got 'yes' "
         "(only true/false are booleans)"),
        ("queues.yaml:5:59: queues.sales.announce: unknown key 'colour' (allowed: every, "
         "first_after, position, wait)"),
        ("queues.yaml:7:15: queues.support.announce: an announcement needs position or wait "
         "(or leave announce out)"),
    ]
