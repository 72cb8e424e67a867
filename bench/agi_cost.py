"""Per-call cost of FastAGI vs classic AGI (a process per call), with a fake Asterisk.

Both sides run the same two-command script (GET VARIABLE, SET VARIABLE: a typical
lookup) and the same fake Asterisk on this machine, so the difference is the
transport: one TCP connection to a running server vs one Python process started,
importing the AGI package and speaking over pipes. The classic figure is a lower
bound for ``callcenter agi run``, which also loads the config and the CLI.

    python bench/agi_cost.py [--fastagi-calls 2000] [--classic-calls 50] [--concurrency 10]

Everything stays on 127.0.0.1 and every loop is bounded by the call counts and by
per-step timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from callcenter.asterisk.agi import AGICall, AGIContext, FastAGIServer

STEP_TIMEOUT = 10.0


async def lookup(call: AGICall, ctx: AGIContext) -> None:
    account = await call.get_variable("CC_ACCOUNT")
    await call.set_variable("CC_TIER", "gold" if account == "42" else "basic")


# The classic side runs the same script in a child process, through runner.main().
CHILD = """
import sys
from callcenter.asterisk.agi import AGIContext
from callcenter.asterisk.agi.runner import main

async def lookup(call, ctx):
    account = await call.get_variable("CC_ACCOUNT")
    await call.set_variable("CC_TIER", "gold" if account == "42" else "basic")

sys.exit(main(["lookup"], {"lookup": lookup}, AGIContext(config=None)))
"""

EXPECTED = [b'GET VARIABLE "CC_ACCOUNT"\n', b'SET VARIABLE "CC_TIER" "gold"\n']
ANSWERS = [b"200 result=1 (42)\n", b"200 result=1\n"]


def header(n: int) -> bytes:
    return (
        "agi_network: yes\n"
        "agi_network_script: lookup\n"
        "agi_request: agi://127.0.0.1/lookup\n"
        f"agi_channel: PJSIP/bench-{n:08x}\n"
        f"agi_uniqueid: 1718000000.{n}\n"
        "agi_callerid: 1001\n"
        "\n"
    ).encode()


async def play_asterisk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        n: int) -> None:
    """Asterisk's side of one call: header, two command/answer round trips."""
    async with asyncio.timeout(STEP_TIMEOUT):
        writer.write(header(n))
        for expected, answer in zip(EXPECTED, ANSWERS, strict=True):
            line = await reader.readline()
            if line != expected:
                raise AssertionError(f"call {n}: got {line!r}, expected {expected!r}")
            writer.write(answer)
            await writer.drain()


async def fastagi_calls(total: int, concurrency: int) -> float:
    """Run ``total`` FastAGI calls; return calls per second."""
    async with FastAGIServer({"lookup": lookup}, AGIContext(config=None), port=0) as server:
        counter = iter(range(total))

        async def worker() -> None:
            for n in counter:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                try:
                    await play_asterisk(reader, writer, n)
                    async with asyncio.timeout(STEP_TIMEOUT):
                        if await reader.read() != b"":  # server closes: dialplan goes on
                            raise AssertionError(f"call {n}: unexpected data after script")
                finally:
                    writer.close()
                    await writer.wait_closed()

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        return total / (time.perf_counter() - started)


async def classic_calls(total: int, concurrency: int) -> float:
    """Run ``total`` classic AGI calls, one process each; return calls per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdin is not None and proc.stdout is not None
            try:
                await play_asterisk(proc.stdout, proc.stdin, n)
                proc.stdin.close()
                async with asyncio.timeout(STEP_TIMEOUT):
                    status = await proc.wait()
                if status != 0:
                    raise AssertionError(f"classic call {n}: exit status {status}")
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return total / (time.perf_counter() - started)


async def run(fastagi_total: int, classic_total: int, concurrency: int) -> None:
    fast = await fastagi_calls(fastagi_total, concurrency)
    print(f"FastAGI: {fastagi_total} calls, concurrency {concurrency}: {fast:,.0f} calls/s "
          f"({1000 / fast:.2f} ms/call)")
    classic_concurrency = min(concurrency, 2)  # processes: no point beyond the cores
    classic = await classic_calls(classic_total, classic_concurrency)
    print(f"classic AGI: {classic_total} calls, concurrency {classic_concurrency}: "
          f"{classic:,.1f} calls/s ({1000 / classic:.1f} ms/call)")
    print(f"FastAGI / classic: {fast / classic:,.0f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fastagi-calls", type=int, default=2000)
    parser.add_argument("--classic-calls", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    asyncio.run(run(args.fastagi_calls, args.classic_calls, args.concurrency))


if __name__ == "__main__":
    main()
