"""Call recording, the parts that need no PBX: names from safe ids only (whatever a
caller sends), the recordings directory read and pruned without following symlinks,
retention's decision on a fake clock, and the recorder against a protocol-speaking fake
ARI (an aiohttp server answering the routes it calls)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.queue_router import Caller, QueueRouter
from callcenter.asterisk.ari import ARIClient
from callcenter.asterisk.ari.events import parse_event
from callcenter.asterisk.stasis_args import QueueCall
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig, Record
from callcenter.recording import files
from callcenter.recording.naming import file_of, recording_name, split_path
from callcenter.recording.retention import Stored, expired, keep_days, prune
from callcenter.routing.policy import WaitingCall
from callcenter.storage.models import QueuedCall, Recording
from callcenter.storage.queued_calls import QueuedCallRepository

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
SAFE_NAME = re.compile(r"[a-z][a-z0-9_]*/[A-Za-z0-9_-][A-Za-z0-9._-]*")
HOSTILE = ["../../etc/passwd", "a/b", "$(reboot)", "x;y", "\n", "", ".", "..", ".hidden",
           "é", "a b", "x" * 300, "sales\x00", "${SHELL}"]


def recorded_config(**record: object) -> CallCenterConfig:
    config = load_config(EXAMPLE).config
    queues = dict(config.queues)
    queues["sales"] = queues["sales"].model_copy(update={"record": Record(**record)})
    return config.model_copy(update={"queues": queues})


def write_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x01\x00" * int(seconds * rate))


# -- names -------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_a_name_is_two_safe_segments_whatever_the_channel_id(leg: str) -> None:
    name = recording_name("sales", leg)
    assert SAFE_NAME.fullmatch(name) and ".." not in name, name
    assert name.count("/") == 1 and len(name) <= 160
    assert split_path(file_of(name, "wav")) is not None


@pytest.mark.parametrize("leg", ["0.", "a" * 80])
def test_an_id_whose_file_name_would_be_unsafe_becomes_a_digest(leg: str) -> None:
    # "0." + ".wav" holds "..", and 80 characters + ".wav" is longer than a segment.
    name = recording_name("sales", leg)
    assert name.startswith("sales/x") and split_path(file_of(name, "wav")) is not None


@pytest.mark.parametrize("leg", HOSTILE)
def test_an_unsafe_channel_id_becomes_a_digest(leg: str) -> None:
    name = recording_name("sales", leg)
    assert SAFE_NAME.fullmatch(name) and name.startswith("sales/x") and len(name) == 39, name
    assert recording_name("sales", leg) == name  # the same id, the same name


def test_asterisk_channel_ids_are_kept_as_they_are() -> None:
    assert recording_name("sales", "1733030000.12-o1") == "sales/1733030000.12-o1"
    assert recording_name("tech_support", "pbx1-1733030000.7-o3") == \
        "tech_support/pbx1-1733030000.7-o3"
    assert file_of("sales/1.2-o1", "wav16") == "sales/1.2-o1.wav16"


@pytest.mark.parametrize("path", ["../x.wav", "/etc/passwd", "a//b.wav", "sales/.x.wav",
                                  "sales/../x.wav", "", "a/b/c/d/e.wav", "sales/a b.wav"])
def test_an_unsafe_stored_path_is_refused(path: str) -> None:
    assert split_path(path) is None


# -- files -------------------------------------------------------------------------------


def test_measure_reads_the_wav_header_and_the_size(tmp_path: Path) -> None:
    write_wav(tmp_path / "sales" / "a.wav", 1.5)
    write_wav(tmp_path / "sales" / "b.wav16", 2.0, rate=16000)
    (tmp_path / "sales" / "c.gsm").write_bytes(b"\0" * 33 * 150)  # 150 frames of 20 ms
    info = files.measure(tmp_path, "sales/a.wav", "wav")
    assert info == files.FileInfo("sales/a.wav", 44 + 24000, 1.5)
    assert files.measure(tmp_path, "sales/b.wav16", "wav16").duration == 2.0  # type: ignore[union-attr]
    assert files.measure(tmp_path, "sales/c.gsm", "gsm").duration == pytest.approx(3.0)  # type: ignore[union-attr]
    assert files.measure(tmp_path, "sales/missing.wav", "wav") is None


def test_a_header_never_finalised_is_measured_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "sales" / "a.wav"
    write_wav(path, 1.0)
    raw = bytearray(path.read_bytes())
    raw[0:4] = b"JUNK"
    path.write_bytes(bytes(raw))
    assert files.measure(tmp_path, "sales/a.wav", "wav").duration == 1.0  # type: ignore[union-attr]


def test_nothing_is_read_or_removed_through_a_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "recording", tmp_path / "outside"
    write_wav(outside / "secret.wav", 1.0)
    (root / "sales").mkdir(parents=True)
    (root / "sales" / "link.wav").symlink_to(outside / "secret.wav")
    (root / "evil").symlink_to(outside, target_is_directory=True)
    for path in ("sales/link.wav", "evil/secret.wav"):
        assert files.measure(root, path, "wav") is None
        assert files.open_recording(root, path) is None
        assert files.remove(root, path) is False
    assert files.scan(root, frozenset({"sales", "evil"}), 100) == []
    assert (outside / "secret.wav").exists() and (root / "sales" / "link.wav").is_symlink()


def test_remove_takes_a_regular_file_only(tmp_path: Path) -> None:
    write_wav(tmp_path / "sales" / "a.wav", 0.1)
    (tmp_path / "sales" / "dir.wav").mkdir()
    assert files.remove(tmp_path, "sales/dir.wav") is False
    assert files.remove(tmp_path, "sales/a.wav") is True
    assert not (tmp_path / "sales" / "a.wav").exists()
    assert files.remove(tmp_path, "sales/a.wav") is False


def test_scan_lists_recordings_of_the_queues_asked_and_stops_at_its_limit(
        tmp_path: Path) -> None:
    for name in ("a.wav", "b.gsm", "c.wav16", "notes.txt", ".hidden.wav"):
        write_wav(tmp_path / "sales" / name, 0.1)
    write_wav(tmp_path / "support" / "d.wav", 0.1)
    os.utime(tmp_path / "sales" / "a.wav", (NOW.timestamp(), NOW.timestamp()))
    found = {f.path: f for f in files.scan(tmp_path, frozenset({"sales", "nope"}), 100)}
    assert sorted(found) == ["sales/a.wav", "sales/b.gsm", "sales/c.wav16"]
    assert found["sales/a.wav"].modified == NOW and found["sales/a.wav"].queue == "sales"
    assert len(files.scan(tmp_path, frozenset({"sales"}), 2)) <= 2


# -- retention, decided ------------------------------------------------------------------


def test_expired_is_older_than_the_queues_retention_oldest_first_bounded() -> None:
    keep = {"sales": 30, "support": 7}
    day = dt.timedelta(days=1)
    items = [Stored("sales", NOW - 31 * day, "sales/a.wav", 1),
             Stored("sales", NOW - 29 * day, "sales/b.wav", 2),
             Stored("sales", NOW - 40 * day, None, 3),
             Stored("support", NOW - 8 * day, "support/c.wav"),
             Stored("support", NOW - 30 * day + dt.timedelta(seconds=1), "support/d.wav"),
             Stored("billing", NOW - 999 * day, "billing/e.wav", 4)]
    assert [i.record_id or i.path for i in expired(items, keep, NOW, 10)] == \
        [3, 1, "support/d.wav", "support/c.wav"]
    assert [i.record_id for i in expired(items, keep, NOW, 2)] == [3, 1]
    exactly = Stored("sales", NOW - 30 * day, "sales/f.wav")
    assert expired([exactly], keep, NOW, 10) == []  # older than, not as old as


def test_only_queues_with_a_retention_prune() -> None:
    config = recorded_config(retention_days=14)
    assert keep_days(config) == {"sales": 14}
    assert keep_days(recorded_config(retention_days=None)) == {}
    assert keep_days(load_config(EXAMPLE).config) == {}


async def add_recording(sessions: async_sessionmaker[AsyncSession], channel: str,
                        started: dt.datetime, path: str | None) -> int:
    async with sessions.begin() as session:
        call_id = await QueuedCallRepository(session).enter_by_id(
            channel, "sales", entered_at=started)
        row = Recording(queued_call_id=call_id, queue="sales", agent="carmen",
                        name=f"sales/{channel}", format="wav", started_at=started,
                        ended_at=started, path=path, duration=0.1, size=1644)
        session.add(row)
        await session.flush()
        return row.id


async def test_prune_removes_old_files_and_records_and_logs_them(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession],
        caplog: pytest.LogCaptureFixture) -> None:
    config = recorded_config(retention_days=30)
    old, young = NOW - dt.timedelta(days=31), NOW - dt.timedelta(days=1)
    for name in ("old", "young", "stray", "fresh"):
        write_wav(tmp_path / "sales" / f"{name}.wav", 0.1)
    os.utime(tmp_path / "sales" / "stray.wav", (old.timestamp(), old.timestamp()))
    # The record's file is young on disk: the record's start is what counts for it.
    ids = {"old": await add_recording(sessions, "old", old, "sales/old.wav"),
           "young": await add_recording(sessions, "young", young, "sales/young.wav"),
           "gone": await add_recording(sessions, "gone", old, "sales/gone.wav")}
    # Its own logger's level: the CLI's tests leave "callcenter" at WARNING.
    caplog.set_level(logging.INFO, logger="callcenter.recording.retention")
    removed = await prune(sessions, tmp_path, config, NOW)
    assert sorted(removed.files) == ["sales/old.wav", "sales/stray.wav"]
    assert sorted(removed.records) == sorted([ids["old"], ids["gone"]])
    assert sorted(p.name for p in (tmp_path / "sales").iterdir()) == ["fresh.wav", "young.wav"]
    async with sessions() as session:
        assert list((await session.execute(select(Recording.id))).scalars()) == [ids["young"]]
        # The calls' history stays: retention takes recordings, not statistics.
        assert len((await session.execute(select(QueuedCall))).scalars().all()) == 3
    assert "removed recording sales/old.wav" in caplog.text
    assert "removed 2 recording record(s)" in caplog.text
    assert (await prune(sessions, tmp_path, config, NOW)) == type(removed)((), ())


async def test_prune_is_bounded_per_pass(tmp_path: Path,
                                         sessions: async_sessionmaker[AsyncSession]) -> None:
    config = recorded_config(retention_days=1)
    for n in range(5):
        write_wav(tmp_path / "sales" / f"r{n}.wav", 0.1)
        await add_recording(sessions, f"r{n}", NOW - dt.timedelta(days=10 - n), f"sales/r{n}.wav")
    first = await prune(sessions, tmp_path, config, NOW, limit=2)
    assert first.files == ("sales/r0.wav", "sales/r1.wav")  # the oldest first
    second = await prune(sessions, tmp_path, config, NOW, limit=10)
    assert len(second.files) == 3 and not list((tmp_path / "sales").iterdir())


# -- the recorder, against a fake ARI ----------------------------------------------------


class FakeARI:
    """Answers what the recorder asks: ``GET /asterisk/variable`` (the spool directory),
    ``POST /bridges/{id}/record`` (201 with a LiveRecording), ``POST
    /recordings/live/{name}/stop`` (204); records every request."""

    def __init__(self, spool: Path, record_status: int = 201) -> None:
        self.spool, self.record_status = spool, record_status
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.raw_path.split("?")[0],
                              dict(request.query)))
        if request.path == "/ari/asterisk/variable":
            return web.json_response({"value": str(self.spool)})
        if request.path.endswith("/record"):
            if self.record_status >= 400:
                return web.json_response({"message": "no"}, status=self.record_status)
            return web.json_response({"name": request.query["name"], "state": "queued",
                                      "format": request.query["format"]}, status=201)
        return web.Response(status=204)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[ARIClient]:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with ARIClient(f"http://127.0.0.1:{self.runner.addresses[0][1]}",
                                 username="cc", password="pw", app="cc-queue") as ari:
                yield ari
        finally:
            await self.runner.cleanup()


async def connected_caller(router: QueueRouter, channel: str, number: str,
                           name: str) -> Caller:
    async with router.sessions.begin() as session:
        row = await QueuedCallRepository(session).enter_by_id(channel, "sales", entered_at=NOW)
    waiting = WaitingCall(channel, "sales", NOW.timestamp(), 5, ("sales",), None, 0)
    return Caller(channel, QueueCall("sales"), row, waiting, bridge_id=f"cc-{channel}",
                  phase="connected", agent="carmen", agent_channel=f"{channel}-o1",
                  number=number, name=name)


async def test_a_hostile_caller_id_never_reaches_the_recording_and_the_file_is_linked(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    fake = FakeARI(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    async with fake.client() as ari, asyncio.TaskGroup() as tg:
        router = QueueRouter(recorded_config(), ari, sessions, node="pbx1", clock=lambda: NOW)
        router._tg = tg
        caller = await connected_caller(router, "1733030000.5", "$(rm -rf /);../../x",
                                        '"\n/etc/passwd ${SHELL}')
        await router.recorder.start(caller)
        [record] = [r for r in fake.requests if r[1].endswith("/record")]
        assert record == ("POST", "/ari/bridges/cc-1733030000.5/record", {
            "name": "sales/1733030000.5-o1", "format": "wav", "ifExists": "fail",
            "beep": "false", "terminateOn": "none"})
        assert not any("rm -rf" in str(r) or "passwd" in str(r) for r in fake.requests)
        # Asterisk wrote the file; the call ends; Asterisk reports the recording done.
        write_wav(tmp_path / "spool" / "recording" / "sales" / "1733030000.5-o1.wav", 2.5)
        ended = NOW + dt.timedelta(seconds=3)
        await router.recorder.stop(caller, ended)
        assert ("POST", "/ari/recordings/live/sales%2F1733030000.5-o1/stop", {}) in fake.requests
        assert router.recorder.on_event(parse_event({
            "type": "RecordingFinished", "application": "cc-queue",
            "recording": {"name": "sales/1733030000.5-o1", "state": "done"}}))
        async with asyncio.timeout(5):
            await router.recorder.linked("1733030000.5").wait()
    async with sessions() as session:
        [row] = (await session.execute(select(Recording))).scalars().all()
    assert (row.name, row.path, row.format, row.agent) == (
        "sales/1733030000.5-o1", "sales/1733030000.5-o1.wav", "wav", "carmen")
    assert (row.started_at, row.ended_at, row.duration, row.size) == (NOW, ended, 2.5, 40044)


async def test_a_refused_recording_leaves_no_row_and_the_call_goes_on(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    fake = FakeARI(tmp_path, record_status=500)
    async with fake.client() as ari:
        router = QueueRouter(recorded_config(), ari, sessions, node="pbx1", clock=lambda: NOW)
        caller = await connected_caller(router, "c9", "1555", "x")
        await router.recorder.start(caller)
        await router.recorder.stop(caller, NOW)  # nothing to stop: no request
    assert [r[1] for r in fake.requests] == ["/ari/asterisk/variable",
                                             "/ari/bridges/cc-c9/record"]
    async with sessions() as session:
        assert (await session.execute(select(Recording))).scalars().all() == []


async def test_a_queue_without_record_asks_asterisk_nothing(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    fake = FakeARI(tmp_path)
    async with fake.client() as ari:
        config = recorded_config(enabled=False)
        router = QueueRouter(config, ari, sessions, node="pbx1", clock=lambda: NOW)
        caller = await connected_caller(router, "c8", "1555", "x")
        await router.recorder.start(caller)
        await router.recorder.stop(caller, NOW)
    assert fake.requests == []


async def test_a_call_readopted_after_a_restart_stops_the_recording_its_row_names(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    fake = FakeARI(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    async with fake.client() as ari, asyncio.TaskGroup() as tg:
        router = QueueRouter(recorded_config(), ari, sessions, node="pbx1", clock=lambda: NOW)
        router._tg = tg
        caller = await connected_caller(router, "c7", "1555", "x")
        async with sessions.begin() as session:  # written by the previous process
            session.add(Recording(queued_call_id=caller.row, queue="sales", agent="carmen",
                                  name="sales/c7-o1", format="wav", started_at=NOW))
        write_wav(tmp_path / "spool" / "recording" / "sales" / "c7-o1.wav", 1.0)
        await router.recorder.stop(caller, NOW + dt.timedelta(seconds=1))
        assert ("POST", "/ari/recordings/live/sales%2Fc7-o1/stop", {}) in fake.requests
        router.recorder.on_event(parse_event({
            "type": "RecordingFinished", "recording": {"name": "sales/c7-o1"}}))
        async with asyncio.timeout(5):
            await router.recorder.linked("c7").wait()
    async with sessions() as session:
        [row] = (await session.execute(select(Recording))).scalars().all()
    assert (row.path, row.duration) == ("sales/c7-o1.wav", 1.0)


async def test_a_node_prunes_the_records_of_its_own_calls_only(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    config = recorded_config(retention_days=1)
    old = NOW - dt.timedelta(days=5)
    ids = {}
    for channel, node in (("mine", "pbx1"), ("theirs", "pbx2"), ("nobodys", None)):
        ids[channel] = await add_recording(sessions, channel, old, f"sales/{channel}.wav")
        async with sessions.begin() as session:
            call = (await session.execute(select(QueuedCall).where(
                QueuedCall.channel_id == channel))).scalar_one()
            call.node = node
    removed = await prune(sessions, tmp_path, config, NOW, node="pbx1")
    assert sorted(removed.records) == sorted([ids["mine"], ids["nobodys"]])
