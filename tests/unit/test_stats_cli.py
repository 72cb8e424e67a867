"""``callcenter stats`` on a real SQLite database seeded with the router's records, and
its pure edges: the range from the command line (callcenter.stats.window) and the
formats (callcenter.stats.render)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.state import AgentStatus as S
from callcenter.cli import main
from callcenter.config.models import ServiceLevel
from callcenter.stats.compute import BY, build_report
from callcenter.stats.queries import WRAP_UP_HORIZON
from callcenter.stats.records import CallFigures, Report, Row
from callcenter.stats.render import neutralise, render
from callcenter.stats.window import (
    MAX_RANGE,
    WindowError,
    interval,
    parse_duration,
    window,
)
from callcenter.storage.models import AgentStateRecord, AgentTransition, QueuedCall

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 in New York, the example's zone
RANGE = ["--from", "2026-11-30T09:00", "--to", "2026-11-30T10:00"]  # New York time


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    """carmen logs in at 0, answers a (wait 4 s, talk 120 s, wrap-up 10 s) and b (wait
    30 s, talk 60 s, wrap-up 10 s), pauses 1000-1600 and logs out at 2000; c abandons
    after 12 s, d after 2 s (short); e was answered the hour before (out of range)."""
    async with sessions.begin() as session:
        session.add(AgentStateRecord(agent="carmen", status=S.LOGGED_OUT, version=12,
                                     since=at(2000)))
        session.add(AgentStateRecord(agent="alice", status=S.AVAILABLE, version=1, since=at(0)))
        await session.flush()
        path = [(S.LOGGED_OUT, S.AVAILABLE, "login", None, 0),
                (S.AVAILABLE, S.RESERVED, "reserve", {"call": "a"}, 2),
                (S.RESERVED, S.RINGING, "ring", {"call": "a"}, 3),
                (S.RINGING, S.ON_CALL, "answer", {"call": "a"}, 4),
                (S.ON_CALL, S.WRAP_UP, "hangup", {"call": "a", "wrap_up": 10.0}, 124),
                (S.WRAP_UP, S.AVAILABLE, "tick", None, 134),
                (S.AVAILABLE, S.ON_CALL, "answer", {"call": "b"}, 230),
                (S.ON_CALL, S.WRAP_UP, "hangup", {"call": "b", "wrap_up": 10.0}, 290),
                (S.WRAP_UP, S.AVAILABLE, "tick", None, 300),
                (S.AVAILABLE, S.PAUSED, "pause", {"reason": "lunch"}, 1000),
                (S.PAUSED, S.AVAILABLE, "unpause", None, 1600),
                (S.AVAILABLE, S.LOGGED_OUT, "logout", None, 2000)]
        for version, (old, new, cause, detail, second) in enumerate(path, start=1):
            session.add(AgentTransition(agent="carmen", version=version, at=at(second),
                                        cause=cause, from_status=old, to_status=new,
                                        detail=detail))
        session.add(AgentTransition(agent="alice", version=1, at=at(-7200), cause="login",
                                    from_status=S.LOGGED_OUT, to_status=S.AVAILABLE))
        for channel, entered, answered, ended, outcome, agent in (
                ("a", 0, 4, 124, "answered", "carmen"), ("b", 200, 230, 290, "answered", "carmen"),
                ("c", 400, None, 412, "abandoned", None), ("d", 500, None, 502, "abandoned", None),
                ("e", -1000, -990, -900, "answered", "carmen")):
            session.add(QueuedCall(
                channel_id=channel, queue="sales", entered_at=at(entered),
                answered_at=at(answered) if answered is not None else None, ended_at=at(ended),
                outcome=outcome, agent=agent))
        session.add(QueuedCall(channel_id="w", queue="customer_service", entered_at=at(100)))


async def test_a_call_that_ends_hours_after_the_range_keeps_its_wrap_up(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Entered at 09:59, talked two hours, wrapped up 10 s: its AHT counts the wrap-up."""
    async with sessions.begin() as session:
        session.add(AgentStateRecord(agent="bob", status=S.AVAILABLE, version=3, since=at(0)))
        await session.flush()
        for version, (status, cause, detail, second) in enumerate([
                (S.ON_CALL, "answer", {"call": "long"}, 3545),
                (S.WRAP_UP, "hangup", {"call": "long", "wrap_up": 10.0}, 3545 + 7200),
                (S.AVAILABLE, "tick", None, 3555 + 7200)], start=1):
            session.add(AgentTransition(agent="bob", version=version, at=at(second), cause=cause,
                                        from_status=S.AVAILABLE, to_status=status, detail=detail))
        session.add(QueuedCall(channel_id="long", queue="sales", entered_at=at(3540),
                               answered_at=at(3545), ended_at=at(3545 + 7200),
                               outcome="answered", agent="bob"))
    result = await stats(tmp_path, *RANGE, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"]["aht"] == 7210.0


async def stats(home: Path, *args: str) -> Result:
    """The CLI in a thread: it runs its own event loop (asyncio.run)."""
    return await asyncio.to_thread(CliRunner().invoke, main,
                                   ["--home", str(home), "stats", str(EXAMPLE), *args])


@pytest.fixture
async def home(tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> Path:
    await seed(sessions)
    return tmp_path  # the conftest's db_url is the default database of this home


async def test_by_queue_follows_the_definitions(home: Path) -> None:
    result = await stats(home, *RANGE, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    sales = next(row for row in data["rows"] if row["queue"] == "sales")
    assert {k: sales[k] for k in ("offered", "answered", "abandoned", "short_abandoned")} == {
        "offered": 4, "answered": 2, "abandoned": 2, "short_abandoned": 1}
    # judged: a, b, c (d is a short abandon); within 20 s: a only
    assert sales["service_level"] == round(1 / 3, 4)
    assert sales["abandon_rate"] == round(1 / 3, 4)
    assert sales["asa"] == 17.0 and sales["aht"] == 100.0  # (124 + 10 + 60 + 10) / 2
    assert sales["longest_wait"] == 30.0
    assert data["total"]["offered"] == 5 and data["total"]["waiting"] == 1
    assert data["service_level"]["sales"] == {"threshold": 20, "short_abandon": 5,
                                              "count_short_abandons": False}
    assert data["now"]["waiting"]["customer_service"] == 1
    assert data["now"]["agents"]["available"] == 1 and data["now"]["agents"]["logged_out"] == 1


async def test_by_agent_gives_occupancy_from_the_transitions(home: Path) -> None:
    result = await stats(home, *RANGE, "--by", "agent", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["agent"]: row for row in json.loads(result.output)["rows"]}
    carmen = rows["carmen"]
    # staffed 0-1000 and 1600-2000; busy: on call 4-124 and 230-290, wrap-up 124-134, 290-300
    assert (carmen["staffed"], carmen["on_call"], carmen["wrap_up"], carmen["paused"]) == (
        1400.0, 180.0, 20.0, 600.0)
    assert carmen["occupancy"] == round(200 / 1400, 4)
    assert carmen["answered"] == 2 and carmen["aht"] == 100.0
    # alice: available since before the range, all of it
    assert (rows["alice"]["staffed"], rows["alice"]["occupancy"]) == (3600.0, 0.0)
    assert rows["bob"]["staffed"] == 0.0


async def test_by_interval_rows_add_up_and_csv_has_one_line_per_interval(home: Path) -> None:
    result = await stats(home, *RANGE, "--by", "interval", "--interval", "30m", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["interval"] for r in rows] == [
        "2026-11-30T09:00:00-05:00", "2026-11-30T09:30:00-05:00", "total"]
    assert [int(r["offered"]) for r in rows] == [5, 0, 5]
    # staffed in the first half hour: carmen 0-1000 and 1600-1800, alice all of it
    assert [float(r["occupancy"]) for r in rows] == [round(200 / 3000, 4), 0.0,
                                                     round(200 / 5000, 4)]


async def test_the_table_names_the_definitions_and_the_real_time_view(home: Path) -> None:
    result = await stats(home, *RANGE)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    sales = next(line for line in lines if line.startswith("sales "))
    assert "33.3%" in sales and "17.0s" in sales
    assert ("service level: answered within 20s, abandons under 5s not counted "
            "(customer_service, sales, tech_support)") in lines
    assert any(line.startswith("now (") and "customer_service 1" in line for line in lines)


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "yesterday"], "--from 'yesterday': expected an ISO 8601 date or time"),
    (["--from", "2026-11-30T10:00", "--to", "2026-11-30T09:00"], "the range is empty"),
    (["--last", "1h", "--from", "2026-11-30"], "give either --last or --from/--to"),
    (["--last", "an hour"], "--last 'an hour': expected a number and a unit"),
    (["--last", "0m"], "must be longer than zero"),
    (["--by", "interval", "--interval", "1s", "--last", "30d"], "--interval '1s': 2592001"),
    (["--by", "interval", "--interval", "999999w"], "--interval '999999w': longer than 3660"),
    (["--last", "999999w"], "--last '999999w': longer than 3660 days"),
    (["--to", "9999-12-31"], "--to '9999-12-31': expected a time in the years 1970 to 2999"),
    (["--from", "0001-01-01"], "--from '0001-01-01': expected a time in the years 1970"),
    (["--format", "xml"], "'xml' is not one of 'table', 'csv', 'json'"),
    (["--by", "week"], "'week' is not one of 'queue', 'agent', 'interval'"),
    (["--queue", "nope"], "unknown queue 'nope' (known: customer_service, sales, tech_support)"),
])
async def test_bad_options_are_named_errors_not_tracebacks(home: Path, args: list[str],
                                                           message: str) -> None:
    result = await stats(home, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


async def test_a_home_without_a_database_is_a_clear_error_and_stays_uncreated(
        tmp_path: Path) -> None:
    home = tmp_path / "nothing-here"
    result = await stats(home)
    assert result.exit_code == 1
    assert f"no database at {home / 'callcenter.sqlite3'}" in result.output
    assert not home.exists()


async def test_a_database_not_migrated_says_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "callcenter.sqlite3").write_bytes(b"")
    result = await stats(tmp_path)
    assert result.exit_code == 1
    assert "is at schema revision none" in result.output
    assert "run 'callcenter db upgrade'" in result.output


