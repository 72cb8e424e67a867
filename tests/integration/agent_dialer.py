"""An agent's phone placing a call, played by sipp with digest auth.

The softphone of agent ``alice`` INVITEs ``*70``; Asterisk identifies the endpoint by the
From user (``endpoint_identifier_order=username,...``), challenges with 401, and sipp
answers the challenge with ``[authentication]`` and the agent's password: the call then
runs in the endpoint's context (``settings.extensions_context``) with
``CHANNEL(endpoint)`` = ``alice``. The password is written only into the scenario file of a
0700 temporary directory, never on sipp's command line.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from callcenter.testing.sipp import (
    PROVISIONAL,
    SippError,
    SippResult,
    in_dialog,
    ok_to_request,
)

__all__ = ["agent_dials"]


def _invite(user: str, cseq: int, auth: str = "") -> str:
    return f"""  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      {auth}Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=sendrecv
    ]]>
  </send>
"""


def _ack_challenge(user: str) -> str:
    """ACK of the 401: same branch as the INVITE it answers (``[last_Via:]``)."""
    return f"""  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: <sip:{user}@[remote_ip]:[remote_port]>;tag=[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""


def scenario(agent: str, password: str, hold_ms: int) -> str:
    """INVITE, 401, ACK, INVITE with credentials, 200, ACK; then Asterisk's BYE (or ours
    after ``hold_ms``)."""
    user = escape(agent)
    # sipp writes the whole Authorization header in place of this line.
    auth = f"[authentication username={user} password={escape(password)}]\n      "
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="agent dials">\n'
        + _invite(user, 1)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="401" auth="true"/>\n'
        + _ack_challenge(user)
        + _invite(user, 2, auth)
        + PROVISIONAL
        + '  <recv response="200" rtd="true" rrs="true"/>\n'
        + in_dialog("ACK", user, 2)
        + f'  <recv request="BYE" timeout="{hold_ms}" ontimeout="local_bye"/>\n'
        + ok_to_request(send_attrs='next="done"')
        + '  <label id="local_bye"/>\n'
        + in_dialog("BYE", user, 3, send_attrs='retrans="500"')
        + '  <recv response="200" crlf="true"/>\n  <label id="done"/>\n</scenario>\n'
    )


async def agent_dials(number: str, *, agent: str, password: str, sip_port: int,
                      local_port: int, media_port: int, hold_ms: int = 10000,
                      timeout: float = 30.0) -> SippResult:
    """Agent ``agent``'s phone dials ``number``; returns when the call has ended."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SippError("sipp not found: apt-get install sip-tester")
    with tempfile.TemporaryDirectory(prefix="cc-agent-dial-") as tmp:
        os.chmod(tmp, 0o700)
        path = Path(tmp) / "agent.xml"
        path.write_text(scenario(agent, password, hold_ms))
        trace = Path(tmp) / "messages.log"
        proc = await asyncio.create_subprocess_exec(
            sipp, f"127.0.0.1:{sip_port}", "-sf", str(path), "-s", number,
            "-i", "127.0.0.1", "-p", str(local_port), "-mi", "127.0.0.1",
            "-mp", str(media_port), "-m", "1", "-l", "1", "-nostdin", "-trace_msg",
            "-message_file", str(trace), "-timeout", f"{int(timeout)}s", "-timeout_error",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, cwd=tmp)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = trace.read_text(errors="replace") if trace.exists() else ""
    remote_bye = any(re.search(r"^\s*BYE sip:", m, re.MULTILINE) and "received" in m.lower()
                     for m in re.split(r"\n(?=-{5,})", text))
    return SippResult(proc.returncode or 0, out.decode(errors="replace"),
                      err.decode(errors="replace"), remote_bye,
                      [m.strip() for m in re.split(r"-{20,}.*?\n", text) if m.strip()])
