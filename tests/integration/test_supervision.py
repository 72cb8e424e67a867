"""Supervision on the real PBX: a real caller (sipp, through the example IVR to sales)
talking with carmen (baresip, auto-answer); bob, made supervisor of sales for the router,
dials the supervisor codes from his own authenticated phone (sipp with digest auth, as
``tests/integration/agent_dialer.py``) or is rung by :meth:`Supervision.supervise` (the
API's entry, baresip answering).

Checked each time against Asterisk itself: the snoop channel (``GET /channels``: our id,
named ``Snoop/<carmen's leg>-...``) with the spy/whisper directions the mode asks for (its
StasisStart args as Asterisk echoed them), the supervisor and the snoop in one bridge, and,
after the supervisor or the call ends first, no snoop, no supervisor leg and no bridge left
(``start_router`` asserts no bridge, ``clean_pbx`` no channel). The sound too: what
carmen's phone heard and what the caller was sent hold bob's tone exactly as the mode says
(listen: neither, whisper: carmen only, barge: both). Refused: alice (an agent,
not a supervisor) and bob for an agent not on a call hear the prompt and are hung up; no
snoop is ever created for them (AMI ``Newchannel``).
"""

from __future__ import annotations

import asyncio
import math
import sys
import uuid
import wave
from array import array
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ari_apps.supervision import Mode, Session, Supervision, SupervisionRefused
from callcenter.agents.state import AgentStatus
from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.ari import ARIClient, ARINotFound, StasisStart
from callcenter.config.models import CallCenterConfig
from callcenter.testing.sipp import SippResult
from tests.conftest import PBX
from tests.integration.agent_dialer import agent_dials
from tests.integration.router_harness import RunningRouter, place_call, start_router

CARMEN = "1000"  # carmen's extension; she serves sales (sales 9)
ALICE = "1001"


def supervised(config: CallCenterConfig) -> CallCenterConfig:
    """The example with bob (tech support: not a sales agent) supervising sales."""
    agents = dict(config.agents)
    agents["bob"] = agents["bob"].model_copy(update={"role": "supervisor",
                                                     "supervises": ("sales",)})
    return config.model_copy(update={"agents": agents})


async def dial(pbx: PBX, number: str, agent: str, hold_ms: int) -> SippResult:
    sip, media = pbx.sipp_ports()
    return await agent_dials(number, agent=agent, password=pbx.agent_password(agent),
                             sip_port=pbx.sip_port, local_port=sip, media_port=media,
                             hold_ms=hold_ms, timeout=40)


