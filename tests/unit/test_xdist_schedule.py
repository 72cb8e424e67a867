"""The parallel run's order (:mod:`tests.xdist_schedule`): slow files first, the
timing tests as one unit, last; files stay whole."""

from __future__ import annotations

from pathlib import Path

from tests.xdist_schedule import SLOW_FIRST, TIMING, TIMING_SCOPE, order, scope_of

REPO = Path(__file__).resolve().parents[2]


def test_slow_files_first_timing_last_the_rest_in_collection_order() -> None:
    nodeids = [
        "tests/unit/test_agi_server.py::test_a",
        "tests/unit/test_cli.py::test_b",
        f"{SLOW_FIRST[1]}::test_c",
        "tests/unit/test_config_fuzz.py::test_d",
        f"{SLOW_FIRST[0]}::test_e",
        "tests/integration/test_cli_call.py::test_f",
        f"{SLOW_FIRST[1]}::test_g",
    ]
    assert order(nodeids) == [
        f"{SLOW_FIRST[0]}::test_e",
        f"{SLOW_FIRST[1]}::test_c",
        f"{SLOW_FIRST[1]}::test_g",
        "tests/unit/test_cli.py::test_b",
        "tests/integration/test_cli_call.py::test_f",
        "tests/unit/test_agi_server.py::test_a",
        "tests/unit/test_config_fuzz.py::test_d",
    ]


def test_a_file_is_one_unit_and_the_timing_files_are_one_together() -> None:
    assert scope_of("tests/unit/test_cli.py::test_x[1]") == "tests/unit/test_cli.py"
    assert {scope_of(f"{path}::t") for path in TIMING} == {TIMING_SCOPE}


def test_every_listed_file_exists() -> None:
    """A renamed file would silently lose its place in the order."""
    missing = [p for p in (*SLOW_FIRST, *TIMING) if not (REPO / p).is_file()]
    assert missing == []
