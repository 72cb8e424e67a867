"""IVR throughput on a real Asterisk 22: the example IVR's FastAGI dip vs the same dip
done the native Asterisk way (func_odbc; CURL() for the HTTP lookup) vs no dip at all.

    python bench/ivr.py [--quick] [--repeats N] [--loops-only]

Order of the run: sanity calls, (c), (a), (b), then ``bench/agi_cost.py``.

What runs where (all on 127.0.0.1, on this machine, no CPU pinning):

* **Asterisk 22** (``callcenter.asterisk.provision.install()``, cached) in a temporary
  home on free loopback ports, with ``config/example`` plus ``bench.yaml`` (below) applied
  through ``callcenter.apply.apply_files``, and ``res_odbc`` + ``func_odbc`` loaded on
  the demo SQLite database (``bench/odbc_twin.py``; needs Debian ``libsqliteodbc``);
* **the FastAGI server** in its own process: ``callcenter --home H -v agi serve CONFIG``
  (the same CLI and ``agi_scripts/`` production uses; a SQLite database seeded with the
  demo accounts by ``callcenter db seed-demo``);
* **the account HTTP service** (``bench/account_http.py``) in its own process, for the
  HTTP pair of (c): the remote system both HTTP dips ask, on the same accounts table;
  and **the AGI floor** (``bench/agi_floor.py``), a FastAGI server doing no work;
* **sipp** as the caller, one process per load step, driven by this script, which only
  starts processes and reads their results (no event loop competes with them).

Four entry points are added to a *copy* of ``config/example`` (``bench.yaml``); their
flows are the same four YAML steps, rendered by the same generator, and only the
data-dip line differs after rendering::

    entry  7001 bench_fastagi    7004 bench_odbc           7002 bench_native     7003 bench_classic
    cc-entrypoint-*:  NoOp, Set language, Set CC_ENTRY, Set priority,
                      Gosub(cc-caller-rules), Answer (the 200 OK) -- identical, generated
    cc-flow-*:
      play silence/1  Playback(silence/1) -- identical
      check_schedule  Gosub(cc-schedule-bench_hours) (native dialplan) + GotoIf
                      holiday / closed -> Hangup -- identical
      lookup account  Set(CC_LOOKUP_STATUS=) -- identical, then the dip:
        7001 fastagi  AGI(agi://.../account_lookup,account,${FILTER(0-9,${CALLERID(num)})})
        7004 odbc     Set(ARRAY(CC_ACCOUNT_ID,...)=${ODBC_CC_ACCOUNT(<same key>)})
                      Set(CC_LOOKUP_STATUS=${IF($[0${ODBCROWS} > 0]?found:not_found)})
        7002 native   Set(CC_LOOKUP_STATUS=found)
        7003 classic  AGI(<cc-agi>,account_lookup,account,<same key>)
      hangup          Hangup(16) -- identical

A FastAGI call makes one FastAGI connection (account_lookup on the caller's number, a
real SQLite query that finds the demo account 100200, five variables set in one
``EXEC MSet``); the func_odbc twin runs the same query on the same file inside Asterisk
(res_odbc's pooled connection, unixODBC's SQLite driver) and sets the same five
variables; the no-dip twin sets the lookup status with ``Set``. ``bench_hours`` is open
all week so every call takes the dip whatever the time of day. ``<cc-agi>`` is a shell
wrapper that execs ``callcenter --home H agi run CONFIG <script>``: classic AGI, one
Python process per dip.

Measurements:

(a) Capacity, in ``--repeats`` repeats (3; 2 with ``--quick``). A repeat is one ramp
    over the rates; at each rate the three IVRs (no dip, FastAGI, func_odbc) run one
    step each, *interleaved*, in an order rotated from repeat to repeat. A step: sipp
    places ``rate x step_seconds`` calls (``-r RATE -m COUNT -l LIMIT``): INVITE with SDP,
    200, ACK, then waits for Asterisk's BYE (the IVR hangs up after ~1 s of silence) and
    answers 200. Recorded per step: failed calls (sipp's failed calls plus calls never
    completed), INVITE->200 (sipp ``rtd`` 1, every sample from ``-trace_rtt``: average,
    99th percentile, max), the IVR time 200->BYE (``rtd`` 2), the CPU seconds of
    Asterisk and of the FastAGI server over the step and its drain (``/proc/<pid>/stat``),
    and the cores *other* processes used meanwhile (``/proc/stat`` busy time minus the
    bench's own and the kernel threads'): on shared cores that is what moves the
    capacity from run to run.
    A step is *clean* when no call failed and p99 INVITE->200 is under 10 ms (sipp's clock
    here ticks in 4 ms steps, so p99 <= 8 ms). An unclean step during which other
    processes kept a quarter of a core or more busy is run again once, and the second
    result stands (``bench.measure.spoiled``). An IVR leaves a repeat's ramp at its first
    unclean step; its capacity in that repeat is the last clean rate before it
    (``bench.measure.highest_clean``). Printed: per IVR the median and range of its
    capacity over repeats, and the ratios FastAGI / func_odbc and each dip / no dip
    taken *within* each repeat, median and range. Asterisk sends the 200 at ``Answer()``,
    before the dip: the dip shows in INVITE->200 only through the CPU it takes, which is
    why the second figure is the CPU itself:
(a') CPU ms per call (Asterisk + FastAGI server) of each IVR, per repeat over the rates
    at which every IVR ran clean in that repeat (same rates for all three), median and
    range; the ratio FastAGI / func_odbc and each dip's cost over the no-dip twin.
(c) Cost of one dip without SIP: per dip way, ``1000`` dips (``--quick``: 300) in a
    dialplan ``While`` loop on one Local channel (``extensions_custom.conf``, which the
    product includes and never writes), the ways interleaved, ``--repeats`` times:
    no dip, FastAGI (database lookup), func_odbc, FastAGI with the ``http`` lookup
    (``account_http``), ``CURL()`` + ``JSON_DECODE()`` (``bench/curl_twin.py``), and
    the floor of any FastAGI dip (``bench/agi_floor.py``: a server that only sends the
    one ``EXEC MSet``, so Asterisk's own cost of a FastAGI dip shows alone).
    Printed per dip: CPU of Asterisk + FastAGI server (the HTTP service's apart, on
    neither side), wall time measured by the dialplan itself (``STRFTIME`` in ms), and
    the ratios FastAGI / native way of the CPU over the no-dip loop and of the wall.
    No SIP, no sipp clock, no scheduler race between callers: this is the stable figure
    (``/proc`` counts CPU in 10 ms ticks: 10 us per dip over 1000 dips). The loop leaves
    its count, last status and account id in a global; a way that did not find the
    account 1000 times stops the bench.
(b) Latency of one dip through Asterisk: a few calls at 1 call/s to each IVR and to the
    classic-AGI twin; the extra 200->BYE time over the no-dip twin is the wait a caller
    has for one FastAGI, func_odbc or classic AGI dip. ``bench/agi_cost.py`` (fake
    Asterisk, transport only) is run too and its output printed.

The figures are sound only if every dip happened: the FastAGI process's log must count
one ``account_lookup`` per completed FastAGI call, and the sanity calls check that
func_odbc finds the account.

Bounds: at most ``step_seconds`` of call generation per step plus the drain, a global
deadline for (a) (a repeat cut by it is left out of the figures), a sipp timeout per
run, and a wait of at most 20 s for Asterisk to have no channel left between steps.
Asterisk and the FastAGI process are stopped on every exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: import the repo's packages
    sys.path.insert(0, str(REPO))

from bench import curl_twin, odbc_twin
from bench.measure import (
    RESPONSE_LIMIT_MS,
    Spread,
    StepResult,
    cpu_per_call,
    highest_clean,
    paired_ratios,
    spoiled,
    verdict,
)
from callcenter.asterisk import variables as V
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.testing.ports import free_port, free_udp_tcp_port
from callcenter.testing.sipp import PROVISIONAL, in_dialog, invite, ok_to_request

EXAMPLE = REPO / "config" / "example"
CALLER_ID = "100200"  # a demo account number: the CALLERID lookup finds it
NUMBERS = {"native": "7002", "fastagi": "7001", "odbc": "7004", "classic": "7003"}
#: The IVRs of the capacity ramps (classic AGI is far below them: latency only).
LOAD_IVRS = ("native", "fastagi", "odbc")
LABELS = {"native": "no dip", "fastagi": "FastAGI", "odbc": "func_odbc",
          "classic": "classic AGI", "fastagi_http": "FastAGI HTTP", "curl": "CURL()",
          "agi_floor": "AGI floor"}
#: The dip ways of the loops of (c): the database pair, the HTTP pair, and the floor of
#: any FastAGI dip (``bench/agi_floor.py``: a server that does nothing).
LOOP_WAYS = ("native", "fastagi", "odbc", "fastagi_http", "curl", "agi_floor")
#: The dip key, as the generator writes it for ``input: CALLERID``.
DIP_KEY = "${FILTER(0-9,${CALLERID(num)})}"

#: Open all week, so every call reaches the dip.
BENCH_TZ = "America/New_York"

BENCH_STEPS = """\
      - play: silence/1
      - check_schedule: {schedule: bench_hours, closed: {hangup: true}}
      - lookup: {lookup: account, input: CALLERID}
      - hangup: true