async def test_a_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = await stats(tmp_path, "--db", "not a url")
    assert result.exit_code == 1 and "not a database URL: 'not a url'" in result.output


async def test_queue_option_keeps_that_queues_calls_only(home: Path) -> None:
    result = await stats(home, *RANGE, "--queue", "customer_service", "--format", "json")
    data = json.loads(result.output)
    assert [row["queue"] for row in data["rows"]] == ["customer_service"]
    assert data["total"]["offered"] == 1 and list(data["service_level"]) == ["customer_service"]


# -- the range ---------------------------------------------------------------------

NOW = datetime(2026, 11, 30, 20, 30, tzinfo=UTC)  # 15:30 in New York


def test_a_time_without_offset_is_the_centers_local_time() -> None:
    start, end = window(start="2026-11-30T09:00", end="2026-11-30T15:00:00Z", last=None,
                        now=NOW, tz=NY)
    assert (start, end) == (datetime(2026, 11, 30, 14, 0, tzinfo=UTC),
                            datetime(2026, 11, 30, 15, 0, tzinfo=UTC))


def test_default_range_is_today_until_now_and_last_counts_back_from_now() -> None:
    start, end = window(start=None, end=None, last=None, now=NOW, tz=NY)
    assert (start, end) == (datetime(2026, 11, 30, 5, 0, tzinfo=UTC), NOW)
    assert window(start=None, end=None, last="90m", now=NOW, tz=NY) == (
        NOW - timedelta(minutes=90), NOW)


