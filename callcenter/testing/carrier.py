"""The test carrier: a second Asterisk that plays the public telephone network.

It is an ordinary :class:`~callcenter.asterisk.instance.AsteriskInstance` in a home of its
own, listening on another loopback address (``127.0.0.2`` by default, so the call center
can tell the carrier's calls from its local callers' by address, see
:mod:`callcenter.config.trunk_checks`). It holds one SIP account, ``callcenter`` by
default, that the call center's trunk registers to and authenticates with (digest; the
password is generated into the carrier's own ``secrets.json``), and a number plan whose
numbers behave like subscribers do (:data:`NUMBER_PLAN`)::

    +1555010 0 0SS   answers, says "hello world", stays on the line, hangs up after SS s
    +1555010 1 xxx   busy: 486 Busy Here
    +1555010 2 xxx   rings (180) and never answers (480 after 5 minutes)
    +1555010 3 xxx   fails: 503 Service Unavailable
    +1555010 4 0SS   an answering machine: answers, a recorded greeting (about 8.5 s of
                     voice: core sounds vm-nobodyavail, vm-intro), a beep, records what it
                     hears for SS s (a WAV per call, :meth:`Carrier.machine_recordings`),
                     hangs up
    +1555010 5 xxx   answers and hangs up at once
    +1555010 6 xyz   a respondent: answers, says "hello world", then presses x, y and z
                     (RFC 4733 DTMF) about 4 s apart, stays on 10 s more, hangs up

``SS`` = 00 takes the default (20 s of talk, 10 s after the beep). Any other number gets
404 Not Found. The carrier calls the call center's DIDs with :meth:`Carrier.call_fields`
(AMI ``Originate`` to ``PJSIP/<did>@<account>``, through the registration's contact).

Dialplan contract (the carrier's own, written as its instance's generated files):
``carrier-in`` takes calls from the account (each starts with
``NoOp(carrier call from <caller> to <number>)``); nothing else reaches it. The machine
records with ``Record(<home>/machine/machine-<number digits>-<UNIQUEID>.wav,0,SS,kqx)``:
no silence limit, ``k`` keeps the file when the caller hangs up, ``q`` no beep of its
own, ``x`` no key ends it.
"""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.asterisk.secrets import ensure_secrets, read_secrets

__all__ = [
    "CARRIER_HOST",
    "NUMBER_PLAN",
    "Carrier",
    "NumberClass",
    "carrier_files",
    "classify",
    "free_port_on",
    "free_udp_range_on",
    "trunk_yaml",
]

#: The carrier's default address: on loopback, but not the call center's 127.0.0.1.
CARRIER_HOST = "127.0.0.2"
#: The account the call center's trunk uses (user name, From user, the carrier's endpoint).
DEFAULT_ACCOUNT = "callcenter"
#: Key of the account's password in the carrier's ``secrets.json``.
_PASSWORD_KEY = "carrier_account_password"
#: The context the account's calls land in on the carrier.
CARRIER_IN = "carrier-in"
#: Core sounds of the answering machine's greeting: "Nobody is available to take your
#: call at the moment" + "Please leave your message after the tone ..." (8.5 s of voice).
MACHINE_GREETING = ("vm-nobodyavail", "vm-intro")
#: The respondent's timing, in seconds: its first key this long after answering (its
#: "hello world" and the caller's first question have started by then), the next ones
#: this far apart (each finds the caller's next Read() waiting: a survey question that
#: takes one key ends on it), then the line held this long before hanging up.
RESPONDENT_FIRST = 5
RESPONDENT_GAP = 4
RESPONDENT_STAY = 10
#: Directory of the machine's recordings under the carrier's home.
MACHINE_RECORDINGS = "machine"
#: A directory Asterisk's ``Record()`` argument can hold as is (no ``,`` ``;`` ``$`` ...).
_RECORD_DIR = re.compile(r"/[A-Za-z0-9/._+@=~-]{0,200}")


