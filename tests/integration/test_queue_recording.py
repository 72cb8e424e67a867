"""Call recording on real calls: a sipp caller through the example IVR plays a 1 kHz
tone (a PCMU capture written here) to carmen, whose baresip phone sends its 440 Hz tone
back; after a measured talk the caller hangs up first. The recording Asterisk wrote
(``<astspooldir>/recording``) is linked to the call's record: its length (from the WAV
header, stdlib ``wave``) is the talk time the records measure, and both tones are in it
(caller and agent mixed). A queue without ``record`` writes nothing; retention removes
a recording whose record is old, and nothing through a symlink.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import struct
import tempfile
import wave
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select

from callcenter.config.models import Record
from callcenter.storage.models import QueuedCall, Recording
from callcenter.testing.sipp import (
    PROVISIONAL,
    SippResult,
    in_dialog,
    invite,
    ok_to_request,
    write_dtmf_pcaps,
)
from tests.conftest import PBX
from tests.integration.router_harness import (
    SALES,
    RunningRouter,
    place_call,
    running,
    start_router,
    with_queue,
)

__all__ = ["running"]  # the fixture, imported for pytest

RECORD = Record(enabled=True, format="wav", retention_days=30)
CALLER_TONE = 1000.0  # Hz, what the caller plays
AGENT_TONE = 440.0  # Hz, what the test softphone sends (``ausine,440``)
#: The tone the caller plays lasts longer than any call here.
TONE_SECONDS = 20


def _ulaw(sample: int) -> int:
    """G.711 mu-law of a 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(magnitude.bit_length() - 8, 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def write_tone_pcap(path: Path, hz: float, seconds: int) -> None:
    """A capture of RTP PCMU packets (20 ms each) of a sine at *hz*, as sipp's
    ``play_pcap_audio`` replays it (addresses and ports are replaced by sipp's)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for n in range(seconds * 50):
        payload = bytes(_ulaw(int(12000 * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000)))
                        for i in range(160))
        rtp = struct.pack(">BBHII", 0x80, 0, (5000 + n) & 0xFFFF, 160 * n, 0x1234) + payload
        udp = struct.pack(">HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\0" * 12 + b"\x08\x00" + ip
        seconds_at, micros = divmod(n * 20_000, 1_000_000)
        out += struct.pack("<IIII", seconds_at, micros, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))


def tone_scenario(caller_id: str, keys_pcaps: Sequence[Path], keys: Sequence[int],
                  tone: Path, hold_ms: int) -> str:
    """The IVR keys, then the tone until the caller hangs up after *hold_ms*."""
    pressed = "".join(f'  <pause milliseconds="{delay}"/>\n'
                      f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
                      for delay, pcap in zip(keys, keys_pcaps, strict=True))
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="tone caller">\n'
            + invite(caller_id) + PROVISIONAL
            + '  <recv response="200" rtd="true" rrs="true"/>\n'
            + in_dialog("ACK", caller_id, 1) + pressed
            + '  <pause milliseconds="400"/>\n'
            + f'  <nop><action><exec play_pcap_audio="{tone}"/></action></nop>\n'
            + f'  <recv request="BYE" timeout="{hold_ms}" ontimeout="local_bye"/>\n'
            + ok_to_request(send_attrs='next="done"') + '  <label id="local_bye"/>\n'
            + in_dialog("BYE", caller_id, 2, send_attrs='retrans="500"')
            + '  <recv response="200" crlf="true"/>\n  <label id="done"/>\n</scenario>\n')


async def call_playing_a_tone(pbx: PBX, caller_id: str, hold_ms: int) -> SippResult:
    """A sipp caller to sales playing :data:`CALLER_TONE`; it hangs up *hold_ms* after
    the tone starts (Asterisk's BYE first would end it earlier)."""
    sipp = shutil.which("sipp")
    assert sipp is not None, "sipp is missing: apt-get install sip-tester"
    sip, media = pbx.sipp_ports()
    with tempfile.TemporaryDirectory(prefix="cc-rec-") as tmp:
        keys = write_dtmf_pcaps(SALES, Path(tmp))
        tone = Path(tmp) / "tone.pcap"
        write_tone_pcap(tone, CALLER_TONE, TONE_SECONDS)
        scenario = Path(tmp) / "caller.xml"
        scenario.write_text(tone_scenario(caller_id, keys, [k.delay_ms for k in SALES], tone,
                                          hold_ms))
        proc = await asyncio.create_subprocess_exec(
            sipp, f"127.0.0.1:{pbx.sip_port}", "-sf", str(scenario), "-s", "5551000",
            "-i", "127.0.0.1", "-p", str(sip), "-mi", "127.0.0.1", "-mp", str(media),
            "-m", "1", "-l", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, cwd=tmp)
        out, err = await asyncio.wait_for(proc.communicate(), 70)
    return SippResult(proc.returncode or 0, out.decode(errors="replace"),
                      err.decode(errors="replace"))


def tone_level(samples: Sequence[int], rate: int, hz: float) -> float:
    """Amplitude of the *hz* component of *samples* (Goertzel), same scale as samples."""
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(samples)


def read_samples(path: Path) -> tuple[list[int], int, float]:
    """16-bit mono samples, rate and duration of a WAV file, from its header."""
    with wave.open(str(path), "rb") as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
        frames = audio.readframes(audio.getnframes())
        rate = audio.getframerate()
        duration = audio.getnframes() / rate
    return list(struct.unpack(f"<{len(frames) // 2}h", frames)), rate, duration


async def recordings_of(running: RunningRouter, queued: QueuedCall) -> list[Recording]:
    async with running.router.sessions() as session:
        return list((await session.execute(select(Recording).where(
            Recording.queued_call_id == queued.id))).scalars())


async def test_an_answered_call_is_recorded_both_sides_for_its_talk_time(
        clean_pbx: PBX) -> None:
    config = with_queue(clean_pbx.loaded.config, "sales", record=RECORD)
    caller = "15558870001"
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        result, call = await asyncio.gather(call_playing_a_tone(clean_pbx, caller, 6000),
                                            carmen.call())
        assert result.returncode == 0, result.stderr
        assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
        queued = await running.queued(caller)
        channel = queued.channel_id
        async with asyncio.timeout(15):
            await running.router.recorder.linked(channel).wait()
        [recording] = await recordings_of(running, queued)
        root = await running.router.recorder.recordings_dir()
    assert root == clean_pbx.instance.dir / "spool" / "recording"
    assert (queued.outcome, queued.agent) == ("answered", "carmen")
    assert queued.answered_at is not None and queued.ended_at is not None
    # Named from the queue and the answered leg (the caller's channel id + "-o1") only.
    assert recording.name == f"sales/{channel}-o1"
    assert (recording.path, recording.format) == (f"sales/{channel}-o1.wav", "wav")
    assert (recording.queue, recording.agent) == ("sales", "carmen")
    assert recording.ended_at == queued.ended_at
    path = root / recording.path
    assert path.is_file() and not path.is_symlink()
    assert recording.size == path.stat().st_size
    samples, rate, duration = read_samples(path)
    assert recording.duration is not None and abs(recording.duration - duration) < 0.001
    # The talk time the records measure; the recording starts when ARI is asked (its
    # row's started_at) and stops at the call's end: the gap plus two frames of slack.
    talk = (queued.ended_at - queued.answered_at).total_seconds()
    assert talk > 4.0, talk
    late_start = (recording.started_at - queued.answered_at).total_seconds()
    assert 0 <= late_start < 1.0, late_start
    tolerance = late_start + 0.3
    assert abs(duration - talk) <= tolerance, (duration, talk, tolerance)
    # Both sides mixed: the caller's 1 kHz and carmen's 440 Hz, each well above the
    # level of a tone neither sends (2 kHz), over the middle of the call.
    middle = samples[int(rate * 1.0):int(rate * (duration - 1.0))]
    rms = math.sqrt(sum(x * x for x in middle) / len(middle))
    assert rms > 300, rms
    floor = tone_level(middle, rate, 2000.0)
    caller_level = tone_level(middle, rate, CALLER_TONE)
    agent_level = tone_level(middle, rate, AGENT_TONE)
    assert caller_level > 10 * max(floor, 1.0), (caller_level, floor)
    assert agent_level > 10 * max(floor, 1.0), (agent_level, floor)


async def test_a_queue_without_record_writes_nothing(clean_pbx: PBX,
                                                     running: RunningRouter) -> None:
    assert clean_pbx.loaded.config.queues["sales"].record is None
    caller = "15558870002"
    root = await running.router.recorder.recordings_dir()
    assert root is not None
    before = sorted(p for p in root.rglob("*")) if root.exists() else []
    async with clean_pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        result, call = await asyncio.gather(place_call(clean_pbx, caller, hold_ms=2000),
                                            carmen.call())
        assert result.returncode == 0, result.stderr
        assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
        queued = await running.queued(caller)
    assert queued.outcome == "answered"
    assert await recordings_of(running, queued) == []
    after = sorted(p for p in root.rglob("*")) if root.exists() else []
    assert after == before
    assert not running.router.recorder.linked(queued.channel_id).is_set()


async def test_retention_removes_an_old_recording_and_nothing_through_a_symlink(
        clean_pbx: PBX, tmp_path: Path) -> None:
    """Ages are faked by the record's start and a file's mtime, not by waiting."""
    config = with_queue(clean_pbx.loaded.config, "sales", record=RECORD)
    async with start_router(clean_pbx, config) as running:
        router = running.router
        async with asyncio.timeout(10):  # the router's own pass at start is done
            await router.recorder.pruned.wait()
        root = await router.recorder.recordings_dir()
        assert root == clean_pbx.instance.dir / "spool" / "recording"
        sales = root / "sales"
        sales.mkdir(parents=True, exist_ok=True)
        now = router.clock()
        old, young = now - timedelta(days=31), now - timedelta(days=29)
        outside = tmp_path / "precious.wav"
        outside.write_bytes(b"not a recording")
        files = {name: sales / f"test-retention-{name}.wav"
                 for name in ("old", "young", "stray", "fresh-stray")}
        for file in files.values():
            file.write_bytes(b"RIFF")
        os.utime(files["stray"], (old.timestamp(), old.timestamp()))
        link = sales / "test-retention-link.wav"
        link.unlink(missing_ok=True)
        link.symlink_to(outside)
        os.utime(link, (old.timestamp(), old.timestamp()), follow_symlinks=False)
        async with router.sessions.begin() as session:
            rows = {}
            for name, started in (("old", old), ("young", young), ("link", old)):
                call = QueuedCall(channel_id=f"test-retention-{name}", queue="sales",
                                  entered_at=started, ended_at=started)
                session.add(call)
                await session.flush()
                row = Recording(queued_call_id=call.id, queue="sales", agent="carmen",
                                name=f"sales/test-retention-{name}", format="wav",
                                started_at=started, ended_at=started,
                                path=f"sales/test-retention-{name}.wav", duration=1.0, size=4)
                session.add(row)
                await session.flush()
                rows[name] = row.id
        removed = await router.recorder.prune()
        async with router.sessions() as session:
            left = set((await session.execute(select(Recording.id))).scalars())
        async with router.sessions.begin() as session:  # the calls made up here go
            await session.execute(delete(QueuedCall).where(
                QueuedCall.channel_id.like("test-retention-%")))
    assert sorted(removed.files) == ["sales/test-retention-old.wav",
                                     "sales/test-retention-stray.wav"]
    assert sorted(removed.records) == sorted([rows["old"], rows["link"]])
    assert rows["young"] in left and rows["old"] not in left and rows["link"] not in left
    assert not files["old"].exists() and not files["stray"].exists()
    assert files["young"].exists() and files["fresh-stray"].exists()
    # The symlink's record went; the link was not followed: its target is untouched.
    assert outside.read_bytes() == b"not a recording"
    for file in (files["young"], files["fresh-stray"], link):
        file.unlink()
