"""Our PBX and the test carrier, two real Asterisks joined by a real PJSIP trunk.

The carrier (:mod:`callcenter.testing.carrier`) listens on 127.0.0.2, our instance on
127.0.0.1, each on free ports in a home of its own. The trunk comes from YAML (pasted as
``callcenter carrier run`` prints it), its password from our home's ``secrets.json``.
Outcomes are read from Asterisk's AMI events on both sides (``DialEnd``, ``Hangup``,
``Newexten``), matched by the id we give the originated channel; nothing sleeps.
"""

from __future__ import annotations

import array
import asyncio
import signal
import sys
import time
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.asterisk.ami.client import AMIClient, AMIMessage
from callcenter.asterisk.secrets import trunk_passwords
from callcenter.config.loader import load_config
from callcenter.testing.carrier import (
    CARRIER_HOST,
    Carrier,
    classify,
    free_port_on,
    free_udp_range_on,
)
from dialplan.trunks import trunk_out_context
from tests.integration.carrier_trunk import connect_trunk
from tests.integration.scratch_pbx import ScratchPBX, scratch_pbx

pytestmark = pytest.mark.integration

DID = "+15550109000"
TRUNK_CALLER_ID = "+15550100000"
RING = 5  # seconds: the trunk's ring_timeout in this config
#: A config directory name that once ran a shell: it may only reach comments.
# The marker path lives in a global (as test_hostile_config does): file names cannot
# hold '/', and the marker must stay inside the test's own directory.
SHELL = "${SHELL(touch ${CC_TEST_MARKER})}"


@dataclass
class Pair:
    ours: ScratchPBX
    carrier: Carrier
    carrier_ami: AMIClient
    config_dir: Path
    #: The file the hostile config's ${SHELL(touch ...)} would create if it ever ran.
    marker: Path


def _config(root: Path, carrier: Carrier) -> Path:
    directory = root / f"cfg{SHELL}"
    directory.mkdir(parents=True)
    (directory / "main.yaml").write_text(dedent("""\
        entry_points:
          main: {numbers: ["7000"], flow: hello}
        flows:
          hello:
            steps:
              - play: hello-world
              - hangup: true
        """))
    trunk = carrier.trunk_yaml(dids={DID: "main"}, caller_id=TRUNK_CALLER_ID)
    # The hostile description: a comment end, a new section, a dialplan function.
    trunk = trunk.replace(
        "description: the test carrier (callcenter carrier run)",
        'description: "x ;-- \\n[evil]\\ntype=endpoint ${SHELL(id)}"')
    trunk += f"    ring_timeout: {RING}\n"
    (directory / "trunks.yaml").write_text(trunk)
    return directory


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory,
               asterisk_installation) -> AsyncIterator[Pair]:
    carrier = Carrier(tmp_path_factory.mktemp("carrier-home"))
    carrier.setup(asterisk_installation)
    await asyncio.to_thread(carrier.start)
    try:
        creds = carrier.instance.credentials
        host, port = carrier.instance.ami_address
        async with AMIClient(host, port, username=creds.ami_user,
                             secret=creds.ami_secret) as carrier_ami, \
                scratch_pbx(tmp_path_factory.mktemp("our-home"), asterisk_installation) as ours:
            marker = tmp_path_factory.mktemp("marker") / f"pwned-{uuid.uuid4().hex}"
            await asyncio.to_thread(ours.instance.cli,
                                    f"dialplan set global CC_TEST_MARKER {marker}")
            config_dir = _config(tmp_path_factory.mktemp("config"), carrier)
            # As 'callcenter carrier run' does: the password goes into our secrets file.
            await connect_trunk(ours, carrier, config_dir, asterisk_installation)
            yield Pair(ours, carrier, carrier_ami, config_dir, marker)
    finally:
        await asyncio.to_thread(carrier.stop)


@dataclass
class Outcome:
    """What happened to one outbound call, from our side's AMI events."""

    dial_status: str | None = None
    answered_at: float | None = None
    cause: int | None = None
    #: The cause our dial context hung up with (the Local channel's ``;2`` half).
    local_cause: int | None = None
    ended_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    events: list[AMIMessage] = field(default_factory=list)

    @property
    def talk(self) -> float:
        assert self.answered_at is not None and self.ended_at is not None
        return self.ended_at - self.answered_at

    @property
    def until_end(self) -> float:
        assert self.ended_at is not None
        return self.ended_at - self.started_at


