"""Real SIP callers for tests and benchmarks, played by sipp.

sipp (Debian's ``sip-tester``) places a real call: INVITE with SDP offering
PCMU and RFC 2833 telephone-events, ACK, then DTMF as RTP events by playing
the ``dtmf_2833_<digit>.pcap`` captures Debian ships with sipp, each after a
pause, then waits for Asterisk to hang up (or hangs up itself after
``hold_ms``). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = [
    "PCAP_DIR",
    "PROVISIONAL",
    "Caller",
    "Keypress",
    "SippError",
    "SippResult",
    "build_scenario",
    "in_dialog",
    "invite",
    "ok_to_request",
    "reply",
    "run_call",
    "run_scenario",
    "sdp",
    "write_dtmf_pcaps",
]

PCAP_DIR = Path("/usr/share/sip-tester")
#: What would end sipp's ``[authentication ...]`` keyword or the CDATA it stands in.
_NOT_IN_KEYWORD = re.compile(r"[\s\]<>&]")
_PCAP_NAMES = {"*": "star", "#": "pound"}


class SippError(RuntimeError):
    """sipp is missing or could not run."""


@dataclass(frozen=True)
class Keypress:
    """Press ``key`` ``delay_ms`` after the previous key (or after the ACK)."""

    key: str
    delay_ms: int


@dataclass(frozen=True)
class Caller:
    number: str  # dialled number (Request-URI user)
    caller_id: str = "15550001111"
    keys: tuple[Keypress, ...] = ()
    #: After the last key: wait this long for Asterisk's BYE, then hang up ourselves.
    hold_ms: int = 15000


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    #: True when the call ended with a BYE from Asterisk; False when we hung up.
    remote_hangup: bool = False
    messages: list[str] = field(default_factory=list)


def _template(key: str) -> Path:
    path = PCAP_DIR / f"dtmf_2833_{_PCAP_NAMES.get(key, key)}.pcap"
    if not path.exists():
        raise SippError(f"no DTMF capture for key {key!r} at {path}: install sip-tester")
    return path


def write_dtmf_pcaps(keys: tuple[Keypress, ...], directory: Path) -> list[Path]:
    """One capture per key press, renumbered so RTP sequence numbers and
    timestamps keep increasing through the call.

    The shipped captures come from one recording (digit 1 has lower sequence
    numbers than digit 3), and sipp replays the RTP headers as recorded: a
    repeated digit or a lower digit after a higher one would look like an old
    packet to Asterisk and be dropped.
    """
    paths = []
    for i, k in enumerate(keys):
        raw = bytearray(_template(k.key).read_bytes())
        off, n = 24, 0
        while off + 16 <= len(raw):
            incl = struct.unpack_from("<I", raw, off + 8)[0]
            pkt = off + 16
            udp, rtp = pkt + 14 + 20, pkt + 14 + 20 + 8  # Ethernet, IPv4, UDP
            struct.pack_into(">H", raw, udp + 6, 0)  # no UDP checksum (valid for IPv4)
            struct.pack_into(">H", raw, rtp + 2, (1000 + 50 * i + n) & 0xFFFF)
            struct.pack_into(">I", raw, rtp + 4, 8000 * (2 + 2 * i))
            off, n = pkt + incl, n + 1
        path = directory / f"dtmf-{i:02d}.pcap"
        path.write_bytes(bytes(raw))
        paths.append(path)
    return paths


def sdp(origin: str = "user1", *, dtmf: bool = False) -> str:
    """An SDP body offering (or answering with) PCMU, and RFC 2833 events when ``dtmf``,
    indented for a ``<send>``'s CDATA (sipp fills in the addresses and ports)."""
    events = ("\n      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15"
              if dtmf else "")
    return f"""      v=0
      o={origin} 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0{" 101" if dtmf else ""}
      a=rtpmap:0 PCMU/8000{events}
      a=sendrecv
"""


def invite(from_user: str, *, dtmf: bool = True, send_attrs: str = 'retrans="500"',
           cseq: int = 1, credentials: tuple[str, str] | None = None) -> str:
    """A ``<send>`` of the INVITE, offering PCMU (and RFC 2833 events when ``dtmf``).

    ``credentials`` (user, password): the answer to the 401 just received, as sipp
    writes it in place of its ``[authentication ...]`` keyword (an INVITE with ``cseq``
    2 after the challenge); the password is then in the scenario file only, never on
    sipp's command line."""
    user = escape(from_user)
    auth = ""
    if credentials is not None:
        for part in credentials:
            if _NOT_IN_KEYWORD.search(part):
                raise SippError(f"credentials for {from_user!r}: a space, ']', '<', '>' or "
                                "'&' cannot be written into sipp's [authentication] keyword")
        name, password = credentials
        auth = f"[authentication username={name} password={password}]\n      "
    return f"""  <send {send_attrs}>
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:{user}@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      {auth}Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

{sdp(dtmf=dtmf)}    ]]>
  </send>
"""


