"""IVR throughput on a real Asterisk 22: the example IVR's FastAGI dip vs native dialplan.

    python bench/ivr.py [--quick]

What runs where (all on 127.0.0.1, on this machine, no CPU pinning):

* **Asterisk 22** (``callcenter.asterisk.provision.install()``, cached) in a temporary
  home on free loopback ports, with ``config/example`` plus ``bench.yaml`` (below) applied
  through ``callcenter.apply.apply_files``;
* **the FastAGI server** in its own process: ``callcenter --home H -v agi serve CONFIG``
  (the same CLI and ``agi_scripts/`` production uses; a SQLite database seeded with the
  demo accounts by ``callcenter db seed-demo``);
* **sipp** as the caller, one process per load step, driven by this script, which only
  starts processes and reads their results (no event loop competes with them).

Three entry points are added to a *copy* of ``config/example`` (``bench.yaml``); their
flows are the same four YAML steps, rendered by the same generator, and only the
data-dip line differs after rendering::

    entry  7001 bench_fastagi  7002 bench_native              7003 bench_classic
    cc-entrypoint-*:  NoOp, Answer (the 200 OK), Set language, Set CC_ENTRY, Set priority,
                      Gosub(cc-caller-rules) -- identical, generated
    cc-flow-*:
      play silence/1  Playback(silence/1) -- identical
      check_schedule  Gosub(cc-schedule-bench_hours) (native dialplan) + GotoIf
                      holiday / closed -> Hangup -- identical
      lookup account  Set(CC_LOOKUP_STATUS=) -- identical
                      AGI(agi://.../         Set(CC_LOOKUP_STATUS=     AGI(<cc-agi>,
                        account_lookup,        found)                    account_lookup,
                        account,${CALLERID})                             account,...)
      hangup          Hangup(16) -- identical

So a FastAGI call makes one FastAGI connection (account_lookup on the caller's number,
a real SQLite query that finds the demo account 100200, five variables set in one
``EXEC MSet``); the native twin sets the lookup status with ``Set``. ``bench_hours`` is
open all week so every call takes the dip whatever the time of day. ``<cc-agi>`` is a
shell wrapper that execs ``callcenter --home H agi run CONFIG <script>``: classic AGI,
one Python process per dip.

Measurements:

(a) For each rate step (calls/s), sipp places ``rate x step_seconds`` calls
    (``-r RATE -m COUNT -l LIMIT``): INVITE with SDP, 200, ACK, then waits for Asterisk's
    BYE (the IVR hangs up after ~1 s of silence) and answers 200. Native and FastAGI run
    alternately at each rate, in the same Asterisk. Recorded per step: failed calls
    (sipp's failed calls plus calls never completed), INVITE->200 response time (sipp
    ``rtd`` 1, every sample from ``-trace_rtt``: average, 99th percentile, max) and the
    IVR time 200->BYE (``rtd`` 2, average). sipp's clock here ticks in 4 ms steps
    (response times read 0, 4, 8, 12 ms...), so "p99 < 10 ms" means p99 <= 8 ms. A step is *clean* when no call failed and the
    **99th percentile** of INVITE->200 is under 10 ms (the max is printed too: a single
    scheduler hiccup on 2 cores would otherwise decide the result). The highest clean
    rate of each IVR and the ratio FastAGI/native are printed. Asterisk sends the 200 at
    ``Answer()``, before the dip: the dip shows in INVITE->200 only through the CPU the
    FastAGI process takes from Asterisk, and directly in 200->BYE.
(b) Cost of a dip through Asterisk: a few calls at 1 call/s to each of 7002, 7001, 7003;
    the extra 200->BYE time over the native twin (one dip per call) is the
    cost of one FastAGI dip and of one classic AGI dip. ``bench/agi_cost.py`` (fake
    Asterisk, transport only) is run too and its output printed.

Bounds: at most ``step_seconds`` of call generation per step plus the drain, a global
deadline for (a), a sipp timeout per run, and a wait of at most 20 s for Asterisk to have
no channel left between steps. Asterisk and the FastAGI process are stopped on every
exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: import the repo's packages
    sys.path.insert(0, str(REPO))

from callcenter.asterisk import variables as V
from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.testing.ports import free_port, free_udp_tcp_port
from callcenter.testing.sipp import PROVISIONAL, in_dialog, invite, ok_to_request

EXAMPLE = REPO / "config" / "example"
CALLER_ID = "100200"  # a demo account number: the CALLERID lookup finds it
RESPONSE_LIMIT_MS = 10.0
NUMBERS = {"native": "7002", "fastagi": "7001", "classic": "7003"}

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
  bench_fastagi: {{numbers: ["{NUMBERS['fastagi']}"], flow: bench_fastagi}}
  bench_native: {{numbers: ["{NUMBERS['native']}"], flow: bench_native}}
  bench_classic: {{numbers: ["{NUMBERS['classic']}"], flow: bench_classic}}

flows:
  bench_fastagi:
    steps:
{BENCH_STEPS}
  bench_native:
    steps:
{BENCH_STEPS}
  bench_classic:
    steps:
{BENCH_STEPS}
"""

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
def fastagi_process(home: Path, config_dir: Path, log_file: Path,
                    timeout: float = 30.0) -> Iterator[subprocess.Popen[bytes]]:
    """``callcenter agi serve`` in its own process (and session: Ctrl-C is ours to relay)."""
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            _cli_command("--home", str(home), "-v", "agi", "serve", str(config_dir)),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=REPO, env=_env(), start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while "FastAGI listening" not in log_file.read_text(errors="replace"):
            if proc.poll() is not None:
                raise BenchError(f"FastAGI server exited with {proc.returncode}:\n"
                                 + log_file.read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                raise BenchError(f"FastAGI server not listening after {timeout:.0f} s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the CLI's graceful stop
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- config ------------------------------------------------------------------

def bench_config(dest: Path, fastagi_port: int) -> Path:
    """A copy of config/example with the FastAGI port moved and ``bench.yaml`` added."""
    shutil.copytree(EXAMPLE, dest)
    settings = dest / "settings.yaml"
    text = settings.read_text()
    if "    port: 4573" not in text:
        raise BenchError("config/example/settings.yaml changed: update bench/ivr.py")
    settings.write_text(text.replace("    port: 4573", f"    port: {fastagi_port}"))
    (dest / "bench.yaml").write_text(BENCH_YAML)
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
    """Turn the generated ``bench_native`` / ``bench_classic`` flows into their twins.

    Only the data-dip lines change; everything else is the generator's output, so the
    three IVRs have the same shape by construction.
    """
    name = "extensions_callcenter.conf"
    text = files[name]
    lookup_agi = f",AGI({agi_url}/account_lookup,account,"
    text = _edit_context(text, "cc-flow-bench_native", [
        (lookup_agi + "${FILTER(0-9,${CALLERID(num)})})\n",
         f",Set({V.LOOKUP_STATUS}=found)\n"),
    ])
    text = _edit_context(text, "cc-flow-bench_classic", [
        (lookup_agi, f",AGI({classic_program},account_lookup,account,"),
    ])
    return {**files, name: text}


def classic_wrapper(path: Path, home: Path, config_dir: Path) -> Path:
    """Classic AGI program: Asterisk runs it with the script name as first argument."""
    cmd = " ".join(shlex.quote(a) for a in _cli_command(
        "--home", str(home), "agi", "run", str(config_dir)))
    path.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))}\nexport PYTHONPATH\n"
                    f'exec {cmd} "$1"\n')
    path.chmod(0o755)
    return path


