"""A desk phone for tests: a PJSIP endpoint with a static contact, played by sipp.

Agents get generated softphone endpoints (registered by baresip in the tests, see
``softphone.py``); this is the other kind of phone an agent can have, a ``device:``
the admin provisioned: a test defines it in ``pjsip_custom.conf`` (the file the
instance ``#tryinclude``s and never writes) with :func:`pjsip_endpoint`, an AOR
with a static contact on a loopback port. A sipp UAS on that port answers one call (180,
then 200 with a PCMU offer answer), and holds it until Asterisk sends BYE (the caller
hung up), which it acknowledges with 200. Its message trace tells who called it and
whether the dialogue went through.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from callcenter.procnet import bound_sockets

__all__ = ["AgentPhone", "AgentPhoneCall", "SipMessage", "pjsip_endpoint"]


def pjsip_endpoint(name: str, sip_port: int) -> str:
    """PJSIP config for the agent's phone at ``127.0.0.1:<sip_port>`` (no registration:
    the AOR's contact is static, like a desk phone provisioned by the admin)."""
    return (
        f"[{name}]\ntype=endpoint\ncontext=cc-extensions\ndisallow=all\nallow=ulaw\n"
        f"aors={name}\ndirect_media=no\nrtp_symmetric=yes\ndtmf_mode=rfc4733\n\n"
        f"[{name}]\ntype=aor\ncontact=sip:{name}@127.0.0.1:{sip_port}\n\n"
    )


# sipp's own UAS (``-sn uas``), with the 180/200 built from the INVITE we got.
_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agent phone">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""


@dataclass(frozen=True)
class SipMessage:
    """One message of sipp's trace, as the phone saw it."""

    received: bool
    text: str

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def header(self, name: str) -> str:
        m = re.search(rf"^\s*{re.escape(name)}:\s*(.*?)\s*$", self.text,
                      re.MULTILINE | re.IGNORECASE)
        return m.group(1) if m else ""


@dataclass(frozen=True)
class AgentPhoneCall:
    """What the phone did: sipp's exit status and every SIP message in order."""

    returncode: int
    stderr: str
    messages: tuple[SipMessage, ...]

    def flow(self) -> list[str]:
        """``["<- INVITE", "-> 180", ...]``: the dialogue as the phone saw it."""
        out = []
        for m in self.messages:
            words = m.start_line.split()
            what = words[1] if m.start_line.startswith("SIP/2.0") else words[0]
            out.append(f"{'<-' if m.received else '->'} {what}")
        return out

    def invite(self) -> SipMessage | None:
        return next((m for m in self.messages
                     if m.received and m.start_line.startswith("INVITE ")), None)


def parse_trace(text: str) -> tuple[SipMessage, ...]:
    """sipp ``-trace_msg`` file: each message follows a dashed line and
    ``UDP message received [n] bytes :`` or ``UDP message sent (n bytes):``."""
    out = []
    for chunk in re.split(r"^-{20,}.*\n", text, flags=re.MULTILINE):
        head, _, body = chunk.strip().partition("\n")
        if "message received" in head or "message sent" in head:
            out.append(SipMessage("received" in head, body.strip()))
    return tuple(out)


class AgentPhone:
    """``async with AgentPhone(sip_port, media_port) as phone:`` then place the call,
    then ``await phone.call()``. Entering returns once sipp holds its SIP port."""

    def __init__(self, sip_port: int, media_port: int, *, timeout: float = 60.0) -> None:
        self.sip_port = sip_port
        self.media_port = media_port
        self.timeout = timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp not found: apt-get install sip-tester")
        self._tmp = tempfile.TemporaryDirectory(prefix="cc-agent-")
        tmp = Path(self._tmp.name)
        (tmp / "phone.xml").write_text(_SCENARIO)
        self._proc = await asyncio.create_subprocess_exec(
            sipp, "-sf", str(tmp / "phone.xml"),
            "-i", "127.0.0.1", "-p", str(self.sip_port),
            "-mi", "127.0.0.1", "-mp", str(self.media_port),
            "-m", "1", "-nostdin", "-trace_msg", "-message_file", str(tmp / "messages.log"),
            "-timeout", f"{int(self.timeout)}s", "-timeout_error",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, cwd=tmp,
        )
        try:
            await self._wait_listening(timeout=10.0)
        except BaseException:
            await self._kill()
            raise
        return self

    async def _wait_listening(self, timeout: float) -> None:
        # sipp announces nothing when it is ready: the kernel's socket table says when
        # its SIP port is bound, and so when Asterisk's INVITE can no longer be refused.
        assert self._proc is not None
        async with asyncio.timeout(timeout):
            while not any(s.proto == "udp" and s.port == self.sip_port and s.listening
                          for s in await asyncio.to_thread(bound_sockets, self._proc.pid)):
                if self._proc.returncode is not None:
                    break
                await asyncio.sleep(0.01)
        if self._proc.returncode is not None:
            err = await self._proc.stderr.read() if self._proc.stderr else b""
            raise RuntimeError(f"sipp agent phone exited ({self._proc.returncode}) "
                               f"before listening on {self.sip_port}: {err.decode()[-500:]}")

    async def call(self) -> AgentPhoneCall:
        """Wait for the phone's one call to end; what it saw."""
        assert self._proc is not None and self._tmp is not None
        async with asyncio.timeout(self.timeout + 10):
            _, err = await self._proc.communicate()
        trace = Path(self._tmp.name) / "messages.log"
        text = trace.read_text(errors="replace") if trace.exists() else ""
        return AgentPhoneCall(self._proc.returncode or 0, err.decode(errors="replace"),
                              parse_trace(text))

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._kill()
        if self._tmp is not None:
            self._tmp.cleanup()
