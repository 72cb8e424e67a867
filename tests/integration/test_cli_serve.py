"""``callcenter serve`` in a subprocess next to the session PBX (its home, its running
Asterisk, its database), on a config copy with free FastAGI and HTTP API ports (the
fixture's own FastAGI server holds the example's): ``callcenter agents`` changes and
lists live state through it, and SIGTERM stops it cleanly (exit 0, api.json gone)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from callcenter.testing.ports import free_port
from callcenter.web.endpoint import read_endpoint
from tests.conftest import PBX, _example_copy

pytestmark = pytest.mark.integration

_CLI = ("-c", "from callcenter.cli import main; main()")


async def _callcenter(home: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *_CLI, "--home", str(home), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_runs_the_api_that_agents_commands_use_and_stops_on_sigterm(
        pbx: PBX, tmp_path: Path) -> None:
    home = pbx.instance.home
    fastagi, api_port = free_port(), free_port()
    config = _example_copy(tmp_path / "example", fastagi, http_api_port=api_port)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *_CLI, "--home", str(home), "serve", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not (output and output[-1].startswith("HTTP API listening")):
                line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
                assert line, "callcenter serve exited early:\n" + "".join(output)
                output.append(line)
        assert f"FastAGI listening on 127.0.0.1:{fastagi}\n" in output
        assert output[-1].startswith(f"HTTP API listening on http://127.0.0.1:{api_port} ")
        with socket.create_connection(("127.0.0.1", fastagi), timeout=5):
            pass
        endpoint = read_endpoint(home)
        assert endpoint is not None and endpoint.pid == proc.pid

        # alice's phone is registered first: the router's watchdog pauses a logged-in
        # agent with no reachable contact (``unregistered``), by design.
        async with pbx.agent_phone("alice"):
            rc, out, err = await _callcenter(home, "agents", "login", "alice")
            assert (rc, out) == (0, "alice: available\n"), err
            rc, out, err = await _callcenter(home, "agents", "list")
            assert rc == 0, err
            rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
            assert out.splitlines()[0].split() == ["NAME", "STATE", "SINCE", "REASON", "CALL"]
            assert rows["alice"][1] == "available", out
            assert rows["bob"][1] == "logged_out" and set(rows) == {"alice", "bob", "carmen"}
            rc, out, err = await _callcenter(home, "agents", "pause", "alice", "nap")
            assert rc == 1 and "unknown pause reason 'nap'" in err, (out, err)
            rc, out, err = await _callcenter(home, "agents", "logout", "alice")
            assert (rc, out) == (0, "alice: logged_out\n"), err

        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "".join(output) + rest.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    token = json.loads((home / "secrets.json").read_text())["api_token"]
    assert token not in text
    assert read_endpoint(home) is None
    rc, _, err = await _callcenter(home, "agents", "list")
    assert rc == 1 and "is `callcenter run` or `callcenter serve` running?" in err
    assert re.search(r"no callcenter service is running in ", err), err


async def _lines_until(proc: asyncio.subprocess.Process, output: list[str], text: str,
                       timeout: float = 60) -> str:
    """Read *proc*'s output into *output* until a line containing *text*; return it."""
    async with asyncio.timeout(timeout):
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            assert line, f"exited before {text!r}:\n" + "".join(output)
            output.append(line)
            if text in line:
                return line


async def test_a_caller_through_the_ivr_reaches_the_agent_of_callcenter_phone(
        clean_pbx: PBX, tmp_path: Path) -> None:
    """The demo of the README: serve (with the queue router), `callcenter phone carmen
    --login`, `callcenter call 5551000 --keys 1,2` (English, sales): carmen's phone
    answers the caller, and the caller's SIP call was answered (200 OK)."""
    home = clean_pbx.instance.home
    config = _example_copy(tmp_path / "example", free_port(), http_api_port=free_port())
    serve = await asyncio.create_subprocess_exec(
        sys.executable, *_CLI, "--home", str(home), "serve", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    phone: asyncio.subprocess.Process | None = None
    served: list[str] = []
    rang: list[str] = []
    try:
        await _lines_until(serve, served, "HTTP API listening")
        assert any(line.startswith("Queue router: Stasis app cc-queue") for line in served)
        phone = await asyncio.create_subprocess_exec(
            sys.executable, *_CLI, "--home", str(home), "phone", "carmen", "--login",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await _lines_until(phone, rang, "login done, agent available")
        caller = "15557770042"
        # --hold 4: the caller stays 4 s after keying sales (the README's 10 s default
        # only makes the call longer): carmen answers within a second.
        rc, out, err = await _callcenter(home, "call", "5551000", "--keys", "1,2",
                                         "--caller-id", caller, "--hold", "4")
        assert rc == 0, (out, err)
        assert "200 OK" in out and "queue sales" in out, out
        assert "answered by: PJSIP/carmen\n" in out, out
        answered = await _lines_until(phone, rang, "incoming call from")
        assert f"<sip:{caller}@127.0.0.1>: answered" in answered, rang
        await _lines_until(phone, rang, "call ended")
        phone.send_signal(signal.SIGTERM)
        await _lines_until(phone, rang, "logout done")
        assert await phone.wait() == 0
        serve.send_signal(signal.SIGTERM)
        assert await serve.wait() == 0
    finally:
        for proc in (phone, serve):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
