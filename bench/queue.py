"""The queue router against Asterisk's own app_queue, on one real Asterisk 22, same load.

    python bench/queue.py [--quick] [--repeats N] [--contenders app_queue,ari_floor,router]
                          [--agents N] [--workdir DIR]

Sizes are the fields of :class:`Options` (defaults below; ``--quick``: 12 agents, 4 and
8 calls/s, 10 concurrent callers, one repeat, about 20 s per contender).

Issue 6 §7: "highest calls/s with zero failed calls, and the time from a caller entering
the queue to the agent's phone ringing (p50/p99) at 200 concurrent calls. Goal: match
app_queue (ratio >= 1.0)."

What runs where (all on 127.0.0.1, this machine, nothing pinned):

* **Asterisk 22** (the cached ``callcenter asterisk install``) in a temporary home on free
  loopback ports: the product's runtime config plus the bench's own files
  (``bench/queue_pbx.py``): 220 PJSIP endpoints whose AORs have static contacts
  on the sipp agent processes, queue ``bench`` in ``queues.conf`` (app_queue:
  ``rrmemory``, ``ringinuse=no``, every agent a member, wrap-up 0, ring timeout 15 s),
  and one caller extension per contender: ``Answer()`` then ``Queue(bench)`` (7100),
  ``Stasis(cc-queue,bench,...)`` (7200) or ``Stasis(cc-floor)`` (7210; its variants
  7211-7214, each its own Stasis app).
* **the agents' phones**: 4 sipp UAS processes, the agents dealt over them (agent i's
  contact is ``sip:agent00i@127.0.0.1:<port of process i mod 4>``; one process serves
  many phones as one PBX serves many: sipp runs each call on its own): each call
  rings 100 ms (180), is answered (200), talks 500 ms ((b): 10 s) and the agent
  hangs up (BYE); a CANCEL while ringing gets 200 + 487. Started for each step and stopped
  after it, so their final counts (calls received, completed, failed) are the step's.
* **the callers**: one sipp UAC process per step (``-r RATE -m COUNT -l LIMIT``): INVITE,
  200 (``Answer()``), ACK, then wait for Asterisk's BYE (sent when the agent hangs up);
  a caller with no BYE 10 s after its call should have ended hangs up: a failed call.
* **the contenders** (``Contender``; default the first three): ``app_queue`` (nothing to
  start: Asterisk's own), ``ari_floor`` (``bench/queue_ari_floor.py`` in its own process:
  the least any ARI queue router makes Asterisk do per caller, a mixing bridge with MOH,
  ``channels/create`` + ``dial``, the answered leg into the bridge, hang-ups both ways; no
  database, the next free agent from a list; on the project's ARI client) and ``router``
  (``bench/queue_router_proc.py``: ``ari_apps.queue_router.QueueRouter`` in
  its own process, a callcenter config of the same agents as ``device: PJSIP/<endpoint>``
  agents, queue ``bench`` longest_idle, wrap-up 0, ring timeout 15 s, every agent logged
  in through ``router.store.apply(name, Login(), now)`` + ``router.agent_changed``).
  On demand, the floor's variants, one change each: ``ari_floor_silent`` (bridge, no
  MOH), ``ari_floor_nobridge`` (the caller silent in Stasis, one bridge at answer),
  ``ari_floor_chanmoh`` (MOH on the caller's channel, one bridge at answer),
  ``ari_floor_raw`` (a bare aiohttp client with stdlib json instead of ours).
* **this driver**: starts the processes, reads AMI (one connection, filtered to the
  three events below) and ``/proc``; its event loop does not time anything.

Measured from AMI events both contenders make Asterisk emit, stamped by Asterisk
(``timestampevents=yes``; ``bench/queue_measure.py``): the caller's ``Newexten`` of the
queue application (``Queue`` / ``Stasis``) to the first ``DialBegin`` of an agent leg
linked to that caller (``DestLinkedid``), and ``DialEnd ANSWER`` of that leg.

(a) Capacity, ``--repeats`` (3) repeats of a ramp over 10 ... 240 calls/s, 2 s of calls
    per step, the contenders interleaved at each rate (order rotated per repeat). A step fails
    a call unless every count agrees that it went caller -> queue -> agent answered ->
    completed: sipp callers (completed, failed), AMI (entered, rung, answered) and sipp
    agents (completed, failed); no channel may be left. A step is *clean* with zero failed
    calls and p99 entry->ring under 1 s (past capacity callers pile up in the queue; a
    bounded step can still complete them all, seconds late). A contender leaves a repeat's
    ramp at its first unclean step; its capacity is the last clean rate. An unclean step
    while other processes kept >= 0.25 core busy is run again once.
(b) Latency at 200 concurrent callers: 300 calls offered at 20/s, each talking 10 s
    (sipp ``-l 200``), so from the moment the first call ends 200 calls are in progress;
    entry->ring p50 and p99 over the callers who entered from then on (about 100), per
    contender, per repeat (2 repeats). 20 calls/s is far inside app_queue's capacity and
    at the low end of the router's measured one (20-30 calls/s in the run recorded in
    bench/README.md): the figure is the time to ring an agent with 200 live calls.

Before any figure, sanity calls: two calls per contender reach an agent who answers; a
phone ringing longer than ``Dial()``'s 1 s timeout is CANCELled and ends that call
cleanly (200, 487, ACK); a caller nobody hangs up gives up and counts as failed.

Ratios are taken within a repeat (the contenders saw the same minute of the machine),
then the median and range over repeats, for each ARI contender: capacity contender /
app_queue (goal >= 1.0) and latency app_queue / contender (>= 1.0: it rings the agent at
least as fast). Then the CPU per call of Asterisk alone (and of the contender's process)
over each contender's clean steps, and the floor's arithmetic: Asterisk's ms/call under
the ARI floor x app_queue's capacity, against the machine's cores (more than it has: no
ARI router can match app_queue here, whatever its own cost).

Bounds: every step is bounded in calls (``rate x 2 s``), in time (callers give up 10 s
after their call should have ended, sipp ``-timeout``, a wait of at most 20 s for
Asterisk to have no channel left), and the whole of (a) by a 420 s deadline (a repeat
cut by it is left out); about 7 minutes in all; every process is stopped on every exit, Ctrl-C
included.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, and this file is named
# like the standard library's ``queue`` (which asyncio's thread pool imports): drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import abc
import argparse
import asyncio
import contextlib
import csv
import importlib.util
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: import the repo's packages
    sys.path.insert(0, str(REPO))

from bench.ivr import OtherLoad, _env, _rotated, cpu_seconds, free_udp_block
from bench.measure import OTHER_LOAD_RETRY_CORES, Spread, paired_ratios, verdict
from bench.queue_ari_floor import READY as FLOOR_READY
from bench.queue_measure import (
    WAIT_LIMIT_MS,
    QueueStep,
    asterisk_ms_per_call,
    caller_times,
    contender_ms_per_call,
    cores_needed,
    highest_clean,
)
from bench.queue_pbx import (
    QUEUE,
    QueueBenchInstance,
    agent_names,
    agent_scenario,
    caller_dialplan,
    caller_scenario,
    group_agents,
    pjsip_conf,
    queues_conf,
    router_config_yaml,
    stasis_line,
)
from bench.queue_router_proc import MISSING, READY
from callcenter.asterisk.ami.client import AMIClient, AMIMessage, AMITimeoutError
from callcenter.asterisk.instance import InstanceSettings
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port

__all__ = ["AppQueue", "BenchError", "Contender", "ContenderUnavailable", "Options", "Report",
           "RouterContender", "run_bench"]

SIPP = shutil.which("sipp") or "/usr/bin/sipp"


class BenchError(RuntimeError):
    """The benchmark could not set up, or a process misbehaved."""


class ContenderUnavailable(BenchError):
    """A contender cannot run here (its code has not landed)."""


@dataclass(frozen=True)
class Options:
    agents: int = 220
    agent_processes: int = 4
    ring_ms: int = 100
    talk_ms: int = 500
    rates: tuple[float, ...] = (10, 20, 30, 40, 60, 80, 120, 160, 200, 240)
    step_seconds: float = 2.0
    repeats: int = 3
    concurrency: int = 200
    #: (b): 20 calls/s of 10 s each hold 200 calls in progress once the first ends.
    hold_rate: float = 20.0
    hold_talk_ms: int = 10_000
    hold_calls: int = 300
    hold_repeats: int = 2
    contenders: tuple[str, ...] = ("app_queue", "ari_floor", "router")
    #: Global bound on (a), seconds.
    budget: float = 420.0
    #: Keep logs and sipp traces here (default: a temporary directory, removed).
    workdir: Path | None = None
    #: Run the router on SQLite's default deferred BEGIN (shows its "database is locked").
    router_deferred_begin: bool = False

    @classmethod
    def quick(cls, contenders: tuple[str, ...] = ("app_queue", "ari_floor", "router")) -> Options:
        """A smoke run: a dozen agents, two small steps, ten concurrent callers."""
        return cls(agents=12, agent_processes=2, ring_ms=100, talk_ms=500, rates=(4, 8),
                   step_seconds=2.0, repeats=1, concurrency=10, hold_rate=10,
                   hold_talk_ms=1500, hold_calls=30, hold_repeats=1, contenders=contenders,
                   budget=60)


# -- contenders ------------------------------------------------------------------------

@dataclass
class BenchPBX:
    """What a contender needs of the bench's PBX."""

    instance: QueueBenchInstance
    workdir: Path
    agents: list[str]


