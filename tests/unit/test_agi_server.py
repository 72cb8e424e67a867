"""FastAGI server, AGICall and the script registry, against a fake Asterisk over real TCP.

The fake plays Asterisk's side: it sends the header, reads each command line and
asserts its exact bytes, answers as res_agi would, and checks that the server closes
the connection (which is what lets the dialplan continue).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from pathlib import Path

import pytest

from callcenter.asterisk.agi import (
    AGICall,
    AGICommandError,
    AGIContext,
    AGIHangup,
    AGIRequest,
    AGITimeout,
    FastAGIServer,
    ProtocolError,
    ScriptLoadError,
    discover,
)

pytestmark = pytest.mark.timeout(60)  # a regression that blocks the loop fails fast

STEP = 2.0  # upper bound for any single wait in these tests; normal runs take ms


def header(script: str, *args: str, uniqueid: str = "1718000000.1") -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1/{script}",
        "agi_channel: PJSIP/1001-00000001",
        f"agi_uniqueid: {uniqueid}",
        "agi_callerid: 1001",
        *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class FakeAsterisk:
    """Asterisk's end of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FakeAsterisk:
        async with asyncio.timeout(STEP):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, line: bytes) -> None:
        async with asyncio.timeout(STEP):
            got = await self.reader.readline()
        assert got == line

    async def expect_closed(self) -> None:
        """The server closed the connection (after sending nothing more)."""
        async with asyncio.timeout(STEP):
            rest = await self.reader.read()
        assert rest == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


# --- scripts used by the tests --------------------------------------------------------

events: list[str] = []


async def lookup(call: AGICall, ctx: AGIContext) -> None:
    account = await call.get_variable("CC_ACCOUNT")
    tier = "gold" if account == "42" else "basic"
    await call.set_variable("CC_TIER", tier)
    await call.verbose(f"tier {tier} for {call.args[0]}", 3)


async def boom(call: AGICall, ctx: AGIContext) -> None:
    raise ValueError("script bug")


async def two_steps(call: AGICall, ctx: AGIContext) -> None:
    await call.get_variable("A")
    try:
        await call.set_variable("B", "1")
    except AGIHangup:
        events.append("hangup")
        raise
    events.append("finished")


async def sleepy(call: AGICall, ctx: AGIContext) -> None:
    await asyncio.sleep(30)


async def clock(call: AGICall, ctx: AGIContext) -> None:
    await call.set_variable("CC_NOW", ctx.clock().isoformat())


async def many(call: AGICall, ctx: AGIContext) -> None:
    await call.set_variables({"A": "1", "B": "Ada Lovelace", "C": "x,y", "D": "${SHELL(id)}"})


HANDLERS = {"lookup": lookup, "boom": boom, "two_steps": two_steps, "sleepy": sleepy,
            "clock": clock, "many": many}


@pytest.fixture
async def server() -> AsyncIterator[FastAGIServer]:
    ctx = AGIContext(config=None)
    srv = FastAGIServer(HANDLERS, ctx, port=0, header_timeout=0.3, read_timeout=0.3,
                        script_timeout=0.6)
    await srv.start()
    try:
        yield srv
    finally:
        async with asyncio.timeout(STEP):
            await srv.stop()


async def run_lookup(port: int, uniqueid: str = "1718000000.1") -> None:
    """A complete, correct FastAGI call; asserts every byte the server sends."""
    asterisk = await FakeAsterisk.connect(port)
    await asterisk.send(header("lookup", "1001", uniqueid=uniqueid))
    await asterisk.expect(b'GET VARIABLE "CC_ACCOUNT"\n')
    await asterisk.send(b"200 result=1 (42)\n")
    await asterisk.expect(b'SET VARIABLE "CC_TIER" "gold"\n')
    await asterisk.send(b"200 result=1\n")
    await asterisk.expect(b'VERBOSE "tier gold for 1001" "3"\n')
    await asterisk.send(b"200 result=1\n")
    await asterisk.expect_closed()
    await asterisk.close()