# -- sipp --------------------------------------------------------------------

@dataclass(frozen=True)
class StepResult:
    ivr: str
    rate: int
    calls: int
    ok: int
    failed: int
    invite_200_ms: list[float]
    ivr_ms: list[float]
    left_channels: int
    wall: float
    #: CPU milliseconds per completed call, of Asterisk and of the FastAGI server.
    asterisk_cpu_ms: float = float("nan")
    fastagi_cpu_ms: float = float("nan")

    @property
    def p99(self) -> float:
        return _percentile(self.invite_200_ms, 99)

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.left_channels == 0 and bool(self.invite_200_ms)
                and self.p99 < RESPONSE_LIMIT_MS)


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


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
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return float("nan")
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, instance: AsteriskInstance, workdir: Path,
                 fastagi_pid: int | None = None) -> None:
        self.instance = instance
        self.fastagi_pid = fastagi_pid
        self.workdir = workdir
        self.scenario = workdir / "ivr-caller.xml"
        self.scenario.write_text(SCENARIO)
        #: Calls that completed, per IVR (to check the FastAGI server saw every dip).
        self.completed = {ivr: 0 for ivr in NUMBERS}

    def step(self, ivr: str, rate: float, count: int, limit: int) -> StepResult:
        began = time.monotonic()
        cpu_before = (cpu_seconds(self.instance.pid), cpu_seconds(self.fastagi_pid))
        ok, failed, inv, ivr_ms, err = run_sipp(
            self.workdir, self.scenario, self.instance.settings.sip_port, NUMBERS[ivr],
            rate=rate, count=count, limit=limit, timeout=count / rate + 25)
        left = self.instance.wait_no_channels()
        cpu_after = (cpu_seconds(self.instance.pid), cpu_seconds(self.fastagi_pid))
        per_call = [(a - b) * 1000 / max(1, ok) for a, b in zip(cpu_after, cpu_before)]
        failed += max(0, count - ok - failed)  # never completed (sipp timeout)
        self.completed[ivr] += ok
        if err and failed:
            print(f"    sipp ({ivr} @ {rate:g}/s): {err.splitlines()[-1][:200]}", flush=True)
        return StepResult(ivr, int(rate), count, ok, failed, inv, ivr_ms, left,
                          time.monotonic() - began, per_call[0], per_call[1])


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def print_table(results: list[StepResult]) -> None:
    print(f"{'IVR':8} {'rate/s':>6} {'calls':>6} {'failed':>6} "
          f"{'200 avg':>8} {'200 p99':>8} {'200 max':>8} {'IVR avg':>8} {'left':>4}  clean"
          "   CPU ms/call: Asterisk  FastAGI")
    for r in results:
        print(f"{r.ivr:8} {r.rate:>6} {r.calls:>6} {r.failed:>6} "
              f"{_fmt(_mean(r.invite_200_ms)):>8} {_fmt(r.p99):>8} "
              f"{_fmt(max(r.invite_200_ms, default=float('nan'))):>8} "
              f"{_fmt(_mean(r.ivr_ms)):>8} {r.left_channels:>4}  "
              f"{'yes' if r.clean else 'NO ':3}  {'':13}{r.asterisk_cpu_ms:>8.2f} "
              f"{r.fastagi_cpu_ms:>8.2f}")