class Contender(abc.ABC):
    """One side of the comparison: how callers reach it, what runs for it.

    ``app`` is the dialplan application whose ``Newexten`` marks a caller entering the
    queue; ``number`` the extension callers dial in ``bench-queue``; ``dialplan_line``
    what that extension runs after ``Answer()``. ``running`` keeps the contender up for
    the whole run and yields the pid of its own process (None: it lives in Asterisk)."""

    key: str
    label: str
    app: str
    number: str

    def check(self) -> None:
        """Raise ContenderUnavailable when this contender cannot run here."""

    @abc.abstractmethod
    def dialplan_line(self) -> str: ...

    @abc.abstractmethod
    def running(self, pbx: BenchPBX) -> contextlib.AbstractAsyncContextManager[int | None]: ...


class AppQueue(Contender):
    """Asterisk's own app_queue: queue ``bench`` of ``queues.conf``."""

    key, label, app, number = "app_queue", "app_queue", "Queue", "7100"

    def dialplan_line(self) -> str:
        return f"Queue({QUEUE},,,,60)"

    @contextlib.asynccontextmanager
    async def running(self, pbx: BenchPBX) -> AsyncIterator[int | None]:
        _, out = await asyncio.to_thread(pbx.instance.cli, f"queue show {QUEUE}")
        ready = sum(f"{agent} (PJSIP/{agent}) (ringinuse disabled) (Not in use)" in out
                    for agent in pbx.agents)
        if f"{QUEUE} has 0 calls" not in out or ready != len(pbx.agents):
            raise BenchError(f"app_queue: queue {QUEUE} should have {len(pbx.agents)} "
                             f"members not in use, 'queue show' says:\n{out[:1500]}")
        yield None


