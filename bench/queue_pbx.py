"""The queue benchmark's PBX: text builders (pure) and the bench's Asterisk instance.

Every contender runs on one private Asterisk with the same agents and the same callers;
only the caller's extension differs:

* ``pjsip_custom.conf``: one endpoint + AOR per agent (``agent001`` ...), the AOR with a
  *static* contact on one of the sipp UAS agent processes (an agent's phone is a user
  part on a loopback port: ``sip:agent001@127.0.0.1:<port>``), and ``bench-caller``, the
  endpoint the sipp callers are identified as (by IP). ``direct_media=no`` everywhere:
  Asterisk must not re-INVITE sipp, which would not expect it.
* ``queues.conf``: the app_queue baseline, queue ``bench`` with every agent a static
  member (``rrmemory``, ``ringinuse=no``, ``autofill=yes``, wrap-up 0).
* ``extensions_custom.conf`` (the product includes it and never writes it): context
  ``bench-queue`` with one extension per contender, each ``Answer()`` then the queue
  application (``Queue(bench)`` / ``Stasis(cc-queue,bench,...)``), then ``Hangup()``.
* ``manager.conf`` gets ``timestampevents=yes``: the latency is taken between two AMI
  events' own ``Timestamp`` (set by Asterisk when it raises them), so neither the AMI
  socket nor this driver's event loop adds to it.

The sipp scenarios: an agent (UAS) rings ``ring_ms`` (180), answers (200 with SDP),
talks ``talk_ms``, hangs up (BYE); a CANCEL while ringing gets 200 + 487. A caller (UAC)
sends INVITE, ACKs the 200 (``Answer()``), waits for Asterisk's BYE (sent when the agent
hangs up) and answers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from callcenter.asterisk.instance import AsteriskInstance
from callcenter.asterisk.stasis_args import dialplan_args
from callcenter.testing.sipp import (
    PROVISIONAL,
    in_dialog,
    invite,
    ok_to_request,
    reply,
    sdp,
)

__all__ = [
    "CALLER_CONTEXT",
    "QUEUE",
    "AgentGroup",
    "QueueBenchInstance",
    "agent_names",
    "agent_scenario",
    "caller_dialplan",
    "caller_scenario",
    "group_agents",
    "pjsip_conf",
    "queues_conf",
    "router_config_yaml",
    "stasis_line",
]

QUEUE = "bench"
CALLER_CONTEXT = "bench-queue"
#: The caller's number (From user): never an agent endpoint's name, so the caller is
#: identified by IP as ``bench-caller`` (``endpoint_identifier_order=username,ip``).
CALLER_ID = "5550100"


def agent_names(count: int) -> list[str]:
    """``agent001`` ...: valid as agent names, PJSIP endpoint names and SIP users."""
    return [f"agent{i:03d}" for i in range(1, count + 1)]


@dataclass(frozen=True)
class AgentGroup:
    """One sipp UAS process: the phones of ``agents``, all on ``port``."""

    port: int
    agents: tuple[str, ...]


def group_agents(agents: Sequence[str], ports: Sequence[int]) -> list[AgentGroup]:
    """Agents dealt over the UAS processes in turn (agent i on process i mod n), so
    consecutive agents (app_queue's rrmemory order) land on different processes."""
    return [AgentGroup(port, tuple(agents[i::len(ports)])) for i, port in enumerate(ports)]


def pjsip_conf(groups: Sequence[AgentGroup]) -> str:
    """Agents' endpoints and AORs with static contacts, and the callers' endpoint."""
    out = ["; Written by bench/queue.py: agents on sipp UAS processes, callers by IP.\n",
           ("[bench-endpoint](!)\ntype=endpoint\ndisallow=all\nallow=ulaw\n"
            "direct_media=no\nrtp_symmetric=no\nsend_pai=no\n\n"),
           (f"[bench-caller](bench-endpoint)\ncontext={CALLER_CONTEXT}\n\n"
            "[bench-caller]\ntype=identify\nendpoint=bench-caller\nmatch=127.0.0.1\n\n")]
    for group in groups:
        for agent in group.agents:
            out.append(f"[{agent}](bench-endpoint)\ncontext=bench-agents\naors={agent}\n\n"
                       f"[{agent}]\ntype=aor\nmax_contacts=1\n"
                       f"contact=sip:{agent}@127.0.0.1:{group.port}\n\n")
    return "".join(out)


def queues_conf(agents: Sequence[str], *, strategy: str = "rrmemory",
                ring_timeout: int = 15) -> str:
    """The app_queue baseline: every agent a static member of queue ``bench``."""
    if strategy not in ("rrmemory", "leastrecent"):
        raise ValueError(f"strategy: rrmemory or leastrecent, not {strategy!r}")
    members = "".join(f"member => PJSIP/{a},0,{a}\n" for a in agents)
    return ("[general]\nshared_lastcall=no\n\n"
            f"[{QUEUE}]\nstrategy={strategy}\nringinuse=no\nautofill=yes\n"
            f"timeout={ring_timeout}\nretry=1\nwrapuptime=0\njoinempty=yes\n"
            "leavewhenempty=no\nannounce-frequency=0\nannounce-position=no\n"
            "periodic-announce-frequency=0\nmusicclass=default\n" + members)


def stasis_line(app: str) -> str:
    """``Stasis(app,bench,...)`` as the generator writes a queue destination, with the
    contract's own formatter (no skills, priority 0, English)."""
    args = dialplan_args(QUEUE, {"skills": "", "priority": "0", "language": "en",
                                 "entry": "bench", "account": ""})
    return f"Stasis({app},{','.join(args)})"


def caller_dialplan(extensions: dict[str, str]) -> str:
    """``extensions_custom.conf``: per contender, ``exten => N`` answering then running
    its queue application line (``Queue(...)`` / ``Stasis(...)``)."""
    out = f"; Written by bench/queue.py.\n[{CALLER_CONTEXT}]\n"
    for number, app_line in extensions.items():
        out += (f"exten => {number},1,Answer()\n same => n,{app_line}\n"
                " same => n,Hangup()\n")
    return out


def router_config_yaml(agents: Sequence[str], *, ring_timeout: int = 15,
                       number: str = "7200") -> str:
    """A callcenter config of the same agents as ``device: PJSIP/<endpoint>`` and one
    queue ``bench`` (longest_idle, wrap-up 0): what the ARI router contender loads."""
    lines = [
        "# Written by bench/queue.py: the ARI router contender's config.",
        "settings: {queue_app: cc-queue}",
        f'entry_points: {{bench: {{numbers: ["{number}"], flow: bench}}}}',
        f"flows: {{bench: {{steps: [{{transfer: {{queue: {QUEUE}}}}}]}}}}",
        "skills: [bench]",
        "queues:",
        (f"  {QUEUE}: {{skills: [bench], strategy: longest_idle, wrapup: 0, "
         f"ring_timeout: {ring_timeout}, auto_pause_after: 0}}"),
        "agents:",
    ]
    for i, agent in enumerate(agents):
        lines.append(f'  {agent}: {{extension: "{7300 + i}", skills: {{bench: 5}}, '
                     f"device: PJSIP/{agent}}}")
    return "\n".join(lines) + "\n"


# -- sipp scenarios ------------------------------------------------------------------

def agent_scenario(ring_ms: int, talk_ms: int) -> str:
    """An agent's phone (UAS): 180, ring ``ring_ms``, 200, talk ``talk_ms``, BYE.

    A CANCEL while ringing (app_queue's timeout, a caller gone) gets 200 and 487 to the
    INVITE: the INVITE's CSeq number is kept for that 487 (the last message is then the
    CANCEL, whose ``CSeq`` names CANCEL)."""
    to_us = "[$invite_to];tag=[pid]SIPpTag01[call_number]"
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callcenter queue bench agent">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="invite_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="invite_to"/>
    </action>
  </recv>
{reply("180 Ringing", f"To: {to_us}", contact=True)}  <recv request="CANCEL" timeout="{ring_ms}" ontimeout="answer"/>
{reply("200 OK", f"To: {to_us}")}{reply("487 Request Terminated", f"To: {to_us}", cseq="CSeq: [$invite_cseq] INVITE")}\
  <recv request="ACK" next="end"/>
  <label id="answer"/>
{reply("200 OK", f"To: {to_us}", contact=True, body=sdp("agent"))}  <recv request="ACK"/>
  <pause milliseconds="{talk_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {to_us}
      To: [$invite_from]
      [last_Call-ID:]
      CSeq: 1 BYE
      Contact: <sip:[service]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
  <label id="end"/>
</scenario>
"""


def caller_scenario(wait_ms: int) -> str:
    """A caller (UAC): INVITE, 200 (``Answer()``), ACK, then Asterisk's BYE within
    ``wait_ms`` (queue wait + talk), answered 200.

    A caller with no BYE in time gives up as a person would: it hangs up (BYE), so the
    queue lets it go at once and the next step starts clean, and the call counts as
    failed (a wait for a message that never comes: sipp's own failure count)."""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<scenario name="callcenter queue bench caller">\n'
        + invite(CALLER_ID, dtmf=False)
        + PROVISIONAL
        + '  <recv response="200" rrs="true"/>\n'
        + in_dialog("ACK", CALLER_ID, 1)
        + f'  <recv request="BYE" timeout="{wait_ms}" ontimeout="give_up"/>\n'
        + ok_to_request(send_attrs='next="done"')
        + '  <label id="give_up"/>\n'
        + in_dialog("BYE", CALLER_ID, 2, send_attrs='retrans="500"')
        + '  <recv response="200"/>\n'
        + '  <recv request="INFO" timeout="10"/>\n'  # never comes: a failed call
        + '  <label id="done"/>\n'
        + "</scenario>\n"
    )


class QueueBenchInstance(AsteriskInstance):
    """The product's instance plus the bench's own files (rewritten on every start, as
    the product rewrites its own): queues, agents' endpoints, caller dialplan, and AMI
    events stamped by Asterisk."""

    def __init__(self, home: Path, bench_files: dict[str, str]) -> None:
        super().__init__(home)
        self.bench_files = dict(bench_files)

    def write_runtime_config(self) -> None:
        super().write_runtime_config()
        manager = self.etc / "manager.conf"
        text = manager.read_text()
        if "timestampevents" not in text:
            manager.write_text(text.replace("[general]\n", "[general]\ntimestampevents=yes\n", 1))
        for name, body in self.bench_files.items():
            (self.etc / name).write_text(body)