async def wait_idle(srv: FastAGIServer) -> None:
    async with asyncio.timeout(STEP):
        while srv.active_connections:
            await asyncio.sleep(0.01)


# --- the server ------------------------------------------------------------------------


async def test_full_script_run(server: FastAGIServer) -> None:
    await run_lookup(server.port)


async def test_unset_variable_takes_the_other_branch(server: FastAGIServer) -> None:
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("lookup", "1001"))
    await asterisk.expect(b'GET VARIABLE "CC_ACCOUNT"\n')
    await asterisk.send(b"200 result=0\n")  # variable not set
    await asterisk.expect(b'SET VARIABLE "CC_TIER" "basic"\n')
    await asterisk.close()


async def test_bare_connect_then_close_then_normal_call(server: FastAGIServer) -> None:
    probe = await FakeAsterisk.connect(server.port)
    await probe.close()
    started = time.monotonic()
    await run_lookup(server.port)
    assert time.monotonic() - started < 1.0


async def test_garbage_and_early_close_do_not_spin_or_block(server: FastAGIServer) -> None:
    bad_inputs = [
        b"",  # connect, close
        b"agi_network: yes\n",  # close mid-header
        b"GET / HTTP/1.1\r\nHost: pbx\r\n\r\n",  # wrong client
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",  # TLS hello bytes
        header("lookup", "1"),  # header, then gone before any answer
    ]
    for i in range(50):
        client = await FakeAsterisk.connect(server.port)
        await client.send(bad_inputs[i % len(bad_inputs)])
        await client.close()
    await wait_idle(server)
    # Nothing left running: the process must be idle, not busy-looping on EOF.
    cpu = time.process_time()
    await asyncio.sleep(0.3)
    assert time.process_time() - cpu < 0.1
    await run_lookup(server.port)


async def test_garbage_connection_is_closed_by_server(server: FastAGIServer) -> None:
    client = await FakeAsterisk.connect(server.port)
    await client.send(b"GET / HTTP/1.1\r\n\r\n")
    await client.expect_closed()
    await client.close()


async def test_handler_exception_sets_error_and_next_call_works(
    server: FastAGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    asterisk = await FakeAsterisk.connect(server.port)
    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.agi"):
        await asterisk.send(header("boom", uniqueid="1718000000.77"))
        await asterisk.expect(b'SET VARIABLE "CC_AGI_ERROR" "script error: ValueError"\n')
        await asterisk.send(b"200 result=1\n")
        await asterisk.expect_closed()
    await asterisk.close()
    [record] = [r for r in caplog.records if "boom" in r.getMessage()]
    assert "PJSIP/1001-00000001" in record.getMessage()
    assert "1718000000.77" in record.getMessage()
    await run_lookup(server.port)


async def test_unknown_script(server: FastAGIServer, caplog: pytest.LogCaptureFixture) -> None:
    asterisk = await FakeAsterisk.connect(server.port)
    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.agi"):
        await asterisk.send(header("acount_lookup"))
        await asterisk.expect(b'SET VARIABLE "CC_AGI_ERROR" "unknown script"\n')
        await asterisk.send(b"200 result=1\n")
        await asterisk.expect_closed()
    await asterisk.close()
    assert any("acount_lookup" in r.getMessage() for r in caplog.records)


async def test_hangup_mid_script(server: FastAGIServer) -> None:
    events.clear()
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("two_steps"))
    await asterisk.expect(b'GET VARIABLE "A"\n')
    await asterisk.send(b"200 result=1 (x)\n")
    await asterisk.expect(b'SET VARIABLE "B" "1"\n')
    # The caller hangs up: Asterisk sends HANGUP, then still answers the command in
    # dead-channel mode. The script is told, and nothing more is sent.
    await asterisk.send(b"HANGUP\n200 result=1\n")
    await asterisk.expect_closed()
    await asterisk.close()
    assert events == ["hangup"]
    await run_lookup(server.port)