class RouterContender(Contender):
    """The ARI queue router (``ari_apps.queue_router``) in its own process."""

    key, label, app, number = "router", "ARI router", "Stasis", "7200"
    queue_app = "cc-queue"

    def __init__(self, *, deferred_begin: bool = False) -> None:
        self.deferred_begin = deferred_begin

    def check(self) -> None:
        if importlib.util.find_spec("ari_apps.queue_router") is None:
            raise ContenderUnavailable(MISSING)

    def dialplan_line(self) -> str:
        return stasis_line(self.queue_app)

    @contextlib.asynccontextmanager
    async def running(self, pbx: BenchPBX) -> AsyncIterator[int | None]:
        self.check()
        config = pbx.workdir / "router-config"
        config.mkdir(exist_ok=True)
        (config / "bench.yaml").write_text(router_config_yaml(pbx.agents, number=self.number))
        async with helper_process(
                ["bench.queue_router_proc", "--home", str(pbx.instance.home),
                 "--config", str(config), *(["--deferred"] if self.deferred_begin else [])],
                pbx.workdir / "router.log", READY, "the router process") as pid:
            yield pid


class AriFloor(Contender):
    """The floor of any ARI queue router (``bench/queue_ari_floor.py``) in its own
    process: per caller only the ARI requests any router must make, no database, the
    next free agent from a list. ``ari_floor`` holds the caller as the product does
    (a mixing bridge with music on hold) on the project's ARI client; the variants
    change one thing each: the hold, or the client."""

    key, label, app, number = "ari_floor", "ARI floor", "Stasis", "7210"
    stasis_app, client, hold = "cc-floor", "project", "moh"

    def dialplan_line(self) -> str:
        return f"Stasis({self.stasis_app})"

    @contextlib.asynccontextmanager
    async def running(self, pbx: BenchPBX) -> AsyncIterator[int | None]:
        async with helper_process(
                ["bench.queue_ari_floor", "--home", str(pbx.instance.home),
                 "--app", self.stasis_app, "--agents", ",".join(pbx.agents),
                 "--client", self.client, "--hold", self.hold],
                pbx.workdir / f"{self.key}.log", FLOOR_READY, f"the {self.label} process") as pid:
            yield pid


class AriFloorSilent(AriFloor):
    """The floor, the caller held in a mixing bridge without music on hold."""

    key, label, number, stasis_app, hold = ("ari_floor_silent", "floor 0moh", "7211",
                                            "cc-floor-silent", "bridge")


class AriFloorNoBridge(AriFloor):
    """The floor, the caller left silent in Stasis, one bridge made once an agent answers."""

    key, label, number, stasis_app, hold = ("ari_floor_nobridge", "floor 0br", "7212",
                                            "cc-floor-nobridge", "none")


class AriFloorChannelMoh(AriFloor):
    """The floor, music on hold on the caller's channel, one bridge once an agent answers
    (no announcer channel in a bridge: how app_queue plays it)."""

    key, label, number, stasis_app, hold = ("ari_floor_chanmoh", "floor chmoh", "7214",
                                            "cc-floor-chanmoh", "channel_moh")


class AriFloorRaw(AriFloor):
    """The floor (bridge + MOH) on a bare aiohttp client with stdlib json."""

    key, label, number, stasis_app, client = ("ari_floor_raw", "floor raw", "7213",
                                              "cc-floor-raw", "raw")


