"""Classic AGI runner: a real child process fed over stdin/stdout pipes, as Asterisk does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from callcenter.asterisk.agi import AGICall, AGIContext, run_stdio

pytestmark = pytest.mark.timeout(60)

# The child process: a tiny inline script set, run through runner.main() as the CLI will.
CHILD = r"""
import sys
from callcenter.asterisk.agi import AGIContext, AGIHangup, main

async def echo(call, ctx):
    print("stray print must not reach Asterisk")
    value = await call.get_variable("CC_IN")
    await call.set_variable("CC_OUT", f"{value}|{','.join(call.args)}")

async def boom(call, ctx):
    raise KeyError("account")

sys.exit(main(sys.argv[1:], {"echo": echo, "boom": boom}, AGIContext(config=None)))
"""


# The same child, saying on stderr when its event loop has taken SIGHUP (the runner's
# handler marks the call hung up through AGICall.notify_hangup; this wraps it).
CHILD_REPORTING_SIGHUP = r"""
import sys
from callcenter.asterisk.agi import AGICall

_notify_hangup = AGICall.notify_hangup

def notify_hangup(self):
    _notify_hangup(self)
    print("SIGHUP taken", file=sys.stderr, flush=True)

AGICall.notify_hangup = notify_hangup
""" + CHILD


def header(request: str, *args: str) -> bytes:
    lines = [
        f"agi_request: {request}",
        "agi_channel: PJSIP/1001-00000001",
        "agi_uniqueid: 1718000000.9",
        "agi_callerid: 1001",
        *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


def run_child(stdin: bytes, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, *argv], input=stdin, capture_output=True, timeout=30,
        check=False,
    )


def test_cli_named_script_and_its_args() -> None:
    # AGI(callcenter,agi,run,echo,42,a b): Asterisk passes every word as agi_arg_N.
    result = run_child(
        header("/usr/local/bin/callcenter", "agi", "run", "echo", "42", "a b")
        + b"200 result=1 (hello)\n200 result=1\n",
        "echo",
    )
    assert result.stdout == b'GET VARIABLE "CC_IN"\nSET VARIABLE "CC_OUT" "hello|42,a b"\n'
    assert result.returncode == 0
    assert b"stray print must not reach Asterisk" in result.stderr


def test_script_from_agi_request_basename() -> None:
    result = run_child(
        header("/var/lib/asterisk/agi-bin/echo.py", "7") + b"200 result=0\n200 result=1\n"
    )
    assert result.stdout == b'GET VARIABLE "CC_IN"\nSET VARIABLE "CC_OUT" "None|7"\n'
    assert result.returncode == 0


def test_unknown_script() -> None:
    result = run_child(header("/var/lib/asterisk/agi-bin/nope") + b"200 result=1\n")
    assert result.stdout == b'SET VARIABLE "CC_AGI_ERROR" "unknown script"\n'
    assert result.returncode == 1


def test_script_exception_sets_error_variable() -> None:
    result = run_child(header("boom") + b"200 result=1\n")
    assert result.stdout == b'SET VARIABLE "CC_AGI_ERROR" "script error: KeyError"\n'
    assert result.returncode == 1
    assert b"KeyError" in result.stderr and b"1718000000.9" in result.stderr


def test_no_header_exits_promptly() -> None:
    result = run_child(b"")
    assert (result.stdout, result.returncode) == (b"", 1)
    result = run_child(b"agi_request: echo\n")  # closed mid-header
    assert (result.stdout, result.returncode) == (b"", 1)


@pytest.mark.parametrize(
    ("answers", "written"),
    [
        # HANGUP already waiting before the first command: nothing is sent at all.
        (b"HANGUP\n200 result=1 (x)\n", b""),
        # HANGUP after the first answer: the second command is not sent.
        (b"200 result=1 (x)\nHANGUP\n200 result=1\n", b'GET VARIABLE "CC_IN"\n'),
    ],
)
def test_hangup_line_stops_the_script(answers: bytes, written: bytes) -> None:
    # Asterisk signals classic AGI with SIGHUP, but the runner shares the protocol
    # core, so a HANGUP line is honoured too.
    result = run_child(header("echo") + answers)
    assert result.stdout == written
    assert result.returncode == 0


async def test_sighup_stops_the_next_command() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD_REPORTING_SIGHUP, "echo",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            proc.stdin.write(header("echo"))
            await proc.stdin.drain()
            assert await proc.stdout.readline() == b'GET VARIABLE "CC_IN"\n'
            # The handler is installed before the header is read, so this is the
            # channel hanging up while the script waits for an answer.
            proc.send_signal(signal.SIGHUP)
            # The answer must arrive after the child's loop took the signal.
            while (line := await proc.stderr.readline()) != b"SIGHUP taken\n":
                assert line, "child's stderr ended before it took SIGHUP"
            proc.stdin.write(b"200 result=1 (x)\n")
            await proc.stdin.drain()
            assert await proc.stdout.read() == b""  # SET VARIABLE never sent
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_run_stdio_in_process_over_pipes() -> None:
    seen: list[tuple[str, ...]] = []

    async def args_only(call: AGICall, ctx: AGIContext) -> None:
        seen.append(call.args)
        await call.verbose("ok")

    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    os.write(in_write, header("x", "agi", "run", "args_only", "1", "2") + b"200 result=1\n")
    os.close(in_write)
    stdin = os.fdopen(in_read, "rb", buffering=0)
    stdout = os.fdopen(out_write, "wb", buffering=0)
    try:
        status = await run_stdio({"args_only": args_only}, AGIContext(config=None),
                                 "args_only", stdin=stdin, stdout=stdout)
    finally:
        stdin.close()
        stdout.close()
    with os.fdopen(out_read, "rb") as out:
        written = out.read()
    assert status == 0
    assert seen == [("1", "2")]
    assert written == b'VERBOSE "ok" "1"\n'


def test_regular_files_when_run_by_hand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # `callcenter agi run echo < session.txt > out.txt`: not pipes, still works.
    session = tmp_path / "session.txt"
    session.write_bytes(header("echo", "5") + b"200 result=1 (v)\n200 result=1\n")
    out = tmp_path / "out.txt"
    with session.open("rb") as stdin, out.open("wb") as stdout:
        result = subprocess.run([sys.executable, "-c", CHILD, "echo"], stdin=stdin,
                                stdout=stdout, stderr=subprocess.PIPE, timeout=30, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes() == b'GET VARIABLE "CC_IN"\nSET VARIABLE "CC_OUT" "v|5"\n'