async def test_hangup_right_after_header_sends_nothing(server: FastAGIServer) -> None:
    events.clear()
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("two_steps") + b"HANGUP\n")  # caller gone already
    await asterisk.expect_closed()
    await asterisk.close()


async def test_eof_mid_script(server: FastAGIServer) -> None:
    events.clear()
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("two_steps"))
    await asterisk.expect(b'GET VARIABLE "A"\n')
    await asterisk.send(b"200 result=1 (x)\n")
    await asterisk.expect(b'SET VARIABLE "B" "1"\n')
    await asterisk.send(b"200 resu")  # cut mid-response
    await asterisk.close()
    await wait_idle(server)
    assert events == ["hangup"]
    await run_lookup(server.port)


async def test_header_timeout(server: FastAGIServer) -> None:
    slow = await FakeAsterisk.connect(server.port)
    await slow.send(b"agi_network: yes\n")  # ...and never the rest
    await run_lookup(server.port)  # served meanwhile
    started = time.monotonic()
    await slow.expect_closed()
    assert time.monotonic() - started < 1.0  # header_timeout is 0.3 s
    await slow.close()


async def test_read_timeout_closes_without_another_command(server: FastAGIServer) -> None:
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("lookup", "1001"))
    await asterisk.expect(b'GET VARIABLE "CC_ACCOUNT"\n')
    # No answer: after read_timeout the stream is out of step, so the server must not
    # send CC_AGI_ERROR (it would be read as the answer); it just closes.
    await asterisk.expect_closed()
    await asterisk.close()


async def test_script_timeout(server: FastAGIServer) -> None:
    asterisk = await FakeAsterisk.connect(server.port)
    await asterisk.send(header("sleepy"))
    await asterisk.expect(b'SET VARIABLE "CC_AGI_ERROR" "script timeout"\n')
    await asterisk.send(b"200 result=1\n")
    await asterisk.expect_closed()
    await asterisk.close()


async def test_context_reaches_the_script() -> None:
    from datetime import datetime

    fixed = datetime(2024, 12, 24, 18, 30, tzinfo=UTC)
    ctx = AGIContext(config={"name": "test"}, clock=lambda: fixed)
    async with FastAGIServer(HANDLERS, ctx, port=0) as srv:
        asterisk = await FakeAsterisk.connect(srv.port)
        await asterisk.send(header("clock"))
        await asterisk.expect(b'SET VARIABLE "CC_NOW" "2024-12-24T18:30:00+00:00"\n')
        await asterisk.send(b"200 result=1\n")
        await asterisk.expect_closed()
        await asterisk.close()


async def test_concurrent_calls_are_independent(server: FastAGIServer) -> None:
    stuck = await FakeAsterisk.connect(server.port)
    await stuck.send(header("two_steps"))
    await stuck.expect(b'GET VARIABLE "A"\n')  # left waiting for its answer
    async with asyncio.timeout(STEP):
        await asyncio.gather(*(run_lookup(server.port, f"1718000000.{i}") for i in range(10)))
    await stuck.close()


async def test_max_connections_refuses_extra() -> None:
    ctx = AGIContext(config=None)
    async with FastAGIServer(HANDLERS, ctx, port=0, max_connections=1) as srv:
        first = await FakeAsterisk.connect(srv.port)
        await first.send(header("two_steps"))
        await first.expect(b'GET VARIABLE "A"\n')
        extra = await FakeAsterisk.connect(srv.port)
        async with asyncio.timeout(STEP):
            try:
                assert await extra.reader.read() == b""
            except ConnectionResetError:
                pass  # abort() may surface as a reset: refused either way
        await extra.close()
        await first.close()