async def until(supervision: Supervision, predicate: Callable[[], bool],
                timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        await supervision.wait_until(predicate)


def joined(supervision: Supervision) -> Session | None:
    return next((s for s in supervision.sessions.values() if s.joined.is_set()), None)


@asynccontextmanager
async def carmen_on_a_call(pbx: PBX, running: RunningRouter, caller: str,
                           hold_ms: int, *, agent_hangs_up: bool = False
                           ) -> AsyncIterator[asyncio.Task[SippResult]]:
    """A sales caller talking with carmen; yields the caller's sipp task, and on exit
    checks the call went on to its normal end (answered by carmen): the caller hangs up
    after ``hold_ms``, or, with ``agent_hangs_up``, carmen hangs up on exit (the caller
    gets Asterisk's BYE; ``hold_ms`` is then only a bound)."""
    async with pbx.agent_phone("carmen") as carmen:
        await running.login("carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        call = asyncio.create_task(place_call(pbx, caller, hold_ms=hold_ms))
        phone = asyncio.create_task(carmen.call())
        await running.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)
        yield call
        if agent_hangs_up:
            await carmen.hangup()
        result, seen = await call, await phone
        assert result.returncode == 0, result.stderr[-800:]
        assert result.remote_hangup == agent_hangs_up, result.stderr[-800:]
        assert seen.answered, seen.stderr
    queued = await running.queued(caller)
    assert (queued.agent, queued.outcome) == ("carmen", "answered")


async def gone(running: RunningRouter, session: Session) -> None:
    """Nothing of the session is left in Asterisk."""
    ari = running.ari
    for channel_id in (session.snoop_id, session.channel_id):
        with pytest.raises(ARINotFound):
            await ari.channels.get(channel_id)
    with pytest.raises(ARINotFound):
        await ari.bridges.get(session.bridge_id)


async def check_snoop(running: RunningRouter, session: Session, spy: str,
                      whisper: str, supervisor_channel: str | None = None) -> None:
    """The snoop exists on carmen's leg, in one bridge with the supervisor."""
    ari = running.ari
    caller = next(c for c in running.router.callers.values() if c.agent == "carmen")
    assert session.join.agent_channel == caller.agent_channel
    snoop = await ari.channels.get(session.snoop_id)
    assert snoop.name.startswith(f"Snoop/{caller.agent_channel}-"), snoop.name
    assert session.snoop_args == ("snoop", f"spy={spy}", f"whisper={whisper}",
                                  "supervisor=bob", "agent=carmen")
    bridge = await ari.bridges.get(session.bridge_id)
    assert set(bridge.channels) == {session.channel_id, session.snoop_id}
    if supervisor_channel is not None:
        assert session.channel_id == supervisor_channel
    # The call itself is untouched: caller and carmen still alone in the call's bridge.
    call_bridge = await ari.bridges.get(caller.bridge_id)
    assert set(call_bridge.channels) == {caller.channel_id, caller.agent_channel}


async def test_listen_then_the_supervisor_hangs_up_first(clean_pbx: PBX) -> None:
    config = supervised(clean_pbx.loaded.config)
    async with start_router(clean_pbx, config) as running:
        supervision = running.router.supervision
        async with carmen_on_a_call(clean_pbx, running, "15558890001", hold_ms=30000,
                                    agent_hangs_up=True):
            bob = asyncio.create_task(dial(clean_pbx, f"*80{CARMEN}", "bob", hold_ms=3000))
            await until(supervision, lambda: joined(supervision) is not None)
            session = joined(supervision)
            assert session is not None and session.join.mode == "listen"
            await check_snoop(running, session, "both", "none")
            result = await bob
            assert result.returncode == 0 and not result.remote_hangup, result.stderr[-800:]
            await until(supervision, lambda: not supervision.sessions)
            assert session.ended_by == "supervisor"
            await gone(running, session)
            # carmen and the caller talk on after the supervisor left.
            assert running.router.states["carmen"].status is AgentStatus.ON_CALL


async def test_whisper_ends_when_the_call_ends(clean_pbx: PBX) -> None:
    config = supervised(clean_pbx.loaded.config)
    async with start_router(clean_pbx, config) as running:
        supervision = running.router.supervision
        async with carmen_on_a_call(clean_pbx, running, "15558890002", hold_ms=10000):
            # Dialled by carmen's extension's name on the keypad: c-a-r-m-e-n.
            bob = asyncio.create_task(dial(clean_pbx, "*81227636", "bob", hold_ms=40000))
            await until(supervision, lambda: joined(supervision) is not None)
            session = joined(supervision)
            assert session is not None and session.join.mode == "whisper"
            await check_snoop(running, session, "both", "out")
        # The caller hung up: the call ended, so did the snoop and bob's leg.
        result = await bob
        assert result.returncode == 0 and result.remote_hangup, result.stderr[-800:]
        await until(supervision, lambda: not supervision.sessions)
        assert session.ended_by == "call"
        await gone(running, session)


@asynccontextmanager
async def ear(pbx: PBX, channel_id: str) -> AsyncIterator[tuple[asyncio.Event, Path]]:
    """Record what ``channel_id`` is sent (what its caller hears): a snoop (``spy=out``)
    into an app of the test's own, recorded to a WAV; yields (recording finished, file).
    The recording ends when the channel does."""
    app = "cc-test-ear"
    tag = uuid.uuid4().hex[:8]
    snoop_id, name = f"test-ear-{tag}", f"ear-{tag}"
    creds = pbx.instance.credentials
    finished = asyncio.Event()
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app=app) as ari, ari.events() as events:

        async def record() -> None:
            async for event in events:
                if isinstance(event, StasisStart) and event.channel.id == snoop_id:
                    await ari.request("POST", f"/channels/{snoop_id}/record", params={
                        "name": name, "format": "wav", "ifExists": "overwrite"})
                elif event.type in ("RecordingFinished", "RecordingFailed"):
                    finished.set()
                    return

        # ARI records into <astspooldir>/recording, which a fresh instance does not have.
        (pbx.instance.dir / "spool" / "recording").mkdir(exist_ok=True)
        reader = asyncio.create_task(record())
        try:
            await ari.applications.get(app)
            await ari.channels.snoop(channel_id, snoop_id=snoop_id, spy="out", app=app)
            yield finished, pbx.instance.dir / "spool" / "recording" / f"{name}.wav"
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def loud_share(wav: Path, threshold: float = 1000.0) -> float:
    """Share of a 16-bit PCM WAV's 20 ms windows whose RMS is above ``threshold`` (a tone
    at ~10000 RMS is loud, silence and codec noise are not); 0 for an empty file."""
    with wave.open(str(wav), "rb") as f:
        assert f.getsampwidth() == 2, f.getparams()
        window = f.getframerate() * f.getnchannels() // 50
        samples = array("h", f.readframes(f.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    chunks = [samples[i:i + window] for i in range(0, len(samples) - window + 1, window)]
    loud = sum(math.sqrt(sum(x * x for x in c) / len(c)) > threshold for c in chunks)
    return loud / len(chunks) if chunks else 0.0


@pytest.mark.parametrize(("mode", "spy", "whisper", "agent_hears", "caller_hears"), [
    ("listen", "both", "none", False, False),
    ("whisper", "both", "out", True, False),
    ("barge", "both", "both", True, True),
])
async def test_api_rings_the_supervisor_whose_voice_reaches_whom_the_mode_says(
        clean_pbx: PBX, ami: AMIClient, mode: Mode, spy: str, whisper: str,
        agent_hears: bool, caller_hears: bool) -> None:
    """bob's baresip sends a 440 Hz tone; carmen's is muted (she sends silence); the caller
    sends 10 s of silence (a Local channel into ``cc-queue,sales`` whose other side plays
    ``silence/10``: a whisper is mixed into the audio the agent is sent, so the caller's
    side must be sending some, as real phones do). What carmen's phone heard (its WAV)
    and what the caller's channel was sent (recorded through a snoop of the test's own)
    hold bob's tone exactly when the mode lets each of them hear the supervisor."""
    config = supervised(clean_pbx.loaded.config)
    async with start_router(clean_pbx, config) as running, \
            clean_pbx.agent_phone("bob") as bob, clean_pbx.agent_phone("carmen") as carmen:
        supervision = running.router.supervision
        await running.login("carmen")
        await running.wait_state("carmen", AgentStatus.AVAILABLE)
        caller = f"1555889001{len(mode)}"
        await ami.action("Originate", Channel="Local/sales@cc-queue/n",
                         Application="Playback", Data="silence/10",
                         CallerID=f"<{caller}>", Async="true")
        agent_call = asyncio.create_task(carmen.call())
        await running.wait_state("carmen", AgentStatus.ON_CALL, timeout=30)
        await carmen.mute()
        caller_channel = next(iter(running.router.callers))
        async with ear(clean_pbx, caller_channel) as (recorded, caller_wav):
            # Refused from the API without ringing anyone: alice is no supervisor.
            with pytest.raises(SupervisionRefused) as refused:
                await supervision.supervise("alice", "carmen", mode)
            assert refused.value.reason == "not_supervisor"
            session = await supervision.supervise("bob", "carmen", mode)
            assert session.joined.is_set() and session.channel_id.startswith("cc-svcall-")
            await check_snoop(running, session, spy, whisper)
            # The caller hangs up: the call ends, and with it bob's leg.
            supervisor_call = await bob.call()
            assert supervisor_call.answered, supervisor_call.stderr
            heard_call = await agent_call
            assert heard_call.answered, heard_call.stderr
            await until(supervision, lambda: not supervision.sessions)
            assert session.ended_by == "call"
            await gone(running, session)
            (heard,) = carmen.heard()
            agent_loud = loud_share(heard)
            async with asyncio.timeout(10):
                await recorded.wait()
            caller_loud = loud_share(caller_wav)
            caller_wav.unlink()
    print(f"loud 20 ms windows ({mode}): carmen {agent_loud:.0%}, caller {caller_loud:.0%}")
    # bob is in the call for most of its 10 s: his tone fills most of what a party hears
    # when the mode lets it through, and (next to) none of it otherwise.
    for who, loud, hears in (("carmen", agent_loud, agent_hears),
                             ("the caller", caller_loud, caller_hears)):
        if hears:
            assert loud > 0.4, f"{who} did not hear bob ({mode}): {loud:.0%} loud"
        else:
            assert loud < 0.03, f"{who} heard bob ({mode}): {loud:.0%} loud"
    queued = await running.queued(caller)
    assert (queued.agent, queued.outcome) == ("carmen", "answered")


async def test_refused_codes_create_no_snoop(clean_pbx: PBX, ami: AMIClient) -> None:
    config = supervised(clean_pbx.loaded.config)
    created: list[str] = []
    async with start_router(clean_pbx, config) as running:
        supervision = running.router.supervision
        with ami.subscribe("Newchannel") as events:

            async def names() -> None:
                async for event in events:
                    created.append(event.get("Channel", ""))

            watcher = asyncio.create_task(names())
            try:
                async with carmen_on_a_call(clean_pbx, running, "15558890004", hold_ms=30000,
                                            agent_hangs_up=True):
                    # alice's phone (an agent, not a supervisor) tries to whisper to carmen.
                    result = await dial(clean_pbx, f"*81{CARMEN}", "alice", hold_ms=20000)
                    assert result.returncode == 0 and result.remote_hangup, result.stderr[-800:]
                    # bob may supervise alice (sales 3: she serves sales), but she is not
                    # on a call.
                    result = await dial(clean_pbx, f"*80{ALICE}", "bob", hold_ms=20000)
                    assert result.returncode == 0 and result.remote_hangup, result.stderr[-800:]
                    await until(supervision, lambda: len(supervision.refusals) == 2)
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
    assert [reason for _, reason in supervision.refusals] == ["not_supervisor", "not_on_call"]
    assert any(name.startswith("PJSIP/alice-") for name in created), created
    assert not [name for name in created if name.startswith("Snoop/")], created
