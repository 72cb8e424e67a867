"""An agent's phone placing a call, played by sipp with digest auth.

The softphone of agent ``alice`` INVITEs ``*70``; Asterisk identifies the endpoint by the
From user (``endpoint_identifier_order=username,...``), challenges with 401, and sipp
answers the challenge with ``[authentication]`` and the agent's password: the call then
runs in the endpoint's context (``settings.extensions_context``) with
``CHANNEL(endpoint)`` = ``alice``. The password is written only into the scenario file of a
0700 temporary directory, never on sipp's command line.
"""

from __future__ import annotations

from callcenter.testing.sipp import (
    PROVISIONAL,
    SippResult,
    in_dialog,
    invite,
    ok_to_request,
    run_scenario,
)

__all__ = ["agent_dials"]


#: ACK of the 401: same branch as the INVITE it answers (``[last_Via:]``).
_ACK_CHALLENGE = """  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
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
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="agent dials">\n'
        + invite(agent, dtmf=False)
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="401" auth="true"/>\n'
        + _ACK_CHALLENGE
        + invite(agent, dtmf=False, cseq=2, credentials=(agent, password))
        + PROVISIONAL
        + '  <recv response="200" rtd="true" rrs="true"/>\n'
        + in_dialog("ACK", agent, 2)
        + f'  <recv request="BYE" timeout="{hold_ms}" ontimeout="local_bye"/>\n'
        + ok_to_request(send_attrs='next="done"')
        + '  <label id="local_bye"/>\n'
        + in_dialog("BYE", agent, 3, send_attrs='retrans="500"')
        + '  <recv response="200" crlf="true"/>\n  <label id="done"/>\n</scenario>\n'
    )


async def agent_dials(number: str, *, agent: str, password: str, sip_port: int,
                      local_port: int, media_port: int, hold_ms: int = 10000,
                      timeout: float = 30.0) -> SippResult:
    """Agent ``agent``'s phone dials ``number``; returns when the call has ended."""
    return await run_scenario(lambda _: scenario(agent, password, hold_ms), number,
                              sip_port=sip_port, local_port=local_port,
                              media_port=media_port, timeout=timeout,
                              prefix="cc-agent-dial-")