"""

BENCH_YAML = f"""\
# Added by bench/ivr.py to a copy of config/example; see its docstring.
schedules:
  bench_hours:
    timezone: {BENCH_TZ}
    hours: {{mon-sun: "00:00-24:00"}}

entry_points:
""" + "".join(
    f"  bench_{ivr}: {{numbers: [\"{number}\"], flow: bench_{ivr}}}\n"
    for ivr, number in NUMBERS.items()
) + "\nflows:\n" + "".join(
    f"  bench_{ivr}:\n    steps:\n{BENCH_STEPS}" for ivr in NUMBERS
)

SCENARIO = (
    '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="callcenter ivr bench">\n'
    + invite(CALLER_ID, dtmf=False, send_attrs='retrans="500" start_rtd="1"')
    + PROVISIONAL
    # rtd 1: INVITE->200; rtd 2: 200->BYE (the IVR's own time).
    + '  <recv response="200" rtd="1" start_rtd="2" rrs="true"/>\n'
    + in_dialog("ACK", CALLER_ID, 1)
    + '  <recv request="BYE" rtd="2" timeout="15000"/>\n'
    + ok_to_request()
    + "</scenario>\n"
)


class BenchError(RuntimeError):
    """The benchmark could not set up or a sanity call failed."""


# -- ports and processes -----------------------------------------------------

def free_udp_block(size: int) -> int:
    """First of ``size`` consecutive free UDP ports (sipp's media port and neighbours)."""
    for _ in range(100):
        base = free_port(socket.SOCK_DGRAM)
        if base + size > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise BenchError("no free UDP port block")


def _cli_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from callcenter.cli import main; main()", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextmanager
def service_process(argv: list[str], log_file: Path, ready: str, what: str,
                    timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process (and session: Ctrl-C is ours to relay), yielded once
    ``ready`` is in its log; SIGTERM (its graceful stop) on the way out."""
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO, env=_env(),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while ready not in log_file.read_text(errors="replace"):
            if proc.poll() is not None:
                raise BenchError(f"{what} exited with {proc.returncode}:\n"
                                 + log_file.read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise BenchError(f"{what} not listening after {timeout:.0f} s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fastagi_process(home: Path, config_dir: Path,
                    log_file: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``callcenter agi serve``: the same CLI and scripts production runs."""
    return service_process(
        _cli_command("--home", str(home), "-v", "agi", "serve", str(config_dir)),
        log_file, "FastAGI listening", "FastAGI server")


def agi_floor_process(port: int,
                      log_file: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``bench/agi_floor.py``: a FastAGI server that does no work (the floor of a dip)."""
    return service_process(
        [sys.executable, str(REPO / "bench" / "agi_floor.py"), "--port", str(port)],
        log_file, "AGI floor listening", "AGI floor server")


def account_http_process(database: Path, port: int,
                         log_file: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """``bench/account_http.py``: the remote account service both HTTP dips ask."""
    return service_process(
        [sys.executable, str(REPO / "bench" / "account_http.py"), "--db", str(database),
         "--port", str(port)], log_file, "account HTTP listening", "account HTTP server")


# -- config ------------------------------------------------------------------

def bench_config(dest: Path, fastagi_port: int, http_port: int = 8080) -> Path:
    """A copy of config/example with the FastAGI port moved and ``bench.yaml`` added
    (with the ``account_http`` lookup on the bench's account service)."""
    shutil.copytree(EXAMPLE, dest)
    settings = dest / "settings.yaml"
    text = settings.read_text()
    if "    port: 4573" not in text:
        raise BenchError("config/example/settings.yaml changed: update bench/ivr.py")
    settings.write_text(text.replace("    port: 4573", f"    port: {fastagi_port}"))
    (dest / "bench.yaml").write_text(
        BENCH_YAML + "\nlookups:\n  account_http: {source: http, url: "
        f'"http://127.0.0.1:{http_port}/accounts/{{value}}"}}\n')
    return dest


def _edit_context(text: str, context: str, edits: list[tuple[str, str]]) -> str:
    """Replace, inside one dialplan context only, each ``old`` (exactly once) by ``new``."""
    head = f"\n[{context}]\n"
    start = text.index(head) + 1
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    for old, new in edits:
        if body.count(old) != 1:
            raise BenchError(f"[{context}]: expected {old!r} once, found {body.count(old)}")
        body = body.replace(old, new)
    return text[:start] + body + text[end:]


def twin_dialplan(files: dict[str, str], agi_url: str, classic_program: Path) -> dict[str, str]:
    """Turn the generated ``bench_native`` / ``bench_odbc`` / ``bench_classic`` flows
    into their twins.

    Only the data-dip lines change; everything else is the generator's output, so the
    four IVRs have the same shape by construction.
    """
    name = "extensions_callcenter.conf"
    text = files[name]
    lookup_agi = f",AGI({agi_url}/account_lookup,account,"
    text = _edit_context(text, "cc-flow-bench_native", [
        (lookup_agi + DIP_KEY + ")\n", f",Set({V.LOOKUP_STATUS}=found)\n"),
    ])
    text = _edit_context(text, "cc-flow-bench_odbc", [
        (" same => n" + lookup_agi + DIP_KEY + ")\n", odbc_twin.dip_lines(DIP_KEY)),
    ])
    text = _edit_context(text, "cc-flow-bench_classic", [
        (lookup_agi, f",AGI({classic_program},account_lookup,account,"),
    ])
    return {**files, name: text}


def loop_dialplan(agi_url: str, http_url: str, floor_url: str, dips: int) -> str:
    """``extensions_custom.conf`` for (c): per dip way, ``dips`` dips in a ``While`` loop
    on one channel; the outcome (count, last status, account id, start and end time in
    ms) is left in the global ``CC_BENCH_LOOP_<WAY>``."""
    ways = {
        "native": f" same => n,Set({V.LOOKUP_STATUS}=found)\n",
        "fastagi": f" same => n,AGI({agi_url}/account_lookup,account,{CALLER_ID})\n",
        "odbc": odbc_twin.dip_lines(CALLER_ID),
        "fastagi_http": f" same => n,AGI({agi_url}/account_lookup,account_http,{CALLER_ID})\n",
        "curl": curl_twin.dip_lines(http_url, CALLER_ID),
        "agi_floor": f" same => n,AGI({floor_url}/account_lookup,account,{CALLER_ID})\n",
    }
    now = "${STRFTIME(,,%s.%3q)}"
    out = "; Written by bench/ivr.py for (c): dips in a loop on one Local channel, no SIP.\n"
    for way, dip in ways.items():
        out += (f"\n[cc-bench-loop-{way}]\n"
                f"exten => s,1,Set(T0={now})\n"
                " same => n,Set(I=0)\n"
                f" same => n,While($[${{I}} < {dips}])\n"
                f" same => n,Set({V.LOOKUP_STATUS}=)\n"
                + dip
                + " same => n,Set(I=$[${I} + 1])\n"
                " same => n,EndWhile()\n"
                f" same => n,Set(GLOBAL(CC_BENCH_LOOP_{way.upper()})="
                f"${{I}}:${{{V.LOOKUP_STATUS}}}:${{{V.ACCOUNT_ID}}}:${{T0}}:{now})\n"
                " same => n,Hangup()\n")
    return out


def classic_wrapper(path: Path, home: Path, config_dir: Path) -> Path:
    """Classic AGI program: Asterisk runs it with the script name as first argument."""
    cmd = " ".join(shlex.quote(a) for a in _cli_command(
        "--home", str(home), "agi", "run", str(config_dir)))
    path.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))}\nexport PYTHONPATH\n"
                    f'exec {cmd} "$1"\n')
    path.chmod(0o755)
    return path


