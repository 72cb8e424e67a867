"""An agent's real softphone for tests and demos: baresip (Debian ``baresip-core``).

It does what a softphone on an agent's desk or laptop does: REGISTERs as the
agent with digest auth (the password from the instance's ``secrets.json``,
handed over baresip's loopback control connection: never on a command line or
in a file, never in test output), answers Asterisk's OPTIONS (qualify), and answers
calls automatically (``answermode=auto``), playing a tone and discarding what
it hears. It also dials, as an agent keying a number (``await phone.dial("*70")``):
the INVITE is authenticated with the same account, so Asterisk runs it in the
agent endpoint's context. On exit it is stopped with SIGTERM, on which baresip
unregisters.

What it does is read from baresip's own event stream (module ``ctrl_tcp``,
netstring-framed JSON on a loopback port): ``REGISTER_OK`` / ``REGISTER_FAIL``
(with the registrar's status line), ``CALL_ESTABLISHED`` (with the peer's
URI), ``CALL_CLOSED`` (with the reason: ``Connection reset by peer`` for a BYE
from Asterisk, the SIP status line of a refused INVITE). Tests wait on these
events, never on time. ``callcenter phone NAME`` is this class run until
stopped, printing the events.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from callcenter.testing.aio import cancel_and_wait

__all__ = ["BaresipMissingError", "Softphone", "SoftphoneCall", "SoftphoneError"]

_MODULES = "/usr/lib/baresip/modules"

#: What ``dial`` accepts: what an agent keys (``*70``, ``1001``, ``#``) or a SIP URI
#: of a safe alphabet. baresip's command line is split on blanks, and the URI ends
#: up in an INVITE's request line: no blank, quote, ``<>`` or control character.
_DIALABLE = re.compile(r"[0-9A-Za-z*#+]{1,40}|sips?:[0-9A-Za-z*#+._~-]{1,64}"
                       r"(@[0-9A-Za-z.-]{1,253}(:[0-9]{1,5})?)?(;transport=(udp|tcp))?")

_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PASSWORD = re.compile(r"[A-Za-z0-9._~!*-]{1,128}")

#: The call events ``call()`` collects (an incoming call that baresip answers by
#: itself reports no CALL_INCOMING in 1.0; an outgoing one CALL_RINGING or
#: CALL_PROGRESS when Asterisk sends 180 or 183).
CALL_EVENTS = ("CALL_INCOMING", "CALL_OUTGOING", "CALL_RINGING", "CALL_PROGRESS",
               "CALL_ESTABLISHED", "CALL_CLOSED")

#: Put on the event queue when baresip's control connection ends (baresip exited).
_EOF = "_CONTROL_CLOSED"


class SoftphoneError(AssertionError):
    """The softphone did not do what the test waited for (password never shown)."""


class BaresipMissingError(RuntimeError):
    """baresip is not installed."""


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
        """The other party: the From URI of an incoming INVITE
        (``sip:15559000001@127.0.0.1``), the request URI of an outgoing one."""
        return next((e["peeruri"] for e in self.events if e.get("peeruri")), "")

    @property
    def answered(self) -> bool:
        """The call was answered (by this phone or by the party it dialed)."""
        return any(e.get("type") == "CALL_ESTABLISHED" for e in self.events)

    @property
    def close_reason(self) -> str:
        """baresip's reason: ``Connection reset by peer`` (the peer hung up),
        ``404 Not Found`` (a final response to our INVITE), ``Rejected by user``..."""
        return next((e.get("param", "") for e in self.events
                     if e.get("type") == "CALL_CLOSED"), "")


def _config(host: str, sip_port: int, ctrl_port: int, rtp_port: int,
            directory: Path) -> str:
    return "\n".join([
        "poll_method epoll",
        # Bound to the registrar's own address (loopback for the demo and tests); the
        # address baresip puts in Via/Contact/SDP.
        f"net_interface {host}",
        f"sip_listen {host}:{sip_port}",
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
        # Audio filter: each call's decoded audio (what the phone hears) and encoded
        # audio (what it sends) dumped to dump-<time>-dec.wav / -enc.wav here.
        "module sndfile.so",
        f"snd_path {directory}",
        "module_app account.so",
        "module_app menu.so",  # the commands, uanew among them
        "module_app ctrl_tcp.so",
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        "",
    ])


class Softphone:
    """``async with Softphone(...) as phone:`` registers agent ``user`` and waits for
    the registrar's answer (``phone.registration``); ``await phone.call()`` then
    waits for the next call (incoming, or placed with ``dial``) to end.

    ``host`` is the registrar's IPv4 address, which baresip also binds: the phone
    runs on the PBX's machine. ``rtp_port`` starts 4 UDP ports.
    """

    def __init__(self, user: str, password: str, *, registrar_port: int, sip_port: int,
                 ctrl_port: int, rtp_port: int, require_registration: bool = True,
                 timeout: float = 30.0, host: str = "127.0.0.1",
                 auto_answer: bool = True, more_registrars: tuple[int, ...] = ()) -> None:
        # Both go into baresip's account line (``<sip:user@host>;auth_pass=...``),
        # where ``;`` ``>`` or a blank would start another parameter.
        if not _USER.fullmatch(user):
            raise ValueError(f"{user!r}: not a SIP user name (letters, digits, . _ -)")
        if not _PASSWORD.fullmatch(password):
            raise ValueError(f"the password of {user} has characters a baresip account "
                             "line cannot hold (letters, digits and - _ . ~ ! * only)")
        ipaddress.IPv4Address(host)  # ValueError for anything else
        self.user = user
        self._password = password
        self.host = host
        self.registrar_port = registrar_port
        #: Further registrars (other nodes' SIP ports): one account each, as a
        #: multi-registrar softphone does; every one must answer REGISTER_OK.
        self.more_registrars = more_registrars
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.rtp_port = rtp_port
        self.require_registration = require_registration
        self.timeout = timeout
        #: False: incoming calls ring until the caller gives up or ``hangup()`` rejects
        #: them (an agent away from the desk, or declining).
        self.auto_answer = auto_answer
        #: The REGISTER_OK or REGISTER_FAIL event, once entered.
        self.registration: dict[str, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        #: Every event so far, in order (for failure messages).
        self.seen: list[dict[str, Any]] = []
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        #: Replies awaited by ``_command``, by token.
        self._replies: dict[str, asyncio.Future[bool]] = {}
        self._tokens = itertools.count(1)

    def __repr__(self) -> str:  # never the password
        return f"Softphone({self.user!r}, sip {self.host}:{self.sip_port})"

    def heard(self) -> list[Path]:
        """What this phone heard, one WAV per call, oldest first (baresip's ``sndfile``
        filter; a call's file is complete once the call is closed)."""
        assert self._tmp is not None, f"{self.user}: the phone is not running"
        return sorted(Path(self._tmp.name).glob("dump-*-dec.wav"),
                      key=lambda p: p.stat().st_mtime)

    async def __aenter__(self) -> Self:
        baresip = shutil.which("baresip")
        if baresip is None:
            raise BaresipMissingError("baresip not found: apt-get install baresip-core")
        self._tmp = tempfile.TemporaryDirectory(prefix="cc-softphone-")
        tmp = Path(self._tmp.name)
        os.chmod(tmp, 0o700)
        (tmp / "config").write_text(_config(self.host, self.sip_port, self.ctrl_port,
                                            self.rtp_port, tmp))
        # No account at start (baresip would invent a default one without the file):
        # it is added over the control connection, so that its REGISTER_OK or
        # REGISTER_FAIL cannot happen before we listen.
        (tmp / "contacts").write_text("")
        (tmp / "accounts").write_text("")
        log = open(tmp / "console.log", "wb")  # noqa: SIM115, ASYNC230 - the child owns it
        try:
            # A session of its own: Ctrl-C in the owner's terminal reaches the owner
            # only, which then stops baresip in order (SIGTERM: unregister, exit).
            self._proc = await asyncio.create_subprocess_exec(
                baresip, "-4", "-f", str(tmp), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=tmp,
                start_new_session=True)
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
        self._send("uanew", f"<sip:{self.user}@{self.host}:{registrar_port}"
                            f";transport=udp>;auth_pass={self._password}"
                            f";answermode={'auto' if self.auto_answer else 'manual'}"
                            ";regint=300")

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

    def _send(self, command: str, params: str, token: str | None = None) -> None:
        assert self._writer is not None
        payload = json.dumps({"command": command, "params": params,
                              "token": token or command}).encode()
        self._writer.write(str(len(payload)).encode() + b":" + payload + b",")

    async def _command(self, command: str, params: str = "") -> None:
        """Run a baresip command and wait for its reply; raise if baresip refused it.
        (Not for ``uanew``: its reply echoes the password.)"""
        if self._writer is None:
            raise SoftphoneError(f"{self.user}: the phone is not running")
        token = f"{command}-{next(self._tokens)}"
        reply: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._replies[token] = reply
        try:
            self._send(command, params, token)
            async with asyncio.timeout(self.timeout):
                ok = await reply
        except TimeoutError:
            raise SoftphoneError(f"{self.user}: no reply to {command} within "
                                 f"{self.timeout:g} s; {self.console()[-800:]}") from None
        finally:
            self._replies.pop(token, None)
        if not ok:
            raise SoftphoneError(f"{self.user}: baresip refused {command} {params}; "
                                 f"{self.console()[-800:]}")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Netstrings (``<len>:<json>,``) -> events on the queue, until EOF. Command
        replies resolve their ``_command`` or are dropped unread (``uanew``'s holds
        the password)."""
        try:
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
                elif message.get("response"):
                    reply = self._replies.get(str(message.get("token")))
                    if reply is not None and not reply.done():
                        reply.set_result(bool(message.get("ok")))
                    elif not message.get("ok"):
                        await self._events.put({"type": "COMMAND_FAILED",
                                                "param": message.get("token")})
        finally:
            # baresip exited (or closed its control port): nothing more will come.
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_result(False)
            self._events.put_nowait({"type": _EOF})

    async def event(self, *types: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event of one of ``types`` (others are skipped)."""
        try:
            async with asyncio.timeout(timeout or self.timeout):
                while True:
                    e = await self._events.get()
                    if e.get("type") == "COMMAND_FAILED":
                        raise SoftphoneError(f"{self.user}: baresip refused the command "
                                             f"{e.get('param')}; {self.console()[-800:]}")
                    if e.get("type") == _EOF:
                        self._events.put_nowait(e)  # for the next waiter too
                        raise SoftphoneError(f"{self.user}: baresip exited while waiting "
                                             f"for {' or '.join(types)}; "
                                             f"{self.console()[-800:]}")
                    if e.get("type") in types:
                        return e
        except TimeoutError:
            raise SoftphoneError(f"{self.user}: no {' or '.join(types)} within "
                                 f"{timeout or self.timeout:g} s; {self.console()[-800:]}"
                                 ) from None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event from now on, with no timeout, until baresip exits: for a phone
        that runs until it is stopped (``callcenter phone``)."""
        while True:
            e = await self._events.get()
            if e.get("type") == _EOF:
                self._events.put_nowait(e)
                return
            yield e

    async def dial(self, uri_or_number: str) -> None:
        """Place a call as the agent keying ``uri_or_number`` on the phone (``*70``,
        ``1001``, or ``sip:1001@127.0.0.1:5060``); a number is sent to the registrar.

        Returns once baresip has sent the INVITE (raises if it refused to);
        ``await phone.call()`` then waits for the call's end, with its outcome.
        """
        if not _DIALABLE.fullmatch(uri_or_number):
            raise ValueError(f"{uri_or_number!r}: not a number (digits, * # +) or a plain "
                             "SIP URI")
        target = uri_or_number
        if ":" not in target:
            target = f"sip:{target}@{self.host}:{self.registrar_port}"
        await self._command("dial", target)

    async def hangup(self, account: str | None = None) -> None:
        """Hang up the phone's current call (a BYE, or a CANCEL while it rings). baresip
        hangs up the call of its current account: with several registrars, name the
        call's ``accountaor`` (its events carry it), which ``uafind`` makes current."""
        if account is not None:
            await self._command("uafind", account)
        await self._command("hangup")

    async def transfer(self, number: str) -> None:
        """The phone's own transfer key: a blind transfer of the current call (SIP REFER,
        ``Refer-To: sip:<number>@<registrar>``) to what the agent keyed."""
        if not _DIALABLE.fullmatch(number) or ":" in number:
            raise ValueError(f"{number!r}: not a number (digits, * # +)")
        await self._command("transfer", number)

    async def mute(self) -> None:
        """Mute (or unmute) the current call's microphone: baresip goes on sending audio,
        silence instead of its tone."""
        await self._command("mute")

    async def call(self) -> SoftphoneCall:
        """Wait for the phone's call to end; every call event it had, in order."""
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1].get("type") != "CALL_CLOSED":
            seen.append(await self.event(*CALL_EVENTS))
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