@dataclass(frozen=True)
class NumberClass:
    """Numbers ``+1555010<digit>xxx`` and what the carrier does with them."""

    name: str
    digit: str
    description: str

    @property
    def pattern(self) -> str:
        """The dialplan pattern of the class (``_+15550100XXX``)."""
        return f"_+1555010{self.digit}XXX"

    def number(self, suffix: int = 0) -> str:
        """A number of the class, ``suffix`` in its last three digits."""
        return f"+1555010{self.digit}{suffix:03d}"


NUMBER_PLAN: tuple[NumberClass, ...] = (
    NumberClass("answer", "0", "answers, says hello, talks; hangs up after the last two "
                "digits in seconds (00: 20 s)"),
    NumberClass("busy", "1", "busy: 486 Busy Here"),
    NumberClass("no_answer", "2", "rings and never answers (480 after 5 minutes)"),
    NumberClass("fail", "3", "fails: 503 Service Unavailable"),
    NumberClass("machine", "4", "answering machine: an 8.5 s greeting, a beep; hangs up the "
                "last two digits in seconds later (00: 10 s)"),
    NumberClass("hangup", "5", "answers and hangs up at once"),
    NumberClass("respondent", "6", "answers, says hello, presses the last three digits "
                f"one by one {RESPONDENT_GAP} s apart (the first {RESPONDENT_FIRST} s after "
                f"answering), stays {RESPONDENT_STAY} s, hangs up"),
)
_BY_NAME = {c.name: c for c in NUMBER_PLAN}


def classify(number: str) -> NumberClass | None:
    """The class of ``number`` as the carrier's dialplan matches it (None: 404)."""
    m = re.fullmatch(r"\+1555010([0-9])[0-9]{3}", number)
    return next((c for c in NUMBER_PLAN if m and c.digit == m[1]), None)


def _exten(name: str, *apps: str) -> str:
    lines = [f"exten => {name},1,{apps[0]}"] + [f" same => n,{a}" for a in apps[1:]]
    return "\n".join(lines) + "\n"