async def _dial(pair: Pair, number: str, *, variables: dict[str, str] | None = None,
                application: tuple[str, str] = ("Wait", "60"),
                timeout: float = 40) -> Outcome:
    """Originate ``Local/<number>@cc-trunk-carrier-out`` on our side; the trunk leg's
    ``DialEnd`` and ``Hangup`` (cause), once the originated channel is gone."""
    ami = pair.ours.ami
    chan_id = f"cc-test-{uuid.uuid4().hex[:12]}"
    outcome = Outcome()
    ours_gone = False
    with ami.subscribe("DialEnd", "Hangup", "OriginateResponse") as events:
        await ami.action(
            "Originate", Channel=f"Local/{number}@{trunk_out_context('carrier')}",
            Application=application[0], Data=application[1], ChannelId=chan_id,
            Async="true", Timeout=str(int(timeout * 1000)),
            Variable=[f"{k}={v}" for k, v in (variables or {}).items()])
        async with asyncio.timeout(timeout):
            while not (ours_gone and outcome.ended_at is not None
                       and outcome.local_cause is not None):
                event = await events.get()
                if event.event == "OriginateResponse":
                    if event.get("Uniqueid") == chan_id and event.get("Response") != "Success":
                        ours_gone = True  # the Local channel never came up
                    continue
                if event.get("Linkedid") != chan_id:
                    continue
                outcome.events.append(event)
                trunk_leg = event.get("DestChannel" if event.event == "DialEnd"
                                      else "Channel", "").startswith("PJSIP/carrier-")
                if event.event == "DialEnd" and trunk_leg:
                    outcome.dial_status = event["DialStatus"]
                    if outcome.dial_status == "ANSWER":
                        outcome.answered_at = time.monotonic()
                elif event.event == "Hangup" and trunk_leg:
                    outcome.cause = int(event["Cause"])
                    outcome.ended_at = time.monotonic()
                elif event.event == "Hangup" and event.get("Channel", "").endswith(";2"):
                    outcome.local_cause = int(event["Cause"])
                elif event.event == "Hangup" and event.get("Uniqueid") == chan_id:
                    ours_gone = True
    return outcome


def _loud_share(path: Path, seconds: float) -> float:
    """Share of the 20 ms windows in the first ``seconds`` of a 16-bit mono WAV whose
    mean absolute amplitude is above 300 (speech; Asterisk's silence is 0)."""
    with wave.open(str(path)) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1)
        rate = w.getframerate()
        samples = array.array("h", w.readframes(int(rate * seconds)))
    window = rate // 50
    chunks = [samples[i:i + window] for i in range(0, len(samples) - window + 1, window)]
    assert chunks, f"{path} holds no audio"
    loud = sum(1 for c in chunks if sum(abs(s) for s in c) / len(c) > 300)
    return loud / len(chunks)


# -- registration -----------------------------------------------------------------------------

async def test_trunk_registers_with_the_carrier(pair: Pair) -> None:
    _, ours = await asyncio.to_thread(pair.ours.instance.cli, "pjsip show registrations")
    line = next(x for x in ours.splitlines() if "carrier-reg" in x and "sip:" in x)
    assert "Registered" in line, ours
    # The carrier has our contact under its account: it can call our DIDs.
    _, contacts = await asyncio.to_thread(pair.carrier.instance.cli, "pjsip show contacts")
    assert f"{pair.carrier.account}/sip:{pair.carrier.account}@127.0.0.1:" \
           f"{pair.ours.sip_port}" in contacts, contacts


async def test_hostile_names_never_reach_what_asterisk_runs(pair: Pair) -> None:
    _, endpoints = await asyncio.to_thread(pair.ours.instance.cli, "pjsip show endpoints")
    names = {line.split()[1].split("/")[0] for line in endpoints.splitlines()
             if line.strip().startswith("Endpoint:") and "<Endpoint" not in line}
    assert names == {"cc-inbound", "carrier"}, endpoints
    _, show = await asyncio.to_thread(pair.ours.instance.cli, "dialplan show")
    assert "cc-trunk-carrier-out" in show
    for needle in ("SHELL", "evil", "pwned", "CC_TEST_MARKER"):
        assert needle not in show, f"{needle!r} in the loaded dialplan"
    assert not pair.marker.exists(), "a config name ran a shell command"


# -- outbound calls, one per number class -----------------------------------------------------

async def test_answered_call_talks_then_the_callee_hangs_up(pair: Pair) -> None:
    number = "+15550100003"  # talks 3 s
    assert classify(number).name == "answer"
    with pair.carrier_ami.subscribe("Newexten") as carrier_steps:
        outcome = await _dial(pair, number)
        seen = await carrier_steps.wait_for(
            "Newexten", 5, Context="carrier-in", Application="NoOp")
    assert outcome.dial_status == "ANSWER"
    assert outcome.cause == outcome.local_cause == 16
    assert 2.5 <= outcome.talk <= 6, outcome.talk
    # The carrier saw the trunk's caller ID (P-Asserted-Identity).
    assert seen["AppData"] == f"carrier call from {TRUNK_CALLER_ID} to {number}"