def in_dialog(method: str, from_user: str, cseq: int, *, send_attrs: str = "") -> str:
    """A ``<send>`` of ACK or BYE inside the call's dialog."""
    user = escape(from_user)
    attrs = f" {send_attrs}" if send_attrs else ""
    return f"""  <send{attrs}>
    <![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test" <sip:{user}@[local_ip]:[local_port]>;tag=[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""


def ok_to_request(*, send_attrs: str = "") -> str:
    """A ``<send>`` of 200 OK to the request just received (Asterisk's BYE)."""
    attrs = f" {send_attrs}" if send_attrs else ""
    return f"""  <send{attrs}>
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
"""


def reply(status: str, to: str = "[last_To:]", *, cseq: str = "[last_CSeq:]",
          contact: bool = False, body: str = "") -> str:
    """A ``<send>`` of a UAS's response *status* to the request just received (a phone
    sipp plays: an agent's, a customer's). *to*: the whole To header line (add our tag to
    the INVITE's: ``[last_To:];tag=...``); *cseq*: the INVITE's own for a 487 sent after
    a CANCEL; with a *body* (SDP, see :func:`sdp`), retransmitted until ACKed."""
    contact_line = ("\n      Contact: <sip:[service]@[local_ip]:[local_port];transport=[transport]>"
                    if contact else "")
    headers = ("\n      Content-Type: application/sdp\n      Content-Length: [len]\n\n"
               + body if body else "\n      Content-Length: 0\n")
    attrs = ' retrans="500"' if body else ""
    return f"""  <send{attrs}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      {to}
      [last_Call-ID:]
      {cseq}{contact_line}{headers}    ]]>
  </send>
"""


#: Provisional responses an INVITE may get before its 200.
PROVISIONAL = """  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""


def build_scenario(caller: Caller, pcaps: list[Path]) -> str:
    """The sipp XML scenario for one call; ``pcaps`` from :func:`write_dtmf_pcaps`."""
    keys = "".join(
        f'  <pause milliseconds="{k.delay_ms}"/>\n'
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        for k, pcap in zip(caller.keys, pcaps, strict=True)
    )
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="callcenter caller">\n'
        + invite(caller.caller_id)
        + PROVISIONAL
        + '  <recv response="200" rtd="true" rrs="true"/>\n'
        + in_dialog("ACK", caller.caller_id, 1)
        + keys
        + f'  <recv request="BYE" timeout="{caller.hold_ms}" ontimeout="local_bye"/>\n'
        + ok_to_request(send_attrs='next="done"')
        + '  <label id="local_bye"/>\n'
        + in_dialog("BYE", caller.caller_id, 2, send_attrs='retrans="500"')
        + '  <recv response="200" crlf="true"/>\n  <label id="done"/>\n</scenario>\n'
    )


async def run_call(
    caller: Caller,
    *,
    sip_port: int,
    local_port: int,
    media_port: int,
    timeout: float = 120.0,
) -> SippResult:
    """Place one real SIP call with sipp and wait for it to end."""
    return await run_scenario(
        lambda tmp: build_scenario(caller, write_dtmf_pcaps(caller.keys, tmp)), caller.number,
        sip_port=sip_port, local_port=local_port, media_port=media_port, timeout=timeout)


async def run_scenario(
    write: Callable[[Path], str],
    number: str,
    *,
    sip_port: int,
    local_port: int,
    media_port: int,
    timeout: float,
    prefix: str = "cc-sipp-",
) -> SippResult:
    """Run one call of a sipp UAC scenario to ``number`` and wait for it to end.

    ``write(directory)`` returns the scenario's XML and may put the files it refers to
    (DTMF captures) in *directory*, a private (0700) temporary directory removed after
    the call; sipp's trace of the SIP messages is read back into the result."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SippError("sipp not found: apt-get install sip-tester")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        os.chmod(tmp, 0o700)  # mkdtemp's mode already; a scenario may hold a password
        scenario = Path(tmp) / "scenario.xml"
        scenario.write_text(write(Path(tmp)))
        trace = Path(tmp) / "messages.log"
        proc = await asyncio.create_subprocess_exec(
            sipp, f"127.0.0.1:{sip_port}",
            "-sf", str(scenario), "-s", number,
            "-i", "127.0.0.1", "-p", str(local_port),
            "-mi", "127.0.0.1", "-mp", str(media_port),
            "-m", "1", "-l", "1", "-nostdin", "-trace_msg", "-message_file", str(trace),
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, cwd=tmp,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = trace.read_text(errors="replace") if trace.exists() else ""
    messages = [m.strip() for m in re.split(r"-{20,}.*?\n", text) if m.strip()]
    remote_bye = any(re.search(r"^\s*BYE sip:", m, re.MULTILINE) and "received" in m.lower()
                     for m in re.split(r"\n(?=-{5,})", text))
    return SippResult(proc.returncode or 0, out.decode(errors="replace"),
                      err.decode(errors="replace"), remote_bye, messages)
