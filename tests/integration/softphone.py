"""An agent's real softphone for tests: baresip (Debian ``baresip-core``).

It does what a softphone on an agent's desk or laptop does: REGISTERs as the
agent with digest auth (the password from the instance's ``secrets.json``,
handed over baresip's loopback control connection: never on a command line or
in a file, never in test output), answers Asterisk's OPTIONS (qualify), and answers
calls automatically (``answermode=auto``), playing a tone and discarding what
it hears. On exit it is stopped with SIGTERM, on which baresip unregisters.

What it does is read from baresip's own event stream (module ``ctrl_tcp``,
netstring-framed JSON on a loopback port): ``REGISTER_OK`` / ``REGISTER_FAIL``
(with the registrar's status line), ``CALL_ESTABLISHED`` (with the caller's
URI), ``CALL_CLOSED`` (with the reason). Tests wait on these
events, never on time.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.aio import cancel_and_wait

__all__ = ["Softphone", "SoftphoneCall", "SoftphoneError"]

_MODULES = "/usr/lib/baresip/modules"


class SoftphoneError(AssertionError):
    """The softphone did not do what the test waited for (password never shown)."""


@dataclass(frozen=True)
class SoftphoneCall:
    """One call as the phone saw it: its call events in order."""

    events: tuple[dict[str, Any], ...]
    #: baresip's console output, password redacted (for failure messages).
    stderr: str

    def flow(self) -> list[str]:
        """``["CALL_ESTABLISHED", "CALL_CLOSED"]`` for a call answered, then hung up
        (baresip 1.0 reports no CALL_INCOMING for a call it answers by itself)."""
        return [e.get("type", "") for e in self.events]

    @property
    def peer_uri(self) -> str:
        """Who called: the From URI of the INVITE (``sip:15559000001@127.0.0.1``)."""
        return next((e["peeruri"] for e in self.events if e.get("peeruri")), "")

    @property
    def close_reason(self) -> str:
        return next((e.get("param", "") for e in self.events
                     if e.get("type") == "CALL_CLOSED"), "")


def _config(sip_port: int, ctrl_port: int, rtp_port: int, directory: Path) -> str:
    return "\n".join([
        "poll_method epoll",
        # Bound to loopback only; the address baresip puts in Via/Contact/SDP.
        "net_interface 127.0.0.1",
        f"sip_listen 127.0.0.1:{sip_port}",
        f"rtp_ports {rtp_port}-{rtp_port + 3}",
        # ausine only makes 48 kHz stereo; baresip resamples to the call's 8 kHz.
        "audio_source ausine,440",
        "ausrc_srate 48000",
        "ausrc_channels 2",
        f"audio_player aufile,{directory / 'heard.wav'}",
        f"audio_alert aufile,{directory / 'alert.wav'}",
        f"module_path {_MODULES}",
        "module g711.so",
        "module ausine.so",
        "module aufile.so",
        "module_app account.so",
        "module_app menu.so",  # the commands, uanew among them
        "module_app ctrl_tcp.so",
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        "",
    ])


class Softphone:
    """``async with Softphone(...) as phone:`` registers agent ``user`` and waits for
    the registrar's answer (``phone.registration``); ``await phone.call()`` then
    waits for the first call to end."""

    def __init__(self, user: str, password: str, *, registrar_port: int, sip_port: int,
                 ctrl_port: int, rtp_port: int, require_registration: bool = True,
                 timeout: float = 30.0, more_registrars: tuple[int, ...] = ()) -> None:
        self.user = user
        self._password = password
        self.registrar_port = registrar_port
        #: Further registrars (other nodes' SIP ports): one account each, as a
        #: multi-registrar softphone does; every one must answer REGISTER_OK.
        self.more_registrars = more_registrars
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.rtp_port = rtp_port
        self.require_registration = require_registration
        self.timeout = timeout
        #: The REGISTER_OK or REGISTER_FAIL event, once entered.
        self.registration: dict[str, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        #: Every event so far, in order (for failure messages).
        self.seen: list[dict[str, Any]] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def __repr__(self) -> str:  # never the password
        return f"Softphone({self.user!r}, sip 127.0.0.1:{self.sip_port})"

    async def __aenter__(self) -> Self:
        baresip = shutil.which("baresip")
        if baresip is None:
            raise RuntimeError("baresip not found: apt-get install baresip-core")
        self._tmp = tempfile.TemporaryDirectory(prefix="cc-softphone-")
        tmp = Path(self._tmp.name)
        os.chmod(tmp, 0o700)
        (tmp / "config").write_text(_config(self.sip_port, self.ctrl_port, self.rtp_port, tmp))
        # No account at start (baresip would invent a default one without the file):
        # it is added over the control connection, so that its REGISTER_OK or
        # REGISTER_FAIL cannot happen before we listen.
        (tmp / "contacts").write_text("")
        (tmp / "accounts").write_text("")
        log = open(tmp / "console.log", "wb")  # noqa: SIM115, ASYNC230 - the child owns it
        try:
            self._proc = await asyncio.create_subprocess_exec(
                baresip, "-4", "-f", str(tmp), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=tmp)
        finally:
            log.close()
        try:
            reader, writer = await self._connect(timeout=10.0)
            self._reader = asyncio.create_task(self._read(reader),
                                               name=f"softphone-{self.user}")
            self._writer = writer
            self._add_account(self.registrar_port)
            self.registration = await self.event("REGISTER_OK", "REGISTER_FAIL")
            if self.require_registration and self.registration["type"] != "REGISTER_OK":
                raise SoftphoneError(f"{self.user} could not register: "
                                     f"{self.registration.get('param')}")
            for port in self.more_registrars:
                self._add_account(port)
                more = await self.event("REGISTER_OK", "REGISTER_FAIL")
                if more["type"] != "REGISTER_OK":
                    raise SoftphoneError(f"{self.user} could not register at port {port}: "
                                         f"{more.get('param')}")
        except BaseException:
            await self._stop()
            raise
        return self

    def _add_account(self, registrar_port: int) -> None:
        """baresip's ``uanew``: add an account, which starts registering at once. Its
        reply echoes the account line (password included): never kept."""
        self._send("uanew", f"<sip:{self.user}@127.0.0.1:{registrar_port}"
                            f";transport=udp>;auth_pass={self._password}"
                            ";answermode=auto;regint=300")

    def hang_up(self, account: str | None = None) -> None:
        """The agent ends the call in progress (baresip's ``hangup``: a BYE). baresip hangs
        up the call of its current account: with several, name the call's ``accountaor``
        (its events carry it), which ``uafind`` makes current first."""
        if account is not None:
            self._send("uafind", account)
        self._send("hangup", "")

    async def _connect(self, timeout: float) -> tuple[asyncio.StreamReader,
                                                       asyncio.StreamWriter]:
        # baresip opens its control port while it starts; nothing announces it.
        assert self._proc is not None
        async with asyncio.timeout(timeout):
            while True:
                if self._proc.returncode is not None:
                    raise SoftphoneError(f"baresip exited ({self._proc.returncode}) while "
                                         f"starting: {self.console()[-800:]}")
                try:
                    return await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                except ConnectionRefusedError:
                    await asyncio.sleep(0.02)

    def _send(self, command: str, params: str) -> None:
        assert self._writer is not None
        payload = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(payload)).encode() + b":" + payload + b",")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Netstrings (``<len>:<json>,``) -> events on the queue, until EOF. Command
        replies are dropped unread (``uanew``'s holds the password)."""
        while True:
            try:
                size = int((await reader.readuntil(b":"))[:-1])
                payload = await reader.readexactly(size + 1)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            message = json.loads(payload[:-1])
            if message.get("event"):
                self.seen.append(message)
                await self._events.put(message)
            elif message.get("response") and not message.get("ok"):
                await self._events.put({"type": "COMMAND_FAILED", "param": message.get("token")})

    async def event(self, *types: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event of one of ``types`` (others are skipped)."""
        try:
            async with asyncio.timeout(timeout or self.timeout):
                while True:
                    e = await self._events.get()
                    if e.get("type") == "COMMAND_FAILED":
                        raise SoftphoneError(f"{self.user}: baresip refused the command "
                                             f"{e.get('param')}; {self.console()[-800:]}")
                    if e.get("type") in types:
                        return e
        except TimeoutError:
            raise SoftphoneError(f"{self.user}: no {' or '.join(types)} within "
                                 f"{timeout or self.timeout:g} s; {self.console()[-800:]}"
                                 ) from None

    async def call(self) -> SoftphoneCall:
        """Wait for the phone's call to end; every call event it had, in order."""
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1].get("type") != "CALL_CLOSED":
            seen.append(await self.event("CALL_INCOMING", "CALL_RINGING", "CALL_ESTABLISHED",
                                         "CALL_CLOSED"))
        return SoftphoneCall(tuple(seen), f"events: {[e.get('type') for e in self.seen]}\n"
                             + self.console()[-800:])

    def console(self) -> str:
        """baresip's output so far, with the password redacted."""
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "console.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text.replace(self._password, "<password>")

    async def _stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            # SIGTERM: baresip unregisters (REGISTER with Expires: 0), then exits.
            self._proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            await cancel_and_wait(self._reader)
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._stop()