@contextlib.asynccontextmanager
async def helper_process(module_args: list[str], log: Path, ready: str,
                         what: str) -> AsyncIterator[int]:
    """``python -m <module_args>`` in its own session, output to ``log``; yields its pid
    once ``ready`` is in the log (60 s at most); SIGTERM (then SIGKILL) on exit."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *module_args,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            cwd=REPO, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while ready not in log.read_text(errors="replace"):
            if proc.returncode is not None:
                raise BenchError(f"{what} exited with {proc.returncode}:\n"
                                 + log.read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise BenchError(f"{what} not ready after 60 s:\n"
                                 + log.read_text(errors="replace")[-2000:])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.2)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


CONTENDERS: dict[str, type[Contender]] = {
    c.key: c for c in (AppQueue, AriFloor, RouterContender, AriFloorSilent, AriFloorNoBridge,
                       AriFloorChannelMoh, AriFloorRaw)}


class CancelProbe(Contender):
    """Not a contender: ``Dial()`` of one agent with a 1 s timeout while the phone rings
    longer, so Asterisk CANCELs it. Proves the agents' phones answer a CANCEL as a phone
    does (200, 487, ACK) and end that call cleanly, before any figure is taken."""

    key, label, app, number = "cancel", "CANCEL probe", "Dial", "7190"

    def dialplan_line(self) -> str:
        return "Dial(PJSIP/agent001,1)"

    @contextlib.asynccontextmanager
    async def running(self, pbx: BenchPBX) -> AsyncIterator[int | None]:
        yield None


class SilentProbe(CancelProbe):
    """Not a contender: a call nobody ever ends (``Wait(30)``), so the caller gives up:
    proves that a caller left waiting hangs up and counts as a failed call."""

    key, label, app, number = "silent", "give-up probe", "Wait", "7191"

    def dialplan_line(self) -> str:
        return "Wait(30)"


# -- sipp ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SippCounts:
    calls: int = 0  # IncomingCall (UAS) / OutgoingCall (UAC)
    ok: int = 0
    failed: int = 0
    peak: int = 0  # most calls in progress at a dump


def sipp_counts(stat: Path) -> SippCounts:
    """Cumulative counts from sipp's ``-trace_stat`` file (its last row) and the most
    calls in progress at any dump."""
    if not stat.exists():
        return SippCounts()
    rows = list(csv.reader(stat.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return SippCounts()
    table = [dict(zip(rows[0], row)) for row in rows[1:]]
    last = table[-1]

    def n(row: dict[str, str], key: str) -> int:
        try:
            return int(row.get(key, 0) or 0)
        except ValueError:
            return 0

    calls = n(last, "IncomingCall(C)") + n(last, "OutgoingCall(C)")
    return SippCounts(calls, n(last, "SuccessfulCall(C)"), n(last, "FailedCall(C)"),
                      max(n(row, "CurrentCall") for row in table))


@contextlib.asynccontextmanager
async def agent_phones(workdir: Path, scenario: Path,
                       ports: Sequence[int]) -> AsyncIterator[list[Path]]:
    """The sipp UAS agent processes for one step; yields their stat files, complete once
    the block has exited (each process stops on SIGUSR1 when its calls are done)."""
    procs: list[asyncio.subprocess.Process] = []
    stats: list[Path] = []
    try:
        for port in ports:
            run = Path(tempfile.mkdtemp(prefix=f"agents-{port}-", dir=workdir))
            stats.append(run / "stat.csv")
            procs.append(await asyncio.create_subprocess_exec(
                SIPP, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(port),
                "-mi", "127.0.0.1", "-mp", str(free_udp_block(4)), "-nostdin",
                "-trace_stat", "-stf", str(stats[-1]), "-fd", "1",
                "-trace_err", "-error_file", str(run / "errors.log"),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL, cwd=run))
        await _wait_bound(ports)
        yield stats
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGUSR1)  # quit once no call is in progress
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _wait_bound(ports: Iterable[int], timeout: float = 10.0) -> None:
    """Until each UAS has bound its UDP port (read from /proc/net/udp: no probe packet)."""
    wanted = {f"0100007F:{port:04X}" for port in ports}
    deadline = time.monotonic() + timeout
    while True:
        bound = {line.split()[1] for line in Path("/proc/net/udp").read_text().splitlines()[1:]}
        if wanted <= bound:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"sipp agents not listening on {sorted(wanted - bound)}")
        await asyncio.sleep(0.05)


async def run_callers(workdir: Path, scenario: Path, sip_port: int, number: str, *,
                      rate: float, count: int, limit: int, timeout: float) -> SippCounts:
    """One sipp caller run, bounded by ``count`` calls and ``timeout`` seconds.

    Its ports are found free a moment before sipp binds them; on a machine shared with
    other test runs one may be taken meanwhile ("Unable to bind", before any call): that
    run is started again on fresh ports, twice at most."""
    for attempt in range(3):
        run = Path(tempfile.mkdtemp(prefix=f"callers-{number}-", dir=workdir))
        stat = run / "stat.csv"
        proc = await asyncio.create_subprocess_exec(
            SIPP, f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-s", number,
            "-i", "127.0.0.1", "-p", str(free_udp_tcp_port()),
            "-mi", "127.0.0.1", "-mp", str(free_udp_block(4)),
            "-r", f"{rate:g}", "-m", str(count), "-l", str(limit), "-nostdin",
            "-trace_stat", "-stf", str(stat), "-fd", "1",
            "-trace_err", "-error_file", str(run / "errors.log"),
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd=run)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout + 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError(f"sipp callers did not end within {timeout + 15:.0f} s") from None
        if proc.returncode in (0, 1):  # 1: some calls failed (counted)
            return sipp_counts(stat)
        text = err.decode(errors="replace")
        if "Unable to bind" not in text or sipp_counts(stat).calls or attempt == 2:
            raise BenchError(f"sipp callers exited {proc.returncode}: {text[-500:]}")
    raise AssertionError("unreachable")


# -- AMI -------------------------------------------------------------------------------

#: The only events the driver needs (AMI ``Filter``, so Asterisk sends nothing else).
AMI_FILTERS = ("Event: DialBegin", "Event: DialEnd", "Application: (Queue|Stasis|Dial)")


class EventLog:
    """The filtered AMI events, taken step by step."""

    def __init__(self, ami: AMIClient) -> None:
        self.ami = ami
        self.subscription = ami.subscribe("Newexten", "DialBegin", "DialEnd",
                                          maxsize=1_000_000)

    async def take(self) -> list[AMIMessage]:
        """Every event Asterisk sent until now. AMI answers an action on the connection
        its events travel on, in order: once ``Ping`` is answered, every event raised
        before it is in the subscription, and none is missed or left for the next step."""
        await self.ami.action("Ping")
        events: list[AMIMessage] = []
        while True:
            try:
                events.append(await self.subscription.get(timeout=0))
            except AMITimeoutError:
                break
        if self.subscription.dropped:
            raise BenchError(f"{self.subscription.dropped} AMI events dropped: figures unsound")
        return events


# -- the benchmark ---------------------------------------------------------------------

@dataclass
class Report:
    """Every step of (a) and every run of (b), for printing and for the unit test."""

    steps: list[QueueStep] = field(default_factory=list)
    held: list[QueueStep] = field(default_factory=list)
    complete_repeats: int = 0
    capped: set[str] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        print(text, flush=True)


class Bench:
    """One Asterisk, the agents' phones, the contenders, and the AMI event log."""

    def __init__(self, pbx: BenchPBX, events: EventLog, options: Options,
                 agent_ports: list[int], contender_pids: dict[str, int | None]) -> None:
        self.pbx = pbx
        self.events = events
        self.options = options
        self.agent_ports = agent_ports
        self.contender_pids = contender_pids

    @property
    def pids(self) -> list[int | None]:
        return [self.pbx.instance.pid, *self.contender_pids.values()]

    async def step(self, contender: Contender, rate: float, count: int, limit: int, *,
                   talk_ms: int, repeat: int = -1, ring_ms: int | None = None,
                   settle_s: float = 0.0, give_up_ms: int = 10_000) -> QueueStep:
        """One bounded sipp caller run against ``contender``, the agents' phones up for
        it alone. Entry->ring is kept for the callers who entered ``settle_s`` or more
        after the first (in (b): once the concurrency asked for is reached)."""
        ring_ms = self.options.ring_ms if ring_ms is None else ring_ms
        work = self.pbx.workdir
        agent_xml = work / f"agent-{ring_ms}-{talk_ms}.xml"
        agent_xml.write_text(agent_scenario(ring_ms, talk_ms))
        # A caller gives up (hangs up, a failed call) 10 s after its call should have
        # ended: past the 1 s entry->ring limit the step is unclean anyway, and a step
        # past capacity must not hold the run for Queue()'s whole 60 s.
        wait_ms = ring_ms + talk_ms + give_up_ms
        caller_xml = work / f"caller-{wait_ms}.xml"
        caller_xml.write_text(caller_scenario(wait_ms))
        pid = self.contender_pids.get(contender.key)
        began = time.monotonic()
        other = OtherLoad(self.pids)
        cpu_before = (cpu_seconds(self.pbx.instance.pid), cpu_seconds(pid))
        await self.events.take()  # nothing of an earlier step counts here
        async with agent_phones(work, agent_xml, self.agent_ports) as stats:
            callers = await run_callers(
                work, caller_xml, self.pbx.instance.settings.sip_port, contender.number,
                rate=rate, count=count, limit=limit,
                timeout=count / rate + wait_ms / 1000 + 10)
            left = await asyncio.to_thread(self.pbx.instance.wait_no_channels)
        agents = [sipp_counts(s) for s in stats]
        cpu_after = (cpu_seconds(self.pbx.instance.pid), cpu_seconds(pid))
        events = await self.events.take()
        if self.options.workdir is not None:  # kept for reading: the events behind the figures
            dump = work / f"ami-{contender.key}-{rate:g}-{repeat + 1}.txt"
            dump.write_text("".join(f"{dict(event)}\n" for event in events))
        times = caller_times(events, contender.app)
        first = min((t.entered for t in times.values() if t.entered is not None), default=0.0)
        waits = tuple(sorted(t.wait_ms for t in times.values() if t.wait_ms is not None
                             and t.entered is not None and t.entered >= first + settle_s))
        return QueueStep(
            contender.key, rate, repeat, count, callers.ok,
            callers.failed + max(0, count - callers.ok - callers.failed),
            entered=len(times), rung=sum(t.ringing is not None for t in times.values()),
            answered=sum(t.answered for t in times.values()),
            agent_calls=sum(a.calls for a in agents), agent_ok=sum(a.ok for a in agents),
            agent_failed=sum(a.failed for a in agents), wait_ms=waits, left_channels=left,
            wall=time.monotonic() - began, concurrent=callers.peak,
            asterisk_cpu_s=cpu_after[0] - cpu_before[0],
            contender_cpu_s=cpu_after[1] - cpu_before[1] if pid else math.nan,
            other_cpu_s=other.seconds())