def carrier_files(account: str, password: str, *,
                  recordings: Path | None = None) -> dict[str, str]:
    """The carrier instance's generated files (pure): its dialplan and the account.

    ``account`` and ``password`` are ours (:class:`Carrier` generates them) and checked
    against a plain alphabet, so neither can end a config line early. ``recordings``: the
    absolute directory the answering machine records into (None: it only listens).
    """
    if recordings is not None and not _RECORD_DIR.fullmatch(str(recordings)):
        raise ValueError(f"machine recordings directory {str(recordings)!r}: an absolute "
                         "path of letters, digits and / . _ + @ = ~ - is expected")
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,47}", account):
        raise ValueError(f"carrier account {account!r}: a lowercase name is expected")
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", password):
        raise ValueError("carrier password: 16 to 128 of A-Z a-z 0-9 _ - expected")
    seconds = "${EXTEN:-2}"
    # 00 in the last two digits takes the class's default.
    talk = f'${{IF($["{seconds}" = "00"]?20:{seconds})}}'
    after_beep = f'${{IF($["{seconds}" = "00"]?10:{seconds})}}'
    c = _BY_NAME
    dialplan = "\n".join([
        "; The test carrier (callcenter.testing.carrier): the public network's numbers.",
        f"[{CARRIER_IN}]",
        _exten(c["answer"].pattern, "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "Answer()", f"Set(TIMEOUT(absolute)={talk})", "Playback(hello-world)",
               "Wait(600)", "Hangup(16)"),
        _exten(c["busy"].pattern, "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "PJSIPHangup(486)"),
        _exten(c["no_answer"].pattern,
               "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "Ringing()", "Wait(300)", "PJSIPHangup(480)"),
        _exten(c["fail"].pattern, "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "PJSIPHangup(503)"),
        _exten(c["machine"].pattern, "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "Answer()", f"Playback({'&'.join(MACHINE_GREETING)})", "Playback(beep)",
               f"Wait({after_beep})" if recordings is None else
               f"Record({recordings}/machine-${{EXTEN:1}}-${{UNIQUEID}}.wav,0,{after_beep},kqx)",
               "Hangup(16)"),
        _exten(c["hangup"].pattern, "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "Answer()", "Hangup(16)"),
        # SendDTMF's digits are the dialled number's own (one of 0-9 each, by pattern).
        _exten(c["respondent"].pattern,
               "NoOp(carrier call from ${CALLERID(num)} to ${EXTEN})",
               "Answer()", "Playback(hello-world)", f"Wait({RESPONDENT_FIRST - 1})",
               "SendDTMF(${EXTEN:-3:1},,250)", f"Wait({RESPONDENT_GAP})",
               "SendDTMF(${EXTEN:-2:1},,250)", f"Wait({RESPONDENT_GAP})",
               "SendDTMF(${EXTEN:-1:1},,250)", f"Wait({RESPONDENT_STAY})", "Hangup(16)"),
        # TIMEOUT(absolute) of an answered call ends here: the subscriber hangs up.
        _exten("T", "Hangup(16)"),
    ])
    pjsip = "\n".join([
        "; The test carrier's one account: the call center's trunk.",
        f"[{account}]", "type=endpoint", f"context={CARRIER_IN}", "disallow=all",
        "allow=ulaw,alaw", "dtmf_mode=rfc4733", f"auth={account}-auth", f"aors={account}",
        "direct_media=no", "rtp_symmetric=yes", "force_rport=yes", "rewrite_contact=yes",
        # The caller ID the call center sends in P-Asserted-Identity is the call's.
        "trust_id_inbound=yes",
        "",
        f"[{account}]", "type=aor", "max_contacts=1", "remove_existing=yes",
        "minimum_expiration=60", "default_expiration=300",
        "",
        f"[{account}-auth]", "type=auth", "auth_type=userpass", f"username={account}",
        f"password={password}",
    ]) + "\n"
    return {"extensions_callcenter.conf": dialplan, "pjsip_callcenter.conf": pjsip,
            "voicemail_callcenter.conf": "; the carrier has no voicemail\n"}


def trunk_yaml(*, name: str = "carrier", host: str, port: int, account: str,
               caller_id: str = "+15550100000", dids: Mapping[str, str] | None = None) -> str:
    """The ``trunks:`` entry a call center pastes to reach the carrier (no password: it
    goes into the call center's ``secrets.json``)."""
    did_lines = [f'      "{did}": {entry}' for did, entry in sorted((dids or {}).items())]
    if not did_lines:
        did_lines = ['      "+15550109000": main     # your DID -> your entry point']
    return "\n".join([
        "trunks:",
        f"  {name}:",
        "    description: the test carrier (callcenter carrier run)",
        f"    host: {host}",
        f"    port: {port}",
        f"    auth: {{username: {account}}}   # password: in secrets.json (trunk_passwords)",
        "    registration: true",
        f"    from_user: {account}",
        f'    caller_id: "{caller_id}"',
        "    dids:",
        *did_lines,
    ]) + "\n"


class Carrier:
    """The carrier's Asterisk instance in ``home``: set up, started and stopped like ours."""

    def __init__(self, home: Path, *, account: str = DEFAULT_ACCOUNT) -> None:
        self.instance = AsteriskInstance(home)
        self.account = account

    @property
    def host(self) -> str:
        return self.instance.settings.bind

    @property
    def sip_port(self) -> int:
        return self.instance.settings.sip_port

    @property
    def password(self) -> str:
        """The account's password (generated once, kept in the carrier's secrets)."""
        value = read_secrets(self.instance.secrets_file).get(_PASSWORD_KEY)
        if not isinstance(value, str):
            raise RuntimeError(f"no carrier set up in {self.instance.home}")  # noqa: TRY004
        return value

    def setup(self, installation: AsteriskInstallation, settings: InstanceSettings | None = None,
              ) -> None:
        """Configure the instance (on free ports of :data:`CARRIER_HOST` unless
        ``settings`` says otherwise) and write the carrier's files; does not start it."""
        from callcenter.apply import write_generation

        if settings is None:
            rtp_start, rtp_end = free_udp_range_on(CARRIER_HOST, 40)
            settings = InstanceSettings(
                bind=CARRIER_HOST, sip_port=free_port_on(CARRIER_HOST, udp_and_tcp=True),
                http_port=free_port_on(CARRIER_HOST), ami_port=free_port_on(CARRIER_HOST),
                rtp_start=rtp_start, rtp_end=rtp_end, node="carrier")
        self.instance.setup(installation, settings)
        ensure_secrets(self.instance.secrets_file, {_PASSWORD_KEY: secrets.token_urlsafe(18)})
        self.recordings_dir.mkdir(exist_ok=True)
        write_generation(self.instance.generated_dir, carrier_files(
            self.account, self.password, recordings=self.recordings_dir))

    @property
    def recordings_dir(self) -> Path:
        """Where the answering machine keeps what it recorded after its beep."""
        return self.instance.home / MACHINE_RECORDINGS

    def machine_recordings(self, number: str) -> list[Path]:
        """The machine's recordings of calls to ``number``, oldest first (a file is
        complete once the carrier's channel of its call hung up)."""
        if classify(number) is None:
            raise ValueError(f"{number!r} is not a carrier number")
        files = self.recordings_dir.glob(f"machine-{number.removeprefix('+')}-*.wav")
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def start(self) -> float:
        return self.instance.start()

    def stop(self) -> bool:
        return self.instance.stop()

    def trunk_yaml(self, *, name: str = "carrier", dids: Mapping[str, str] | None = None,
                   caller_id: str = "+15550100000") -> str:
        return trunk_yaml(name=name, host=self.host, port=self.sip_port, account=self.account,
                          caller_id=caller_id, dids=dids)

    def call_fields(self, did: str, *, caller_id: str, seconds: int = 20,
                    channel_id: str | None = None) -> dict[str, str]:
        """AMI ``Originate`` fields for a call from the network to the call center's
        ``did``: the carrier's side waits ``seconds`` once answered, then hangs up."""
        if not re.fullmatch(r"\+?[0-9]{3,20}", did) or not re.fullmatch(r"\+?[0-9]{3,20}",
                                                                        caller_id):
            raise ValueError("a DID and a caller ID are numbers: an optional +, then digits")
        fields = {"Channel": f"PJSIP/{did}@{self.account}", "Application": "Wait",
                  "Data": str(int(seconds)), "CallerID": f"<{caller_id}>", "Async": "true",
                  "Timeout": "30000"}
        if channel_id is not None:
            fields["ChannelId"] = channel_id
        return fields


def free_port_on(host: str, *, udp_and_tcp: bool = False) -> int:
    """A port free on ``host`` now (TCP, and UDP too for SIP), reserved for this
    process (:func:`callcenter.testing.ports.reserve`)."""
    from callcenter.testing.ports import free_port, free_udp_tcp_port

    return free_udp_tcp_port(host=host) if udp_and_tcp else free_port(host=host)


def free_udp_range_on(host: str, count: int) -> tuple[int, int]:
    """``count`` consecutive UDP ports free on ``host`` and on 127.0.0.1 (RTP may
    bind the wildcard address), reserved for this process."""
    from callcenter.testing.ports import free_udp_range, release

    for _ in range(50):
        first, last = free_udp_range(count)  # free on 127.0.0.1, reserved
        if all(_udp_binds(host, port) for port in range(first, last + 1)):
            return first, last
        release(first, count)
    raise RuntimeError(f"no {count} consecutive free UDP ports on {host}")


def _udp_binds(host: str, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, port))
    except OSError:
        return False
    return True