async def test_busy_number_gives_cause_17(pair: Pair) -> None:
    with pair.carrier_ami.subscribe("Newexten") as carrier_steps:
        outcome = await _dial(pair, "+15550101000",
                              variables={"CC_OUTBOUND_CALLER_ID": "+15557770001"})
        seen = await carrier_steps.wait_for(
            "Newexten", 5, Context="carrier-in", Application="NoOp")
    assert (outcome.dial_status, outcome.cause, outcome.local_cause) == ("BUSY", 17, 17)
    assert outcome.answered_at is None
    # A call's own caller ID replaces the trunk's.
    assert seen["AppData"] == "carrier call from +15557770001 to +15550101000"


async def test_unanswered_number_rings_out_after_the_ring_time(pair: Pair) -> None:
    outcome = await _dial(pair, "+15550102000")
    assert outcome.dial_status == "NOANSWER"
    assert outcome.answered_at is None
    assert RING - 0.5 <= outcome.until_end <= RING + 4, outcome.until_end
    # Asterisk hangs the trunk leg up itself when Dial's timer ends, with no cause (0,
    # measured); the dial context tells the originator "no answer".
    assert (outcome.cause, outcome.local_cause) == (0, 19)


async def test_ring_time_of_the_call_overrides_the_trunks(pair: Pair) -> None:
    outcome = await _dial(pair, "+15550102000", variables={"CC_RING_TIMEOUT": "2"})
    assert outcome.dial_status == "NOANSWER"
    assert outcome.until_end < RING, outcome.until_end


async def test_failing_number_gives_503_as_congestion(pair: Pair) -> None:
    outcome = await _dial(pair, "+15550103000")
    # 503 Service Unavailable -> AST_CAUSE_CONGESTION (34, ast_sip_hangup_sip2cause).
    assert (outcome.dial_status, outcome.cause, outcome.local_cause) == ("CONGESTION", 34, 34)
    assert outcome.answered_at is None


async def test_machine_answers_with_a_greeting_we_hear(pair: Pair, tmp_path: Path) -> None:
    machine, live = tmp_path / "machine.wav", tmp_path / "live.wav"
    # Both recorded on our side of the trunk (Record on the originated channel: 'k' keeps
    # the file when the far end hangs up, 'q' no beep, 'x' no key ends it).
    machine_call, live_call = await asyncio.gather(
        _dial(pair, "+15550104002", application=("Record", f"{machine},0,30,kqx")),
        _dial(pair, "+15550100006", application=("Record", f"{live},0,30,kqx")))
    assert (machine_call.dial_status, machine_call.cause) == ("ANSWER", 16)
    assert (live_call.dial_status, live_call.cause) == ("ANSWER", 16)
    # Greeting (about 8.5 s), beep, 2 s: the machine hangs up about 11 s after answering.
    assert 9 <= machine_call.talk <= 16, machine_call.talk
    # What we heard in the first 6 s: the machine speaks nearly all the time, a live
    # answer says "hello world" (1.4 s) and waits.
    assert _loud_share(machine, 6) > 0.6
    assert _loud_share(live, 6) < 0.35


async def test_hang_up_at_once_number_answers_then_clears(pair: Pair) -> None:
    outcome = await _dial(pair, "+15550105000")
    assert (outcome.dial_status, outcome.cause, outcome.local_cause) == ("ANSWER", 16, 16)
    assert outcome.talk < 1.5, outcome.talk


async def test_respondent_presses_its_three_keys_one_by_one(pair: Pair) -> None:
    """``+1555010 6 xyz`` answers and sends x, y, z as RFC 4733 DTMF, seconds apart: a
    Read() of three digits on our side (10 s allowed between keys) gets all three."""
    number = "+15550106427"
    assert classify(number).name == "respondent"
    with pair.ours.ami.subscribe("VarSet") as sets:
        outcome = await _dial(pair, number, application=("Read", "CC_TEST_DIGITS,,3,,1,10"))
        read = await sets.wait_for("VarSet", 5, Variable="CC_TEST_DIGITS")
    assert outcome.dial_status == "ANSWER"
    assert read["Value"] == "427"
    # Read() took the third key, so the keys came in about RESPONDENT_FIRST and two gaps.
    assert outcome.ended_at is not None and outcome.answered_at is not None
    assert 9 <= outcome.ended_at - outcome.answered_at <= 20