async def test_stop_cancels_running_calls_and_closes_sockets() -> None:
    ctx = AGIContext(config=None)
    srv = FastAGIServer(HANDLERS, ctx, port=0)
    await srv.start()
    port = srv.port
    asterisk = await FakeAsterisk.connect(port)
    await asterisk.send(header("two_steps"))
    await asterisk.expect(b'GET VARIABLE "A"\n')
    assert srv.active_connections == 1
    async with asyncio.timeout(STEP):
        await srv.stop()
    assert srv.active_connections == 0
    await asterisk.expect_closed()
    await asterisk.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_serve_forever_stops_on_cancel() -> None:
    srv = FastAGIServer(HANDLERS, AGIContext(config=None), port=0)
    await srv.start()
    task = asyncio.get_running_loop().create_task(srv.serve_forever())
    try:
        await run_lookup(srv.port)
    finally:
        task.cancel()
        async with asyncio.timeout(STEP):
            with pytest.raises(asyncio.CancelledError):
                await task
    with pytest.raises(RuntimeError):
        srv.port  # noqa: B018 - stopped servers have no port


# --- AGICall over a socket pair -----------------------------------------------------------


@pytest.fixture
async def call_pair() -> AsyncIterator[Callable[..., tuple[AGICall, FakeAsterisk]]]:
    opened: list[asyncio.StreamWriter] = []

    async def make(**kwargs: object) -> tuple[AGICall, FakeAsterisk]:
        ours, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=ours)
        their_reader, their_writer = await asyncio.open_connection(sock=theirs)
        opened.extend([writer, their_writer])
        request = AGIRequest({"agi_network_script": "t", "agi_arg_1": "x"})
        return AGICall(request, reader, writer, **kwargs), FakeAsterisk(their_reader, their_writer)

    yield make  # type: ignore[misc]
    for writer in opened:
        writer.close()


async def test_call_get_variable_and_commands(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.send(b"200 result=1 (with ) paren)\n200 result=0\n200 result=0\n")
    assert await call.get_variable("X") == "with ) paren"
    assert await call.get_variable("UNSET") is None
    response = await call.answer()
    assert response.result == "0"
    await asterisk.expect(b'GET VARIABLE "X"\n')
    await asterisk.expect(b'GET VARIABLE "UNSET"\n')
    await asterisk.expect(b"ANSWER\n")
    assert call.args == ("x",)


async def test_call_stream_file_digit(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.send(b"100 result=0 Trying...\n200 result=50 endpos=4000\n")
    response = await call.stream_file("queue-thankyou", "12")
    await asterisk.expect(b'STREAM FILE "queue-thankyou" "12"\n')
    assert response.digit == "2" and response.extra["endpos"] == "4000"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (b"510 Invalid or unknown command\n", 510),
        (
            (
                b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n"
                b"520 End of proper usage.\n"
            ),
            520,
        ),
        (b"511 Command Not Permitted on a dead channel or intercept routine\n", 511),
    ],
)
async def test_call_command_errors(call_pair, answer: bytes, code: int) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.send(answer)
    with pytest.raises(AGICommandError) as info:
        await call.command("DATABASE GET", "a")
    assert info.value.code == code and info.value.command == "DATABASE GET"
    if code == 520:
        assert "Usage: x" in info.value.message
    # 511 means the channel is dead; the others leave the call usable.
    assert call.hung_up == (code == 511)
    assert call.usable == (code != 511)


