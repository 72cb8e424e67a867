"""``callcenter phone NAME``: the built-in test softphone as agent NAME, run as a
user runs it (its own process, ``--home`` of the session instance).

What it prints must be what happened: Asterisk holds its contact once it says
``registered``, a call through the example IVR's operator key reaches it (the
caller's number is on its ``answered`` line), and SIGTERM unregisters it (the
contact is gone) and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping

import pytest

from callcenter.asterisk.ami.client import AMIClient
from callcenter.testing.observe import next_event, registered_contacts
from tests.conftest import PBX

pytestmark = pytest.mark.integration


class PhoneProcess:
    """``callcenter phone`` in a subprocess; its stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def line(self, prefix: str, timeout: float = 20.0) -> str:
        """The next line of stdout starting with ``prefix`` (earlier ones are kept)."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.proc.stdout.readline()
                    if not raw:
                        raise AssertionError(f"phone exited ({await self.proc.wait()}) "
                                             f"before {prefix!r}: {self.lines}"
                                             f"{await self.stderr()}")
                    text = raw.decode().rstrip("\n")
                    self.lines.append(text)
                    if text.startswith(prefix):
                        return text
        except TimeoutError:
            raise AssertionError(f"no {prefix!r} line within {timeout} s: {self.lines}") \
                from None

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode() if self.proc.returncode is not None \
            else ""

    async def rest(self) -> tuple[int, list[str], str]:
        """Wait for the exit: code, the remaining stdout lines, stderr."""
        async with asyncio.timeout(30):
            out, err = await self.proc.communicate()
        return self.proc.returncode or 0, out.decode().splitlines(), err.decode()


def _cli(pbx: PBX, *args: str) -> list[str]:
    return [sys.executable, "-c", "from callcenter.cli import main; main()",
            "--home", str(pbx.instance.home), *args]


@pytest.fixture
async def start_phone(pbx: PBX) -> AsyncIterator:
    started: list[PhoneProcess] = []

    async def start(*args: str, env: Mapping[str, str] | None = None) -> PhoneProcess:
        proc = await asyncio.create_subprocess_exec(
            *_cli(pbx, "phone", *args), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
        started.append(PhoneProcess(proc))
        return started[-1]

    yield start
    for phone in started:
        if phone.proc.returncode is None:
            phone.proc.kill()
            await phone.proc.wait()


async def test_phone_registers_answers_the_operator_call_and_unregisters(
        clean_pbx: PBX, ami: AMIClient, start_phone) -> None:
    pbx = clean_pbx
    with ami.subscribe("ContactStatus") as contacts:
        phone = await start_phone("carmen", "--config", str(pbx.config_dir))
        registered = await phone.line("registered")
        assert registered == f"registered: carmen at 127.0.0.1:{pbx.sip_port} (200 OK)"
        await next_event(contacts, {"AOR": "carmen", "ContactStatus": "Reachable"})
        contact = await registered_contacts(pbx.instance, "carmen")
        assert len(contact) == 1, contact
        assert phone.lines[0].startswith(f"phone carmen: registering at 127.0.0.1:"
                                         f"{pbx.sip_port} (SIP on 127.0.0.1:"), phone.lines

        # The README's demo: English (1), operator (0) rings carmen's extension 1000.
        call = await asyncio.create_subprocess_exec(
            *_cli(pbx, "call", "5551000", "--keys", "1,0", "--caller-id", "15557775000",
                  "--hold", "3"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        answered = await phone.line("incoming call")
        assert re.fullmatch(r"incoming call from (\"[^\"]*\" )?<sip:15557775000@127\.0\.0\.1>: "
                            r"answered", answered), answered
        # The caller hangs up after --hold: Asterisk's BYE ends the phone's call.
        assert await phone.line("call ended") == "call ended (Connection reset by peer)"
        async with asyncio.timeout(60):
            out, err = await call.communicate()
        assert call.returncode == 0, out.decode() + err.decode()
        assert "destination: extension 1000" in out.decode().splitlines(), out.decode()

        phone.proc.send_signal(signal.SIGTERM)
        rc, rest, err = await phone.rest()
        assert rc == 0, (phone.lines, rest, err)
        assert rest == ["phone carmen: unregistered, stopped"], (rest, err)
        await next_event(contacts, {"AOR": "carmen", "ContactStatus": "Removed"})
    assert await registered_contacts(pbx.instance, "carmen") == []
    assert "Traceback" not in err, err
    said = "\n".join(phone.lines + rest) + err
    assert pbx.agent_password("carmen") not in said, "the phone printed the password"


async def test_phone_without_baresip_says_what_to_install(pbx: PBX, start_phone,
                                                          tmp_path) -> None:
    phone = await start_phone("carmen", env={"PATH": str(tmp_path)})
    rc, out, err = await phone.rest()
    assert rc == 1, (out, err)
    assert "apt-get install baresip-core" in err and "Traceback" not in err, err
    assert await registered_contacts(pbx.instance, "carmen") == []


async def test_phone_for_an_agent_without_an_account(pbx: PBX, start_phone) -> None:
    phone = await start_phone("zoe")
    rc, out, err = await phone.rest()
    assert rc == 1, (out, err)
    assert "no softphone account for agent 'zoe'" in err, err
    assert "(accounts: alice, bob, carmen)" in err, err
    phone = await start_phone("zoe", "--config", str(pbx.config_dir))
    rc, out, err = await phone.rest()
    assert rc == 1 and "no agent 'zoe'" in err and "Traceback" not in err, err


async def test_ctrl_c_while_the_registrar_is_silent_stops_the_phone() -> None:
    """A registrar that never answers (a UDP socket nobody reads): Ctrl-C does not wait
    for baresip's 32 s REGISTER timeout; the phone stops baresip and exits 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import asyncio, sys; from callcenter.cli import _run_phone; "
            "sys.exit(asyncio.run(_run_phone('carmen', 'x' * 24, '127.0.0.1', int(sys.argv[1]))))",
            str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        phone = PhoneProcess(proc)
        first = await phone.line("phone carmen: registering")
        proc.send_signal(signal.SIGINT)
        rc, rest, err = await phone.rest()
    assert rc == 0, (rest, err)
    assert rest == ["phone carmen: stopped before the registrar answered"], (rest, err)
    # baresip has exited (its SIP port is free again), not been left behind.
    sip_port = int(re.search(r"SIP on 127\.0\.0\.1:(\d+)", first).group(1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", sip_port))


class _RecordedLogin:
    """An AgentLogin (the planned --login) that records its calls; the login stops
    the phone, as a user's Ctrl-C would."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.calls: list[tuple[str, str]] = []
        self.stop = stop

    async def login(self, agent: str) -> None:
        self.calls.append(("login", agent))
        self.stop.set()

    async def logout(self, agent: str) -> None:
        self.calls.append(("logout", agent))


async def test_login_hook_runs_once_registered_and_logout_when_stopped(pbx: PBX) -> None:
    from callcenter.testing.demo_phone import serve_phone

    stop = asyncio.Event()
    said: list[str] = []
    recorder = _RecordedLogin(stop)
    async with pbx.agent_phone("bob") as phone:
        stopped = await serve_phone(phone, said.append, stop, registrar="the registrar",
                                    login=recorder)
    assert stopped
    assert said == ["registered: bob at the registrar (200 OK)"]
    assert recorder.calls == [("login", "bob"), ("logout", "bob")]
