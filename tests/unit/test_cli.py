"""The ``callcenter`` command line, run in-process with click's CliRunner.

Every invocation gets ``--home`` in a tmp dir (simulate migrates a SQLite
database there for lookups), so nothing is written into the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
GOLDEN = REPO / "tests" / "golden" / "example"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)
    monkeypatch.delenv("CALLCENTER_DB", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    invoke.home = home  # type: ignore[attr-defined]
    return invoke


def test_validate_example(cli) -> None:
    result = cli("validate", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r".*example: OK — 1 entry point, 6 flows, 3 menus, 3 queues, 3 agents; "
        r"sounds (checked|not checked \(no Asterisk installed\))\n",
        result.stdout,
    ), result.stdout


def test_validate_broken(cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "entry.yaml").write_text(
        "entry_points:\n"
        "  main:\n"
        "    numbers: [\"100\"]\n"
        "    flow: nowhere\n"
    )
    (broken / "flows.yaml").write_text(
        "flows:\n"
        "  start:\n"
        "    steps:\n"
        "      - hangup: true\n"
        "    colour: red\n"
    )
    result = cli("validate", str(broken))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if re.match(r".+:\d+:\d+: ", line)]
    assert f"{broken / 'flows.yaml'}:5:5: flows.start: unknown key 'colour'" in result.stderr
    # a shape error no longer hides the cross-checks of what parsed: both in one round
    assert f"{broken / 'entry.yaml'}:4:11: entry_points.main.flow: unknown flow 'nowhere'" \
        in result.stderr
    assert len(errors) == 2, result.stderr
    assert result.stderr.rstrip().endswith(f"2 problems in {broken}")
    assert "OK" not in result.stdout


def test_validate_cross_check_errors(cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "entry.yaml").write_text(
        "entry_points:\n  main:\n    numbers: [\"100\"]\n    flow: nowhere\n")
    (broken / "flows.yaml").write_text("flows:\n  start:\n    steps:\n      - hangup: true\n")
    result = cli("validate", str(broken))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{broken / 'entry.yaml'}:4:11: entry_points.main.flow: unknown flow 'nowhere' " \
        "(known: start)" in lines
    assert f"{broken / 'flows.yaml'}:3:5: flows.start: flow 'start' is unreachable from " \
        "every entry point" in lines
    assert lines[-1] == f"2 problems in {broken}"


def test_schema(cli) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "$defs" in schema
    assert "menus" in schema["properties"]
    assert "required" not in schema  # sections may be split across files
    assert schema["additionalProperties"] is False


def test_generate_matches_golden(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("generate", str(EXAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["extensions_callcenter.conf", "pjsip_callcenter.conf",
                     "voicemail_callcenter.conf"]
    for name in names:
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes(), name
        assert f"wrote {out / name}" in result.stdout


def test_simulate(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,2",
                 "--at", "2026-11-25T10:00:00-05:00", "--caller-id", "15550001111")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "=> queue sales skills=sales priority=5 language=en"
    assert any(line.startswith("schedule") and "(open)" in line for line in lines)
    assert (cli.home / "callcenter.sqlite3").exists()  # the home's DB, migrated


def test_simulate_lookup_uses_the_database(cli) -> None:
    # Empty database: account 100200 is not found.
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,1,100200#",
                 "--at", "2026-11-25T15:00:00Z")
    assert result.exit_code == 0, result.output
    assert "100200 -> not_found" in result.stdout
    assert "flow       unknown_account" in result.stdout
    assert result.stdout.splitlines()[-1] == \
        "=> queue customer_service skills=billing priority=0 language=en"


def test_simulate_after_hours(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line",
                 "--at", "2026-11-29T10:00:00-05:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "=> voicemail general"


def test_simulate_at_needs_offset(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line",
                 "--at", "2026-11-25T10:00:00")
    assert result.exit_code == 2
    assert "--at '2026-11-25T10:00:00' needs a UTC offset" in result.stderr
    assert "Traceback" not in result.output


def test_simulate_bad_at(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--at", "tomorrow")
    assert result.exit_code == 2
    assert "Invalid value" in result.stderr


def test_simulate_bad_keys(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,x")
    assert result.exit_code == 2
    assert "invalid key 'x'" in result.stderr


def test_simulate_unknown_entry(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "nope", "--at", "2026-11-25T15:00:00Z")
    assert result.exit_code == 2
    assert "unknown entry point 'nope' (known: main_line)" in result.stderr