# -- sipp --------------------------------------------------------------------

def _last_stat(path: Path) -> dict[str, str]:
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1]))


def run_sipp(workdir: Path, scenario: Path, sip_port: int, number: str, *, rate: float,
             count: int, limit: int, timeout: float) -> tuple[int, int, list[float],
                                                                 list[float], str]:
    """One sipp run; returns (successful, failed, INVITE->200 ms, 200->BYE ms, stderr)."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"sipp-{number}-", dir=workdir))
    stat = run_dir / "stat.csv"
    cmd = [
        shutil.which("sipp") or "/usr/bin/sipp", f"127.0.0.1:{sip_port}",
        "-sf", str(scenario), "-s", number,
        "-i", "127.0.0.1", "-p", str(free_udp_tcp_port()),
        "-mi", "127.0.0.1", "-mp", str(free_udp_block(4)),
        "-r", f"{rate:g}", "-m", str(count), "-l", str(limit),
        "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
        "-trace_rtt", "-rtt_freq", "1",
        "-trace_err", "-error_file", str(run_dir / "errors.log"),
        "-timeout", f"{int(timeout)}s", "-timeout_error",
    ]
    proc = subprocess.run(cmd, cwd=run_dir, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout + 15, check=False)  # 1 = some calls failed
    stats = _last_stat(stat) if stat.exists() else {}
    ok = int(stats.get("SuccessfulCall(C)", 0) or 0)
    failed = int(stats.get("FailedCall(C)", 0) or 0)
    rtd: dict[str, list[float]] = {"1": [], "2": []}
    for rtt in run_dir.glob("*_rtt.csv"):
        for row in csv.reader(rtt.read_text(errors="replace").splitlines(), delimiter=";"):
            if len(row) >= 3 and row[2].strip() in rtd:
                try:
                    rtd[row[2].strip()].append(float(row[1]))
                except ValueError:
                    continue  # header
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode not in (0, 1):
        err = f"sipp exit {proc.returncode}: {err[-500:]}"
    return ok, failed, rtd["1"], rtd["2"], err



# -- the benchmark -----------------------------------------------------------

def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its reaped children, from /proc."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return math.nan
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent running processes since boot (``/proc/stat``: user,
    nice, system), counted as it is used (no burst when a parent reaps a child)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[i] for i in (0, 1, 2)) / os.sysconf("SC_CLK_TCK")


def kernel_thread_seconds() -> float:
    """CPU seconds of the kernel threads (children of kthreadd, pid 2): under load
    ksoftirqd mostly carries our own loopback traffic, so it is nobody's "other"."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[1] == "2":
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def own_seconds(pids: Iterable[int | None]) -> float:
    """CPU seconds of this benchmark: its servers, this driver and its reaped children
    (sipp, the CLI calls)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    me = resource.getrusage(resource.RUSAGE_SELF)
    return (sum(cpu_seconds(pid) for pid in pids if pid is not None)
            + children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime)


class OtherLoad:
    """CPU other users' processes took on the shared cores over a span: machine busy time
    minus this benchmark's own and minus the kernel threads'."""

    def __init__(self, pids: Iterable[int | None]) -> None:
        self.pids = tuple(pids)
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        return machine_busy_seconds(), own_seconds(self.pids), kernel_thread_seconds()

    def seconds(self) -> float:
        busy, own, kernel = (b - a for a, b in zip(self.start, self._sample()))
        return max(0.0, busy - own - kernel)


class Bench:
    """Runs steps against one Asterisk and one FastAGI server and keeps every result."""

    def __init__(self, instance: AsteriskInstance, workdir: Path,
                 fastagi_pid: int | None = None, http_pid: int | None = None,
                 floor_pid: int | None = None) -> None:
        self.instance = instance
        self.fastagi_pid = fastagi_pid
        self.http_pid = http_pid
        self.floor_pid = floor_pid
        self.workdir = workdir
        self.scenario = workdir / "ivr-caller.xml"
        self.scenario.write_text(SCENARIO)
        #: Calls that completed, per IVR (to check the FastAGI server saw every dip).
        self.completed = {ivr: 0 for ivr in NUMBERS}

    @property
    def pids(self) -> tuple[int | None, ...]:
        return (self.instance.pid, self.fastagi_pid, self.http_pid, self.floor_pid)

    def step(self, ivr: str, rate: float, count: int, limit: int,
             repeat: int = -1) -> StepResult:
        began = time.monotonic()
        other = OtherLoad(self.pids)
        cpu_before = (cpu_seconds(self.instance.pid), cpu_seconds(self.fastagi_pid))
        ok, failed, inv, ivr_ms, err = run_sipp(
            self.workdir, self.scenario, self.instance.settings.sip_port, NUMBERS[ivr],
            rate=rate, count=count, limit=limit, timeout=count / rate + 25)
        left = self.instance.wait_no_channels()
        cpu_after = (cpu_seconds(self.instance.pid), cpu_seconds(self.fastagi_pid))
        failed += max(0, count - ok - failed)  # never completed (sipp timeout)
        self.completed[ivr] += ok
        if err and failed:
            print(f"    sipp ({ivr} @ {rate:g}/s): {err.splitlines()[-1][:200]}", flush=True)
        return StepResult(ivr, int(rate), repeat, count, ok, failed, tuple(inv), tuple(ivr_ms),
                          left, time.monotonic() - began,
                          cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1],
                          other.seconds())

    def loop(self, way: str, dips: int, timeout: float = 60.0) -> LoopResult:
        """Run the ``cc-bench-loop-<way>`` context once on a Local channel; wait for its
        outcome in the global it sets (bounded), and the CPU it cost."""
        name = f"CC_BENCH_LOOP_{way.upper()}"
        self.instance.cli(f"dialplan set global {name} running")
        pids = (self.instance.pid, self.fastagi_pid, self.http_pid)
        cpu_before = [cpu_seconds(pid) for pid in pids]
        other = OtherLoad(self.pids)
        began = time.monotonic()
        self.instance.cli(f"channel originate Local/s@cc-bench-loop-{way} application Wait 0")
        deadline = time.monotonic() + timeout
        while True:
            _, out = self.instance.cli(f"dialplan eval function GLOBAL({name})", check=False)
            value = out.partition("Result:")[2].strip()
            if value and value != "running":
                break
            if time.monotonic() > deadline:
                raise BenchError(f"(c) {way}: {dips} dips not done in {timeout:.0f} s")
            time.sleep(0.5)  # each poll is a CLI connection: Asterisk CPU, kept rare
        left = self.instance.wait_no_channels()
        cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before)]
        count, status, account, t0, ended = (value.split(":") + [""] * 5)[:5]
        expected = (str(dips), "found", "" if way == "native" else "1")
        if (count, status, account) != expected or left:
            raise BenchError(f"(c) {way}: loop ended with {value!r} ({left} channels left), "
                             f"expected {':'.join(expected)}:<start>:<end>")
        return LoopResult(way, dips, float(ended) - float(t0), *cpu,
                          other_cores=other.seconds() / (time.monotonic() - began))


@dataclass(frozen=True)
class LoopResult:
    """One run of (c): ``dips`` dips on one channel, its wall time (measured by the
    dialplan itself) and the CPU of Asterisk, of the FastAGI server and of the account
    HTTP service (the remote system: counted on neither side)."""

    way: str
    dips: int
    wall_s: float
    asterisk_cpu_s: float
    fastagi_cpu_s: float
    http_cpu_s: float
    #: Cores other processes used meanwhile (see :class:`OtherLoad`).
    other_cores: float = math.nan

    def per_dip_us(self, seconds: float) -> float:
        return seconds * 1e6 / self.dips


def part_c(bench: Bench, dips: int, repeats: int) -> None:
    print(f"\n(c) {dips} dips in a dialplan While loop on one Local channel (no SIP, no "
          f"sipp clock), the {len(LOOP_WAYS)} ways interleaved, {repeats} repeats; per dip, "
          "median (min-max, n); CPU = Asterisk + FastAGI server:", flush=True)
    runs: list[LoopResult] = []
    for repeat in range(repeats):
        for way in _rotated(LOOP_WAYS, repeat):
            runs.append(bench.loop(way, dips))
    by = {way: [r for r in runs if r.way == way] for way in LOOP_WAYS}
    cpu = {way: {i: r.per_dip_us(r.asterisk_cpu_s + r.fastagi_cpu_s)
                 for i, r in enumerate(by[way])} for way in LOOP_WAYS}
    walls = {way: {i: r.per_dip_us(r.wall_s) / 1000 for i, r in enumerate(by[way])}
             for way in LOOP_WAYS}
    for way in LOOP_WAYS:
        ast = Spread.of(r.per_dip_us(r.asterisk_cpu_s) for r in by[way])
        srv = Spread.of(r.per_dip_us(r.fastagi_cpu_s) for r in by[way])
        http = Spread.of(r.per_dip_us(r.http_cpu_s) for r in by[way])
        wall = Spread.of(walls[way].values())
        print(f"  {LABELS[way]:12} CPU {Spread.of(cpu[way].values()).format(0, ' us'):22} "
              f"(Asterisk {ast.median:4.0f}, FastAGI server {srv.median:4.0f}; "
              f"HTTP service {http.median:3.0f}); wall {wall.format(2, ' ms')}")
    extra = {way: {i: cpu[way][i] - cpu["native"][i] for i in cpu[way]}
             for way in LOOP_WAYS if way != "native"}
    for ours, theirs in (("fastagi", "odbc"), ("fastagi_http", "curl")):
        ratio = Spread.of(paired_ratios(extra[ours], extra[theirs]))
        print(f"  {LABELS[ours]} / {LABELS[theirs]}: CPU per dip over the no-dip loop "
              f"{ratio.format(2)} [goal <= 1.00: {verdict(ratio, 1.0, at_least=False)}] "
              f"({Spread.of(extra[ours].values()).median:.0f} vs "
              f"{Spread.of(extra[theirs].values()).median:.0f} us); wall per dip "
              f"{Spread.of(paired_ratios(walls[ours], walls[theirs])).format(2)}")
    print(f"  other processes on this machine meanwhile: "
          f"{Spread.of(r.other_cores for r in runs).format(2, ' cores')}")
    floor = Spread.of(extra["agi_floor"].values())
    print(f"  AGI floor (a FastAGI server that does nothing but the one EXEC MSet): Asterisk "
          f"alone {floor.format(0, ' us')} over the no-dip loop, vs a whole func_odbc dip "
          f"{Spread.of(extra['odbc'].values()).median:.0f} us, CURL() "
          f"{Spread.of(extra['curl'].values()).median:.0f} us")


def _fmt(x: float, digits: int = 1) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _mean(values: tuple[float, ...] | list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _per_call_ms(cpu_s: float, calls: int) -> float:
    return math.nan if not calls else cpu_s * 1000 / calls


def print_table(results: list[StepResult]) -> None:
    print(f"{'rep':>3} {'IVR':9} {'rate/s':>6} {'calls':>6} {'failed':>6} "
          f"{'200 avg':>8} {'200 p99':>8} {'200 max':>8} {'IVR avg':>8} {'left':>4}  clean"
          "   CPU ms/call: Asterisk  FastAGI   other cores")
    for r in results:
        print(f"{r.repeat + 1:>3} {LABELS[r.ivr]:9} {r.rate:>6} {r.calls:>6} {r.failed:>6} "
              f"{_fmt(_mean(r.invite_200_ms)):>8} {_fmt(r.p99):>8} "
              f"{_fmt(max(r.invite_200_ms, default=math.nan)):>8} "
              f"{_fmt(_mean(r.ivr_ms)):>8} {r.left_channels:>4}  "
              f"{'yes' if r.clean else 'NO ':3}  {'':13}"
              f"{_fmt(_per_call_ms(r.asterisk_cpu_s, r.ok), 2):>8} "
              f"{_fmt(_per_call_ms(r.fastagi_cpu_s, r.ok), 2):>8} "
              f"{_fmt(r.other_cores, 2):>13}")


def _rotated(ivrs: tuple[str, ...], n: int) -> tuple[str, ...]:
    """The IVR order of repeat ``n``: each IVR goes first, second, ... in turn."""
    k = n % len(ivrs)
    return ivrs[k:] + ivrs[:k]


def part_a(bench: Bench, rates: list[int], step_seconds: float, repeats: int,
           deadline: float) -> tuple[list[StepResult], int, set[str]]:
    """Interleaved ramps; returns the steps of the complete repeats, how many there
    are, and the IVRs still clean at the top rate in some repeat (capacity capped)."""
    print(f"\n(a) capacity: {repeats} repeats of a ramp, {step_seconds:g} s of calls per step, "
          f"the IVRs interleaved at each rate (order rotated per repeat); an IVR leaves a "
          f"ramp at its first unclean step (clean = 0 failed and p99 INVITE->200 < "
          f"{RESPONSE_LIMIT_MS:g} ms); times in ms", flush=True)
    kept: list[StepResult] = []
    complete = 0
    capped: set[str] = set()
    for repeat in range(repeats):
        order = _rotated(LOAD_IVRS, repeat)
        print(f"  repeat {repeat + 1}: order {', '.join(LABELS[i] for i in order)}", flush=True)
        steps: list[StepResult] = []
        out: set[str] = set()
        cut = False
        for rate in rates:
            for ivr in order:
                if ivr in out:
                    continue
                if time.monotonic() + step_seconds + 25 > deadline:
                    cut = True
                    break
                count, limit = max(1, int(rate * step_seconds)), max(10, rate * 4)
                r = bench.step(ivr, rate, count, limit, repeat=repeat)
                if spoiled(r) and time.monotonic() + step_seconds + 25 <= deadline:
                    print(f"    {LABELS[ivr]:9} {rate:>4}/s: unclean (p99 {_fmt(r.p99)} ms) while "
                          f"other processes used {r.other_cores:.2f} cores: run again once",
                          flush=True)
                    r = bench.step(ivr, rate, count, limit, repeat=repeat)
                steps.append(r)
                if not r.clean:
                    out.add(ivr)
                print(f"    {LABELS[ivr]:9} {rate:>4}/s: {r.ok}/{r.calls} ok, {r.failed} failed,"
                      f" INVITE->200 p99 {_fmt(r.p99)} ms, max "
                      f"{_fmt(max(r.invite_200_ms, default=math.nan))} ms, "
                      f"IVR {_fmt(_mean(r.ivr_ms))} ms, CPU "
                      f"{_fmt(_per_call_ms(r.cpu_s, r.ok), 2)} ms/call"
                      f", other processes {_fmt(r.other_cores, 2)} cores"
                      f"{'' if r.clean else '  <- unclean'} ({r.wall:.1f} s)", flush=True)
            if cut or len(out) == len(LOAD_IVRS):
                break
        if cut:
            print(f"  repeat {repeat + 1} cut by the global deadline: left out of the figures")
            break
        capped |= set(LOAD_IVRS) - out
        kept += steps
        complete += 1
    return kept, complete, capped


def summarize_a(results: list[StepResult], repeats: int, capped: set[str]) -> None:
    """Capacity and CPU per call over the complete repeats: median (range, n)."""
    print()
    print_table(results)
    if not repeats:
        print("no complete repeat: no figure")
        return
    other = Spread.of(r.other_cores for r in results)
    print(f"\nother processes on this machine during (a): {other.format(2, ' cores')}"
          + ("  <- shared machine: capacity is not that of a quiet host; trust (c) and the "
             "CPU per call first" if other.n and other.median > 0.1 else ""))
    print(f"\ncapacity = highest clean rate (calls/s), median (min-max) over {repeats} "
          "repeats:")
    best: dict[str, dict[int, float]] = {ivr: {} for ivr in LOAD_IVRS}
    for ivr in LOAD_IVRS:
        for rep in range(repeats):
            best[ivr][rep] = highest_clean(s for s in results
                                           if s.ivr == ivr and s.repeat == rep)
        note = " (still clean at the top rate: the real limit is higher)" \
            if ivr in capped else ""
        print(f"  {LABELS[ivr]:9} {Spread.of(best[ivr].values()).format(0)}   "
              f"per repeat: {[int(v) for v in best[ivr].values()]}{note}")
    cpu: dict[str, dict[int, float]] = {ivr: {} for ivr in LOAD_IVRS}
    common_by_rep: dict[int, list[int]] = {}
    for rep in range(repeats):
        steps = [s for s in results if s.repeat == rep]
        # CPU per call does not need a clean INVITE->200, only calls that all completed.
        common = set.intersection(*({s.rate for s in steps if s.ivr == ivr and s.ok
                                     and not s.failed} for ivr in LOAD_IVRS))
        common_by_rep[rep] = sorted(common)
        for ivr in LOAD_IVRS:
            cpu[ivr][rep] = cpu_per_call(steps, ivr, common)
    rates = "; ".join(",".join(map(str, c)) or "-" for c in common_by_rep.values())
    print("\nCPU ms per call, Asterisk + FastAGI server, per repeat over the rates every IVR "
          f"ran with no failed call in it ({rates} calls/s):")
    for ivr in LOAD_IVRS:
        print(f"  {LABELS[ivr]:9} {Spread.of(cpu[ivr].values()).format(2, ' ms')}")
    for ivr in ("fastagi", "odbc"):
        cost = [cpu[ivr][r] - cpu["native"][r] for r in cpu[ivr] if r in cpu["native"]]
        print(f"  one {LABELS[ivr]} dip over no dip: {Spread.of(cost).format(2, ' ms')}")

    speed = Spread.of(paired_ratios(best["fastagi"], best["odbc"]))
    cost = Spread.of(paired_ratios(cpu["fastagi"], cpu["odbc"]))
    print("\nratios within each repeat, median (min-max, n):")
    print(f"  FastAGI / func_odbc, calls/s:       {speed.format(2)}   goal >= 1.00: "
          f"{verdict(speed, 1.0, at_least=True)}")
    print(f"  FastAGI / func_odbc, CPU per call:  {cost.format(2)}   goal <= 1.00: "
          f"{verdict(cost, 1.0, at_least=False)}")
    for ivr in ("fastagi", "odbc"):
        print(f"  {LABELS[ivr]} / no dip, calls/s:{'':{14 - len(LABELS[ivr])}}"
              f"{Spread.of(paired_ratios(best[ivr], best['native'])).format(2)}")


def part_b(bench: Bench, calls: int) -> None:
    print(f"\n(b) latency of one dip through Asterisk: {calls} calls at 1 call/s each, "
          "1 dip per call; IVR time = 200->BYE (ms)", flush=True)
    ivr_time = {}
    for ivr in ("native", "fastagi", "odbc", "classic"):
        r = bench.step(ivr, 1, calls, limit=calls)
        ivr_time[ivr] = _mean(r.ivr_ms)
        print(f"  {LABELS[ivr]:11} {r.ok}/{r.calls} ok, IVR avg {_fmt(ivr_time[ivr])} ms, "
              f"min {_fmt(min(r.ivr_ms, default=math.nan))} ms, "
              f"max {_fmt(max(r.ivr_ms, default=math.nan))} ms", flush=True)
    over = {ivr: ivr_time[ivr] - ivr_time["native"] for ivr in ("fastagi", "odbc", "classic")}
    print("  per dip over no dip: " + ", ".join(
        f"{LABELS[ivr]} {over[ivr]:.1f} ms" for ivr in over)
        + " (sipp's clock: 4 ms steps, averaged over the calls)")


def part_b_fake(quick: bool) -> None:
    args = ["--fastagi-calls", "500", "--classic-calls", "10"] if quick else \
        ["--fastagi-calls", "2000", "--classic-calls", "30"]
    print(f"\n(b') bench/agi_cost.py {' '.join(args)} (fake Asterisk, transport only):",
          flush=True)
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "agi_cost.py"), *args],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180,
                          check=False)
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print(f"  {line}")


@contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """``extra`` in this process's environment (Asterisk inherits it at start)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def logged_dips(agi_log: Path) -> tuple[int, int]:
    """(dips, dips that found the account) in the FastAGI server's log."""
    lines = [line for line in agi_log.read_text(errors="replace").splitlines()
             if "account_lookup account on " in line]
    return len(lines), sum(line.endswith(": found") for line in lines)