def _fmt(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _per_call(cpu_s: float, calls: int) -> float:
    return math.nan if not calls else cpu_s * 1000 / calls


def describe(step: QueueStep, label: str) -> str:
    return (f"{label:10} {step.rate:>5g}/s: {step.calls} calls, {step.failed_calls} failed "
            f"(callers {step.ok} ok/{step.failed} failed; queue {step.entered} entered, "
            f"{step.rung} rung, {step.answered} answered; agents {step.agent_calls} received,"
            f" {step.agent_ok} completed, {step.agent_failed} failed), entry->ring p50 "
            f"{_fmt(step.p50)} p99 {_fmt(step.p99)} max "
            f"{_fmt(max(step.wait_ms, default=math.nan))} ms, {step.concurrent} concurrent, "
            f"CPU {_fmt(step.cpu_ms_per_call, 2)} ms/call (Asterisk "
            f"{_fmt(_per_call(step.asterisk_cpu_s, step.ok), 2)}, contender process "
            f"{_fmt(_per_call(step.contender_cpu_s, step.ok), 2)}), other processes "
            f"{_fmt(step.other_cores, 2)} cores{'' if step.clean else '  <- unclean'} "
            f"({step.wall:.1f} s)")


async def part_a(bench: Bench, contenders: list[Contender], report: Report,
                 deadline: float) -> None:
    o = bench.options
    report.say(f"\n(a) capacity: {o.repeats} repeat(s) of a ramp over {list(o.rates)} calls/s, "
               f"{o.step_seconds:g} s of calls per step, the contenders interleaved at each "
               f"rate; clean = 0 failed calls and p99 entry->ring < {WAIT_LIMIT_MS:g} ms; "
               f"agents ring {o.ring_ms} ms, talk {o.talk_ms} ms")
    for repeat in range(o.repeats):
        order = _rotated(tuple(c.key for c in contenders), repeat)
        by_key = {c.key: c for c in contenders}
        report.say(f"  repeat {repeat + 1}: order {', '.join(by_key[k].label for k in order)}")
        steps: list[QueueStep] = []
        out: set[str] = set()
        cut = False
        for rate in o.rates:
            for key in order:
                if key in out:
                    continue
                if time.monotonic() + o.step_seconds + 30 > deadline:
                    cut = True
                    break
                count = max(1, int(rate * o.step_seconds))
                step = await bench.step(by_key[key], rate, count, o.agents,
                                        talk_ms=o.talk_ms, repeat=repeat)
                if (not step.clean and step.other_cores >= OTHER_LOAD_RETRY_CORES
                        and time.monotonic() + o.step_seconds + 30 <= deadline):
                    report.say(f"    {describe(step, by_key[key].label)}: other processes "
                               "busy, run again once")
                    step = await bench.step(by_key[key], rate, count, o.agents,
                                            talk_ms=o.talk_ms, repeat=repeat)
                steps.append(step)
                if not step.clean:
                    out.add(key)
                report.say(f"    {describe(step, by_key[key].label)}")
                if step.concurrent >= o.agents:
                    report.say(f"    (every agent busy at once: {o.agents} agents bound the "
                               "rate here, not the contender)")
            if cut or len(out) == len(contenders):
                break
        if cut:
            report.say(f"  repeat {repeat + 1} cut by the global deadline: left out")
            break
        report.capped |= {c.key for c in contenders} - out
        report.steps += steps
        report.complete_repeats += 1


async def part_b(bench: Bench, contenders: list[Contender], report: Report) -> None:
    o = bench.options
    report.say(f"\n(b) entry->ring at {o.concurrency} concurrent callers: {o.hold_calls} calls "
               f"offered at {o.hold_rate:g}/s with at most {o.concurrency} in progress (sipp "
               f"-l), each talking {o.hold_talk_ms} ms; entry->ring of the callers who "
               f"entered once the first call ended ({o.concurrency} in progress); "
               f"{o.hold_repeats} repeat(s), contenders interleaved")
    for repeat in range(o.hold_repeats):
        for key in _rotated(tuple(c.key for c in contenders), repeat):
            contender = next(c for c in contenders if c.key == key)
            step = await bench.step(contender, o.hold_rate, o.hold_calls, o.concurrency,
                                    talk_ms=o.hold_talk_ms, repeat=repeat,
                                    settle_s=(o.hold_talk_ms + o.ring_ms) / 1000)
            report.held.append(step)
            report.say(f"    {describe(step, contender.label)}")


def summarize(report: Report, contenders: list[Contender], options: Options) -> None:
    labels = {c.key: c.label for c in contenders}
    report.say(f"\ncapacity = highest clean rate (calls/s), median (min-max) over "
               f"{report.complete_repeats} repeat(s):")
    best: dict[str, dict[int, float]] = {c.key: {} for c in contenders}
    for key, per_repeat in best.items():
        for rep in range(report.complete_repeats):
            per_repeat[rep] = highest_clean(s for s in report.steps
                                           if s.contender == key and s.repeat == rep)
        note = " (still clean at the top rate: the real limit is higher)" \
            if key in report.capped else ""
        report.say(f"  {labels[key]:10} {Spread.of(per_repeat.values()).format(0)}   per repeat:"
                   f" {[f'{v:g}' for v in per_repeat.values()]}{note}")
    other = Spread.of(s.other_cores for s in report.steps + report.held)
    report.say(f"  other processes on this machine meanwhile: {other.format(2, ' cores')}")
    p50: dict[str, dict[int, float]] = {c.key: {} for c in contenders}
    p99: dict[str, dict[int, float]] = {c.key: {} for c in contenders}
    cpu: dict[str, dict[int, float]] = {c.key: {} for c in contenders}
    for s in report.held:
        p50[s.contender][s.repeat] = s.p50
        p99[s.contender][s.repeat] = s.p99
        cpu[s.contender][s.repeat] = s.cpu_ms_per_call
    report.say(f"\nentry->ring at {options.concurrency} concurrent callers, median (min-max) "
               "over repeats:")
    for key, medians in p50.items():
        failed = sum(s.failed_calls for s in report.held if s.contender == key)
        peak = max((s.concurrent for s in report.held if s.contender == key), default=0)
        report.say(f"  {labels[key]:10} p50 {Spread.of(medians.values()).format(1, ' ms')}, "
                   f"p99 {Spread.of(p99[key].values()).format(1, ' ms')}; {failed} failed "
                   f"calls, peak {peak} concurrent; CPU (Asterisk + contender) "
                   f"{Spread.of(cpu[key].values()).format(2, ' ms')}/call")
    ari = [c for c in contenders if c.key != "app_queue"]
    if "app_queue" in best and ari:
        report.say("\nratios within each repeat, median (min-max, n):")
        for c in ari:
            speed = Spread.of(paired_ratios(best[c.key], best["app_queue"]))
            lat50 = Spread.of(paired_ratios(p50["app_queue"], p50[c.key]))
            lat99 = Spread.of(paired_ratios(p99["app_queue"], p99[c.key]))
            speed_verdict = capacity_verdict(speed, report.capped & {"app_queue", c.key},
                                             c.key)
            report.say(f"  capacity, {c.label} / app_queue:{' ' * max(1, 14 - len(c.label))}"
                       f"{speed.format(2)}   goal >= 1.00: {speed_verdict}")
            report.say(f"  entry->ring p50, app_queue / {c.label}: {lat50.format(2)}   "
                       f"goal >= 1.00: {verdict(lat50, 1.0, at_least=True)}")
            report.say(f"  entry->ring p99, app_queue / {c.label}: {lat99.format(2)}   "
                       f"goal >= 1.00: {verdict(lat99, 1.0, at_least=True)}")
    floor_note(report, contenders, best)


def floor_note(report: Report, contenders: list[Contender],
               best: dict[str, dict[int, float]]) -> None:
    """CPU per call of Asterisk alone under each contender, over its clean (a) steps,
    and what the ARI floor's means at app_queue's capacity on this machine's cores."""
    cores = os.cpu_count() or 1
    report.say("\nCPU per completed call over the clean steps of (a) (Asterisk alone; the "
               "contender's own process):")
    asterisk: dict[str, float] = {}
    for c in contenders:
        clean = [s for s in report.steps if s.contender == c.key and s.clean]
        asterisk[c.key] = asterisk_ms_per_call(clean)
        own = contender_ms_per_call(clean)
        report.say(f"  {c.label:10} Asterisk {_fmt(asterisk[c.key], 2)} ms, contender process "
                   f"{_fmt(own, 2)} ms ({sum(s.ok for s in clean)} calls)")
    if not best.get("app_queue") or math.isnan(asterisk["app_queue"]):
        return
    # The rate app_queue sustained: its best clean rate in any repeat (the machine is
    # shared: a busier minute lowers a repeat, it never raises one).
    rate = max(best["app_queue"].values())
    own_need = cores_needed(asterisk["app_queue"], rate)
    for c in contenders:
        if not isinstance(c, AriFloor) or math.isnan(asterisk.get(c.key, math.nan)):
            continue
        need = cores_needed(asterisk[c.key], rate)
        own = contender_ms_per_call(s for s in report.steps if s.contender == c.key
                                    and s.clean)
        report.say(
            f"  floor: Asterisk alone under {c.label} {asterisk[c.key]:.2f} ms/call x "
            f"{rate:g} calls/s (app_queue's best clean rate) = {need:.2f} cores of {cores}"
            f"{' (more than the machine has)' if need > cores else ''}; app_queue itself "
            f"{asterisk['app_queue']:.2f} ms/call x {rate:g} = {own_need:.2f} cores (a step "
            "is a 2 s burst whose work spreads over its whole wall time)")
        # Where the CPU binds, capacity goes as 1 / CPU per call: app_queue's whole call
        # against the part that any ARI router costs, Asterisk's alone and with the floor.
        report.say(
            f"  CPU bound: app_queue {asterisk['app_queue']:.2f} ms/call in all / Asterisk "
            f"alone under {c.label} {asterisk[c.key]:.2f} = "
            f"{asterisk['app_queue'] / asterisk[c.key]:.2f}; with the floor's own process "
            f"({_fmt(own, 2)} ms) {asterisk['app_queue'] / (asterisk[c.key] + own):.2f}: the "
            "highest capacity ratio an ARI router can reach where the cores are the limit")


def capacity_verdict(ratio: Spread, capped: set[str], contender: str = "router") -> str:
    """The capacity goal, knowing that a contender still clean at the top rate has a
    capacity *at least* that rate: app_queue capped makes the ratio an upper bound (a
    miss is then certain), ``contender`` capped a lower bound (a pass is then certain)."""
    if capped == {"app_queue", contender} or not ratio.n:
        return "no verdict: both still clean at the top rate"
    if capped == {"app_queue"}:
        return ("NOT met (an upper bound: app_queue still clean at the top rate)"
                if ratio.high < 1.0 else "no verdict: app_queue still clean at the top rate")
    if capped == {contender}:
        return (f"met (a lower bound: {contender} still clean at the top rate)"
                if ratio.low >= 1.0 else f"no verdict: {contender} still clean at the top rate")
    return verdict(ratio, 1.0, at_least=True)


async def run_bench(options: Options) -> Report:
    """Set up the PBX, the agents and the contenders; run (a) then (b); return it all."""
    from callcenter.asterisk.provision import install

    if not Path(SIPP).exists():
        raise BenchError("sipp not found: apt-get install -y sip-tester")
    contenders = [RouterContender(deferred_begin=options.router_deferred_begin)
                  if key == "router" else CONTENDERS[key]() for key in options.contenders]
    for contender in contenders:
        contender.check()
    report = Report()
    began = time.monotonic()
    installation = await asyncio.to_thread(install)
    with contextlib.ExitStack() as keep:
        work = (Path(keep.enter_context(tempfile.TemporaryDirectory(prefix="cc-bench-queue-")))
                if options.workdir is None else options.workdir)
        agents = agent_names(options.agents)
        agent_ports = [free_udp_tcp_port() for _ in range(options.agent_processes)]
        groups = group_agents(agents, agent_ports)
        instance = QueueBenchInstance(work / "home", {
            "pjsip_custom.conf": pjsip_conf(groups),
            "queues.conf": queues_conf(agents),
            "extensions_custom.conf": caller_dialplan(
                {c.number: c.dialplan_line() for c in (*(cls() for cls in CONTENDERS.values()),
                                                        CancelProbe(), SilentProbe())}),
        })
        rtp_start, rtp_end = free_udp_range(min(4000, 8 * options.agents + 200))
        await asyncio.to_thread(instance.setup, installation, InstanceSettings(
            sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
            rtp_start=rtp_start, rtp_end=rtp_end))
        await asyncio.to_thread(instance.start)
        try:
            pbx = BenchPBX(instance, work, agents)
            creds = instance.credentials
            async with AMIClient("127.0.0.1", instance.settings.ami_port,
                                 username=creds.ami_user, secret=creds.ami_secret,
                                 events="call,dialplan") as ami, \
                    contextlib.AsyncExitStack() as stack:
                for regex in AMI_FILTERS:
                    await ami.action("Filter", Operation="Add", Filter=regex)
                events = EventLog(ami)
                pids: dict[str, int | None] = {}
                for contender in contenders:
                    pids[contender.key] = await stack.enter_async_context(
                        contender.running(pbx))
                bench = Bench(pbx, events, options, agent_ports, pids)
                report.say(
                    f"Asterisk {installation.version} pid {instance.pid} (SIP "
                    f"127.0.0.1:{instance.settings.sip_port}); {options.agents} "
                    f"agents on {options.agent_processes} sipp UAS processes; "
                    + ", ".join(f"{c.label} ({c.app}, pid {pids[c.key] or 'Asterisk'})"
                                for c in contenders)
                    + f"; {os.cpu_count()} CPUs, nothing pinned")
                await sanity(bench, contenders, report)
                await part_a(bench, contenders, report, time.monotonic() + options.budget)
                await part_b(bench, contenders, report)
                summarize(report, contenders, options)
        finally:
            await asyncio.to_thread(instance.stop)
    report.say(f"\ntotal time {time.monotonic() - began:.0f} s")
    return report


async def sanity(bench: Bench, contenders: list[Contender], report: Report) -> None:
    """Two calls per contender reach an agent who answers, as every count agrees."""
    for contender in contenders:
        step = await bench.step(contender, 2, 2, 2, talk_ms=200)
        if not step.clean:
            raise BenchError(f"sanity calls to {contender.label} failed: "
                             f"{describe(step, contender.label)}")
    probe = await bench.step(CancelProbe(), 1, 1, 1, talk_ms=200, ring_ms=3000)
    if (probe.ok, probe.entered, probe.rung, probe.answered, probe.agent_calls, probe.agent_ok,
            probe.agent_failed, probe.left_channels) != (1, 1, 1, 0, 1, 1, 0, 0):
        raise BenchError("the agents' phones do not end a cancelled call cleanly: "
                         + describe(probe, probe.contender))
    silent = await bench.step(SilentProbe(), 1, 1, 1, talk_ms=0, ring_ms=0, give_up_ms=300)
    if (silent.ok, silent.failed, silent.left_channels) != (0, 1, 0):
        raise BenchError("a caller left waiting does not give up as a failed call: "
                         + describe(silent, silent.contender))
    report.say("sanity: 2 calls to each contender reached an agent who answered "
               "(sipp callers, AMI and sipp agents agree); a ringing agent's phone "
               "CANCELled by Dial()'s timeout ended that call cleanly (200, 487, ACK); a caller "
               "left waiting hung up and counted as a failed call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (about 30 s)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--contenders", default=None,
                        help="comma-separated, of: " + ", ".join(CONTENDERS)
                        + " (default: " + ",".join(Options.contenders) + ")")
    parser.add_argument("--agents", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the Asterisk home, logs and sipp traces there (must be new)")
    parser.add_argument("--router-deferred-begin", action="store_true",
                        help="the router's SQLite on deferred BEGIN (default: BEGIN IMMEDIATE)")
    args = parser.parse_args(argv)
    contenders = (tuple(args.contenders.split(",")) if args.contenders
                  else Options.contenders)
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"--contenders: unknown {sorted(unknown)} (known: {sorted(CONTENDERS)})")
    options = Options.quick(contenders) if args.quick else Options(contenders=contenders)
    if args.repeats is not None:
        if not 1 <= args.repeats <= 7:
            parser.error("--repeats: 1 to 7")
        options = replace(options, repeats=args.repeats, hold_repeats=args.repeats)
    if args.agents is not None:
        if not 2 <= args.agents <= 999:
            parser.error("--agents: 2 to 999")
        options = replace(options, agents=args.agents)
    if args.router_deferred_begin:
        options = replace(options, router_deferred_begin=True)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True)
        options = replace(options, workdir=args.workdir.resolve())
    asyncio.run(run_bench(options))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/queue.py: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted: Asterisk and the sipp processes stopped", file=sys.stderr)
        sys.exit(130)