async def test_call_hangup_notice_while_idle_then_command(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.send(b"HANGUP\n200 result=1 (v)\n")
    with pytest.raises(AGIHangup):
        await call.get_variable("X")
    assert call.hung_up
    with pytest.raises(AGIHangup):  # not even sent
        await call.verbose("after")
    await asterisk.expect(b'GET VARIABLE "X"\n')
    asterisk.writer.close()
    assert await asterisk.reader.read() == b""


async def test_call_timeout_marks_call_unusable(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair(read_timeout=0.05)
    with pytest.raises(AGITimeout):
        await call.get_variable("X")
    assert not call.usable
    await asterisk.send(b"200 result=1 (late)\n")  # a late answer must not be misread
    with pytest.raises(ProtocolError):
        await call.get_variable("Y")


async def test_call_cancelled_mid_read_marks_call_unusable(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    task = asyncio.get_running_loop().create_task(call.get_variable("X"))
    await asterisk.expect(b'GET VARIABLE "X"\n')
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not call.usable
    with pytest.raises(ProtocolError):
        await call.get_variable("Y")


async def test_call_eof(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.close()
    with pytest.raises(AGIHangup):
        await call.get_variable("X")
    assert call.hung_up and not call.usable


async def test_call_hangup_command_tolerates_notice(call_pair) -> None:  # type: ignore[no-untyped-def]
    call, asterisk = await call_pair()
    await asterisk.send(b"HANGUP\n200 result=1\n")
    await call.hangup()
    assert call.hung_up
    await asterisk.expect(b"HANGUP\n")


# --- registry ---------------------------------------------------------------------------------


def make_package(root: Path, name: str, modules: dict[str, str]) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""test scripts"""\n')
    for module, source in modules.items():
        (pkg / f"{module}.py").write_text(source)


GOOD = '"""AGI(agi://127.0.0.1/{n}): test."""\nasync def handle(call, ctx):\n    pass\n'


def test_discover_finds_scripts_and_skips_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "scripts_ok", {
        "account_lookup": GOOD.format(n="account_lookup"),
        "schedule_check": GOOD.format(n="schedule_check"),
        "_helpers": "X = 1\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    handlers = discover("scripts_ok")
    assert sorted(handlers) == ["account_lookup", "schedule_check"]
    assert handlers["account_lookup"].__module__ == "scripts_ok.account_lookup"
    monkeypatch.delitem(sys.modules, "scripts_ok")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('"""doc"""\ndef handle(call, ctx):\n    pass\n', "async def handle"),
        ('"""doc"""\nHANDLE = 1\n', "async def handle"),
        ("async def handle(call, ctx):\n    pass\n", "docstring"),
    ],
)
def test_discover_rejects_broken_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, message: str
) -> None:
    name = f"scripts_bad_{abs(hash(source))}"
    make_package(tmp_path, name, {"broken": source})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ScriptLoadError, match=message):
        discover(name)


def test_discover_real_package_imports() -> None:
    handlers = discover("agi_scripts")
    assert all(not name.startswith("_") for name in handlers)


async def test_set_variables_batches_safe_values_into_one_mset(server: FastAGIServer) -> None:
    """Safe values go in one EXEC MSet; a comma or ${...} gets its own SET VARIABLE, so
    neither can split the MSet nor be substituted by Asterisk."""
    ast = await FakeAsterisk.connect(server.port)
    try:
        await ast.send(header("many"))
        await ast.expect(b'SET VARIABLE "C" "x,y"\n')
        await ast.send(b"200 result=1\n")
        await ast.expect(b'SET VARIABLE "D" "${SHELL(id)}"\n')
        await ast.send(b"200 result=1\n")
        await ast.expect(b'EXEC "MSet" "A=1,B=Ada Lovelace"\n')
        await ast.send(b"200 result=0\n")
        await ast.expect_closed()
    finally:
        await ast.close()


def test_serves_on_uvloop_with_a_header_split_in_every_line() -> None:
    """The CLI runs the server on uvloop, whose transports are not asyncio classes;
    and Asterisk sends the header one line per segment."""
    import uvloop

    async def scenario() -> None:
        srv = FastAGIServer(HANDLERS, AGIContext(config=None), port=0, header_timeout=2,
                            read_timeout=2)
        await srv.start()
        try:
            ast = await FakeAsterisk.connect(srv.port)
            try:
                for line in header("lookup", "42").splitlines(keepends=True):
                    await ast.send(line)
                    await asyncio.sleep(0.001)
                await ast.expect(b'GET VARIABLE "CC_ACCOUNT"\n')
                await ast.send(b"200 result=1 (42)\n")
                await ast.expect(b'SET VARIABLE "CC_TIER" "gold"\n')
                await ast.send(b"200 result=1\n")
                await ast.expect(b'VERBOSE "tier gold for 42" "3"\n')
                await ast.send(b"200 result=1\n")
                await ast.expect_closed()
            finally:
                await ast.close()
        finally:
            await srv.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(scenario(), 10))