def part_a(bench: Bench, rates: list[int], step_seconds: float, deadline: float) -> None:
    print(f"\n(a) load steps: {step_seconds:g} s of calls per step, native and FastAGI "
          "alternately; times in ms (200 = INVITE->200, IVR = 200->BYE); "
          f"clean = 0 failed and p99 INVITE->200 < {RESPONSE_LIMIT_MS:g} ms", flush=True)
    results: list[StepResult] = []
    misses = {"native": 0, "fastagi": 0}
    stopped_by_deadline = False
    for rate in rates:
        for ivr in ("native", "fastagi"):
            if misses[ivr] >= 2:
                continue  # two unclean steps in a row: this IVR is past its limit
            if time.monotonic() + step_seconds + 25 > deadline:
                stopped_by_deadline = True
                break
            count = max(1, int(rate * step_seconds))
            r = bench.step(ivr, rate, count, limit=max(10, rate * 4))
            results.append(r)
            misses[ivr] = 0 if r.clean else misses[ivr] + 1
            print(f"  {ivr:8} {rate:>4}/s: {r.ok}/{r.calls} ok, {r.failed} failed, "
                  f"INVITE->200 p99 {_fmt(r.p99)} ms, max "
                  f"{_fmt(max(r.invite_200_ms, default=float('nan')))} ms, "
                  f"IVR {_fmt(_mean(r.ivr_ms))} ms ({r.wall:.1f} s)", flush=True)
        if stopped_by_deadline or all(m >= 2 for m in misses.values()):
            break
    print()
    print_table(results)
    if stopped_by_deadline:
        print("(stopped early: global deadline)")
    best = {}
    for ivr in ("native", "fastagi"):
        clean = [r.rate for r in results if r.ivr == ivr and r.clean]
        best[ivr] = max(clean, default=0)
        tried = max((r.rate for r in results if r.ivr == ivr), default=0)
        capped = " (= highest step tried: the real limit is higher)" if best[ivr] == tried \
            and tried else ""
        print(f"highest clean rate, {ivr}: {best[ivr]} calls/s{capped}")
    if best["native"]:
        ratio = best["fastagi"] / best["native"]
        print(f"ratio FastAGI/native: {ratio:.2f} (goal >= 0.9: "
              f"{'met' if ratio >= 0.9 else 'NOT met'})")
    else:
        print("ratio FastAGI/native: undefined (native never clean)")