def test_window_errors_name_the_option() -> None:
    with pytest.raises(WindowError) as caught:
        window(start="2026-12-01", end=None, last=None, now=NOW, tz=NY)
    assert caught.value.option == "--from" and "the range is empty" in caught.value.why
    with pytest.raises(WindowError, match="--interval"):
        interval("1s", NOW - timedelta(days=1), NOW)
    assert interval("15m", NOW - timedelta(days=1), NOW) == timedelta(minutes=15)


_EDGE_TIMES = ["0001-01-01", "9999-12-31", "9999-12-31T23:59:59-23:59", "2999-12-31T23:59-23:59",
               "1970-01-01T00:00+23:59", "1969-12-31T23:00-05:00", "2026-11-30", ""]
_EDGE_DURATIONS = ["999999w", "522w", "523w", "3660d", "3661d", "87840h", "1s", "0m", "-5m", ""]
_ZONES = [ZoneInfo(name) for name in ("America/New_York", "Pacific/Kiritimati",
                                      "Pacific/Pago_Pago", "UTC")]


@settings(max_examples=300, deadline=None)
@given(start=st.none() | st.sampled_from(_EDGE_TIMES) | st.text(max_size=25)
       | st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
           datetime.isoformat),
       end=st.none() | st.sampled_from(_EDGE_TIMES) | st.text(max_size=25),
       last=st.none() | st.sampled_from(_EDGE_DURATIONS) | st.from_regex(r"\A[0-9]{1,7}[smhdw]\Z"),
       every=st.sampled_from(_EDGE_DURATIONS) | st.from_regex(r"\A[0-9]{1,7}[smhdw]\Z")
       | st.text(max_size=10),
       by=st.sampled_from(BY), zone=st.sampled_from(_ZONES))
def test_any_range_and_interval_is_a_report_or_an_error_naming_the_option(
        start: str | None, end: str | None, last: str | None, every: str, by: str,
        zone: ZoneInfo) -> None:
    """What ``callcenter stats`` and ``GET /api/v1/stats`` do with the options, pure:
    never an ``OverflowError`` (``999999w``, ``9999-12-31``: a 500 of the API before)."""
    try:
        begin, finish = window(start=start, end=end, last=last, now=NOW, tz=zone)
        length = (interval(every, begin, finish) if by == "interval"
                  else parse_duration("--interval", every))
    except WindowError as exc:
        assert exc.option in {"--from", "--to", "--last", "--interval"}
        return
    assert timedelta(0) < finish - begin <= MAX_RANGE and length <= MAX_RANGE
    report = build_report([], {}, [], rules={}, start=begin, end=finish, now=NOW, by=by,
                          interval=length, tz=zone, queues=["sales"], agents=["alice"])
    assert report.rows
    assert finish + WRAP_UP_HORIZON > finish  # how far past the end the records are read


# -- formats -----------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    assert neutralise("sales") == "sales"
    report = Report(T0, at(60), "queue", (Row(cell, CallFigures()),), Row("total", CallFigures()))
    rows = list(csv.reader(io.StringIO(render(report, "csv", {}))))
    assert rows[1][0] == "'" + cell


def test_every_format_has_the_same_columns() -> None:
    report = Report(T0, at(60), "agent", (Row("bob", CallFigures()),), Row("total", CallFigures()))
    rules = {"sales": ServiceLevel()}
    header = render(report, "csv", rules).splitlines()[0].split(",")
    assert list(json.loads(render(report, "json", rules))["total"]) == header
    assert render(report, "table", rules).splitlines()[1].split() == header
