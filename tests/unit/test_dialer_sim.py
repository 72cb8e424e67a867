"""A small fast smoke of bench/dialer_sim.py: its world, its accounting, its table."""

from __future__ import annotations

import pytest

from bench.dialer_sim import Result, World, main, report, simulate
from callcenter.dialer.pacing import Mode


def test_progressive_never_abandons_and_predictive_keeps_agents_busier() -> None:
    prog = simulate(10, World(live=0.3), Mode.PROGRESSIVE, 2.0, seed=7)
    pred = simulate(10, World(live=0.3), Mode.PREDICTIVE, 2.0, seed=7)
    # progressive: one call per free agent, so every live answer finds its agent
    assert prog.live > 50 and prog.abandoned == 0
    assert 0.5 < prog.occupancy < 0.85
    # predictive dials ahead: more calls per agent, busier agents, few abandons
    assert pred.calls_per_agent_hour > prog.calls_per_agent_hour
    assert pred.occupancy > prog.occupancy + 0.04
    assert pred.abandoned <= 0.05 * pred.live
    assert 0.0 < pred.occupancy <= 1.0


def test_the_same_seed_gives_the_same_run() -> None:
    a = simulate(5, World(live=0.2), Mode.PREDICTIVE, 0.25, seed=3)
    assert a == simulate(5, World(live=0.2), Mode.PREDICTIVE, 0.25, seed=3)
    assert a != simulate(5, World(live=0.2), Mode.PREDICTIVE, 0.25, seed=4)


def test_the_table_pairs_predictive_with_progressive_per_seed_and_judges_the_goal() -> None:
    rs = [Result(10, 0.2, Mode.PROGRESSIVE, s, 8.0, 0.6, 900, 100, 0) for s in (1, 2)]
    rs += [Result(10, 0.2, Mode.PREDICTIVE, 1, 8.0, 0.84, 1000, 100, 2),
           Result(10, 0.2, Mode.PREDICTIVE, 2, 8.0, 0.9, 1000, 100, 4)]
    lines, met = report(rs)
    assert not met  # seed 2 abandoned 4 % of its live answers
    pred = next(line for line in lines if "predictive" in line)
    assert "4.00% (3.00%)" in pred and "1.45 (1.40-1.50)" in pred and "NOT met" in pred
    rs[-1] = Result(10, 0.2, Mode.PREDICTIVE, 2, 8.0, 0.9, 1000, 100, 3)
    assert report(rs)[1]


def test_quick_run_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--agents", "5", "--rates", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "progressive" in out and "predictive" in out and "goal (predictive" in out
    with pytest.raises(SystemExit, match="--hours"):
        main(["--hours", "0"])