def part_b(bench: Bench, calls: int) -> None:
    print(f"\n(b) cost of a dip through Asterisk: {calls} calls at 1 call/s each, "
          "1 dip per call; IVR time = 200->BYE (ms)", flush=True)
    ivr_time = {}
    for ivr in ("native", "fastagi", "classic"):
        r = bench.step(ivr, 1, calls, limit=calls)
        ivr_time[ivr] = _mean(r.ivr_ms)
        print(f"  {ivr:8} {r.ok}/{r.calls} ok, IVR avg {_fmt(ivr_time[ivr])} ms, "
              f"min {_fmt(min(r.ivr_ms, default=float('nan')))} ms, "
              f"max {_fmt(max(r.ivr_ms, default=float('nan')))} ms", flush=True)
    fast = ivr_time["fastagi"] - ivr_time["native"]
    classic = ivr_time["classic"] - ivr_time["native"]
    print(f"  per dip over native: FastAGI {fast:.1f} ms, classic AGI {classic:.1f} ms"
          + (f" (classic/FastAGI {classic / fast:.0f}x)" if fast > 0.05 else ""))


def part_b_fake(quick: bool) -> None:
    args = ["--fastagi-calls", "500", "--classic-calls", "10"] if quick else \
        ["--fastagi-calls", "2000", "--classic-calls", "30"]
    print(f"\n(b') bench/agi_cost.py {' '.join(args)} (fake Asterisk, transport only):",
          flush=True)
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "agi_cost.py"), *args],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180, check=False)
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps (smoke run)")
    args = parser.parse_args(argv)
    rates = [25, 100] if args.quick else [50, 100, 150, 200, 250, 275, 300, 325, 350, 400, 450]
    step_seconds = 2.0 if args.quick else 4.0
    budget = 60.0 if args.quick else 300.0

    import agi_scripts
    from callcenter.apply import apply_files
    from callcenter.asterisk.provision import install
    from callcenter.asterisk.secrets import agent_passwords
    from callcenter.config.loader import load_config
    from dialplan.generator import render, softphone_agents

    began = time.monotonic()
    if shutil.which("sipp") is None and not Path("/usr/bin/sipp").exists():
        raise BenchError("sipp not found: apt-get install sip-tester")
    with tempfile.TemporaryDirectory(prefix="cc-bench-ivr-") as tmp:
        work = Path(tmp)
        home = work / "home"
        installation = install()
        instance = AsteriskInstance(home)
        rtp = 20000 + (free_port() % 200) * 50
        instance.setup(installation, InstanceSettings(
            sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
            rtp_start=rtp, rtp_end=rtp + 1999 if rtp + 1999 < 65000 else 64999,
        ))
        config_dir = bench_config(work / "config", free_port())
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
        agi_log = work / "fastagi.log"
        try:
            with fastagi_process(home, config_dir, agi_log) as agi:
                instance.start()
                apply_files(instance, files)
                bench = Bench(instance, work, fastagi_pid=agi.pid)
                s = instance.settings
                print(f"Asterisk {installation.version} pid {instance.pid} "
                      f"(SIP 127.0.0.1:{s.sip_port}); FastAGI server pid {agi.pid} "
                      f"({fa.host}:{fa.port}, separate process: callcenter agi serve); "
                      f"sipp: one process per step; this driver only waits on them. "
                      f"{os.cpu_count()} CPUs, nothing pinned.", flush=True)
                for ivr in ("native", "fastagi", "classic"):
                    r = bench.step(ivr, 2, 2, limit=2)
                    if r.failed or r.ok != 2:
                        raise BenchError(f"sanity calls to {ivr} ({NUMBERS[ivr]}) failed")
                dips_before = agi_log.read_text(errors="replace").count("account_lookup ")
                calls_before = bench.completed["fastagi"]
                part_a(bench, rates, step_seconds, time.monotonic() + budget)
                part_b(bench, 3 if args.quick else 6)
                dips = agi_log.read_text(errors="replace").count("account_lookup ") \
                    - dips_before
                print(f"\nFastAGI account_lookup dips logged by the FastAGI process during "
                      f"(a)+(b): {dips}, completed FastAGI calls: "
                      f"{bench.completed['fastagi'] - calls_before}")
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
    except KeyboardInterrupt:
        print("\ninterrupted: Asterisk and the FastAGI server stopped", file=sys.stderr)
        sys.exit(130)