def sanity(bench: Bench, agi_log: Path) -> None:
    """Two calls per IVR complete, and both dips really find the account."""
    for ivr in NUMBERS:
        before = logged_dips(agi_log)
        r = bench.step(ivr, 2, 2, limit=2)
        if r.failed or r.ok != 2:
            raise BenchError(f"sanity calls to {ivr} ({NUMBERS[ivr]}) failed")
        dips, found = (a - b for a, b in zip(logged_dips(agi_log), before))
        if ivr == "fastagi" and (dips, found) != (2, 2):
            raise BenchError(f"2 FastAGI calls: {dips} account_lookup dips logged, "
                             f"{found} found the demo account (expected 2 and 2)")
    row = odbc_twin.check_loaded(bench.instance, CALLER_ID)
    print(f"sanity: 2 calls to each IVR ok, 2 FastAGI dips found account {CALLER_ID}; "
          f"ODBC_{odbc_twin.FUNCTION}({CALLER_ID}) = {row}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps (smoke run)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="ramps of (a) (default 3; 2 with --quick)")
    parser.add_argument("--loops-only", action="store_true",
                        help="only (c), the dip loops without SIP (about 30 s)")
    args = parser.parse_args(argv)
    rates = [25, 50] if args.quick else [100, 200, 250, 275, 300, 325, 350, 375, 400, 450,
                                        500]
    repeats = args.repeats or (2 if args.quick else 3)
    if not 1 <= repeats <= 7:
        parser.error("--repeats: 1 to 7")
    step_seconds = 1.5 if args.quick else 2.0
    loop_dips = 300 if args.quick else 1000
    budget = 60.0 if args.quick else 120.0 * repeats + 30

    from sqlalchemy.engine import make_url

    import agi_scripts
    from callcenter.apply import apply_files
    from callcenter.asterisk.provision import install
    from callcenter.asterisk.secrets import agent_passwords
    from callcenter.config.loader import load_config
    from callcenter.storage.engine import default_sqlite_url
    from dialplan.generator import render, softphone_agents

    began = time.monotonic()
    if shutil.which("sipp") is None and not Path("/usr/bin/sipp").exists():
        raise BenchError("sipp not found: apt-get install sip-tester")
    driver = odbc_twin.find_driver()
    with tempfile.TemporaryDirectory(prefix="cc-bench-ivr-") as tmp:
        work = Path(tmp)
        home = work / "home"
        installation = install()
        instance = odbc_twin.OdbcAsteriskInstance(home)
        rtp = 20000 + (free_port() % 200) * 50
        instance.setup(installation, InstanceSettings(
            sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
            rtp_start=rtp, rtp_end=rtp + 1999 if rtp + 1999 < 65000 else 64999,
        ))
        http_port = free_port()
        http_url = f"http://127.0.0.1:{http_port}"
        floor_port = free_port()
        config_dir = bench_config(work / "config", free_port(), http_port)
        loaded = load_config(config_dir, sounds=installation.sound_languages(),
                             agi_scripts=agi_scripts.handlers().keys())
        fa = loaded.config.settings.fastagi
        wrapper = classic_wrapper(work / "cc-agi", home, config_dir)
        passwords = agent_passwords(instance.secrets_file, softphone_agents(loaded.config))
        files = twin_dialplan(render(loaded.config, loaded.where, agent_passwords=passwords),
                              f"agi://{fa.host}:{fa.port}", wrapper)
        seed = subprocess.run(_cli_command("--home", str(home), "db", "seed-demo"),
                              cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60,
                              check=False)
        if seed.returncode != 0:
            raise BenchError(f"db seed-demo failed: {seed.stderr[-1000:]}")
        database = Path(make_url(default_sqlite_url(home)).database or "")
        odbc_env = odbc_twin.install_files(instance.etc, work / "odbc", database, driver)
        # The product includes this file and never writes it: the loops of (c) live there.
        (instance.etc / "extensions_custom.conf").write_text(
            loop_dialplan(f"agi://{fa.host}:{fa.port}", http_url,
                          f"agi://127.0.0.1:{floor_port}", loop_dips))
        agi_log = work / "fastagi.log"
        try:
            with fastagi_process(home, config_dir, agi_log) as agi, \
                    account_http_process(database, http_port, work / "http.log") as http, \
                    agi_floor_process(floor_port, work / "agi-floor.log") as floor, \
                    environment(odbc_env):
                instance.start()
                apply_files(instance, files)
                bench = Bench(instance, work, fastagi_pid=agi.pid, http_pid=http.pid,
                              floor_pid=floor.pid)
                s = instance.settings
                print(f"Asterisk {installation.version} pid {instance.pid} "
                      f"(SIP 127.0.0.1:{s.sip_port}); FastAGI server pid {agi.pid} "
                      f"({fa.host}:{fa.port}, separate process: callcenter agi serve); "
                      f"func_odbc on {database.name} via {driver.name}; "
                      f"sipp: one process per step; this driver only waits on them. "
                      f"{os.cpu_count()} CPUs, nothing pinned.", flush=True)
                sanity(bench, agi_log)
                part_c(bench, loop_dips, repeats)
                if args.loops_only:
                    return 0
                dips_before = logged_dips(agi_log)[0]
                calls_before = bench.completed["fastagi"]
                results, complete, capped = part_a(bench, rates, step_seconds, repeats,
                                                   time.monotonic() + budget)
                summarize_a(results, complete, capped)
                part_b(bench, 3 if args.quick else 5)
                dips = logged_dips(agi_log)[0] - dips_before
                fast_calls = bench.completed["fastagi"] - calls_before
                print(f"\nFastAGI account_lookup dips logged by the FastAGI process during "
                      f"(a)+(b): {dips}, completed FastAGI calls: {fast_calls}"
                      f"{'' if dips >= fast_calls else '  <- DIPS MISSING: figures unsound'}")
        finally:
            instance.stop()
        part_b_fake(args.quick)
    print(f"\ntotal time {time.monotonic() - began:.0f} s")
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same clean-up as Ctrl-C


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        sys.exit(main())
    except (BenchError, odbc_twin.OdbcTwinError) as exc:
        print(f"bench/ivr.py: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("\ninterrupted: Asterisk and the FastAGI server stopped", file=sys.stderr)
        sys.exit(130)