async def test_not_a_number_never_leaves_our_pbx(pair: Pair) -> None:
    """``+1555a0100003`` matches ``_+X.``: the dial context hangs it up (28, invalid number
    format) instead of dialling a filtered-down other number."""
    ami = pair.ours.ami
    chan_id = f"cc-test-{uuid.uuid4().hex[:12]}"
    seen: list[AMIMessage] = []
    with ami.subscribe("Newchannel", "Hangup") as events:
        await ami.action("Originate", Channel=f"Local/+1555a0100003@"
                         f"{trunk_out_context('carrier')}", Application="Wait", Data="5",
                         ChannelId=chan_id, Async="true", Timeout="10000")
        async with asyncio.timeout(15):
            # Both halves of the Local channel: the ;2 half (the dial context's) may hang
            # up after the ;1 half whose Uniqueid we chose.
            while {e["Channel"].rsplit(";", 1)[-1] for e in seen
                   if e.event == "Hangup" and e.get("Channel", "").startswith("Local/")} \
                    < {"1", "2"}:
                event = await events.get()
                if event.get("Linkedid") == chan_id:
                    seen.append(event)
    assert not [e for e in seen if e.get("Channel", "").startswith("PJSIP/")], seen
    causes = {e["Channel"].rsplit(";", 1)[-1]: e["Cause"] for e in seen if e.event == "Hangup"}
    assert causes["2"] == "28", causes


# -- inbound: the network calls our DID --------------------------------------------------------

async def test_call_from_the_carrier_to_our_did_reaches_the_entry_point(pair: Pair) -> None:
    caller = "+15551230001"
    steps: list[AMIMessage] = []
    with pair.ours.ami.subscribe("Newexten", "Hangup") as events:
        await pair.carrier_ami.action("Originate", **pair.carrier.call_fields(
            DID, caller_id=caller, seconds=10))
        async with asyncio.timeout(20):
            while True:
                event = await events.get()
                if event.get("CallerIDNum") != caller:
                    continue
                if event.event == "Hangup":
                    hangup = event
                    break
                steps.append(event)
    apps = [(s["Context"], s["Application"], s.get("AppData", "")) for s in steps]
    assert apps[0] == ("cc-trunk-carrier-in", "Goto", "cc-entrypoint-main,s,1")
    assert ("cc-entrypoint-main", "NoOp", "callcenter entry main from 15551230001") in apps
    assert ("cc-flow-hello", "Playback", "hello-world") in apps
    assert hangup["Cause"] == "16"  # the flow's hangup step, after the prompt


# -- callcenter carrier run ---------------------------------------------------------------------

async def test_carrier_run_prints_a_trunk_that_loads_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    # Short names: under pytest-xdist's longer tmp paths, "carrier-home" put the
    # carrier's control socket over the AF_UNIX path limit (107 bytes).
    home, carrier_home = tmp_path / "home", tmp_path / "c-home"
    rtp_start, rtp_end = free_udp_range_on(CARRIER_HOST, 20)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from callcenter.cli import main; main()",
        "--home", str(home), "carrier", "run", "--carrier-home", str(carrier_home),
        "--did", f"{DID}=main",
        "--sip-port", str(free_port_on(CARRIER_HOST, udp_and_tcp=True)),
        "--http-port", str(free_port_on(CARRIER_HOST)),
        "--ami-port", str(free_port_on(CARRIER_HOST)),
        "--rtp-ports", f"{rtp_start}-{rtp_end}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not printed or "Ctrl-C stops the carrier" not in printed[-1]:
                line = await proc.stdout.readline()
                assert line, f"carrier run ended: {printed} {await proc.stderr.read()!r}"
                printed.append(line.decode())
        text = "".join(printed)
        yaml_part = text[text.index("trunks:\n"):text.index("numbers (")]
        directory = tmp_path / "cfg"
        directory.mkdir()
        (directory / "main.yaml").write_text(dedent("""\
            entry_points:
              main: {numbers: ["7000"], flow: hello}
            flows:
              hello: {steps: [{play: hello-world}, {hangup: true}]}
            """))
        (directory / "trunks.yaml").write_text(yaml_part)
        trunk = load_config(directory).config.trunks["carrier"]
        assert (trunk.host, trunk.dids) == (CARRIER_HOST, {DID: "main"})
        running = Carrier(carrier_home)
        assert trunk.port == running.sip_port
        # The password is in our secrets file, never on stdout.
        assert trunk_passwords(home / "secrets.json", ["carrier"]) == {
            "carrier": running.password}
        assert running.password not in text
        for number_class in ("+15550100xxx", "+15550101xxx", "+15550104xxx"):
            assert number_class in text
        _, endpoints = await asyncio.to_thread(running.instance.cli, "pjsip show endpoints")
        assert "callcenter" in endpoints
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert out.decode().strip().endswith("carrier stopped")
    assert not Carrier(carrier_home).instance.is_running()
