"""Trunks: the YAML section, its located errors, what the generator writes, the secrets.

What Asterisk does with the generated text is in ``tests/integration/test_carrier.py``
(two real Asterisks); here the shape and the safety of the text itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.asterisk.secrets import (
    read_secrets,
    set_trunk_password,
    trunk_passwords,
)
from callcenter.config.models import CallCenterConfig
from callcenter.testing.carrier import (
    NUMBER_PLAN,
    Carrier,
    carrier_files,
    classify,
    trunk_yaml,
)
from dialplan.generator import AUTH_FILE, MissingPasswordError, render
from dialplan.trunks import TRUNK_PASSWORD, auth_trunks
from tests.passwords import fake_passwords
from tests.unit.test_checks import errors, find, lines, load

TRUNK = """\
    trunks:
      carrier:
        host: 127.0.0.2
        port: 5070
        auth: {username: callcenter}
        registration: true
        from_user: callcenter
        from_domain: sip.example.net
        codecs: [alaw, ulaw]
        caller_id: "+15550100000"
        ring_timeout: 25
        dids:
          "+15550109000": main
    """
PASSWORDS = {"carrier": "s3cret!pa$$word"}


def _render(tmp_path: Path, trunk: str = TRUNK, passwords: dict[str, str] | None = None,
            ) -> dict[str, str]:
    loaded = load(tmp_path, trunks=trunk)
    return render(loaded.config, loaded.where, agent_passwords=fake_passwords(loaded.config),
                  trunk_passwords=PASSWORDS if passwords is None else passwords)


# -- the YAML -------------------------------------------------------------------------------

def test_a_trunk_loads_with_its_defaults(tmp_path: Path) -> None:
    loaded = load(tmp_path, trunks="""\
        trunks:
          ip_only: {host: sip.example.net}
        """)
    trunk = loaded.config.trunks["ip_only"]
    assert (trunk.port, trunk.transport, trunk.auth, trunk.registration) == (
        5060, "udp", None, False)
    assert (trunk.codecs, trunk.ring_timeout, trunk.dids) == (("ulaw", "alaw"), 60, {})


def test_an_unknown_entry_point_is_located_at_the_did(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks=TRUNK.replace("+15550109000\": main", "+15550109000\": mian"))
    error = find(errs, "trunks.carrier.dids.+15550109000")
    assert error.message == "unknown entry point 'mian' (known: main)"
    assert lines(errs) == [("trunks.yaml:13:23: trunks.carrier.dids.+15550109000: "
                           "unknown entry point 'mian' (known: main)")]


@pytest.mark.parametrize("field, value, path, words", [
    ("host", "'evil;host'", "trunks.carrier.host", "a host name or IPv4 address"),
    ("host", "'a.b:5060'", "trunks.carrier.host", "without port"),
    ("from_user", "'cc;x=1'", "trunks.carrier.from_user", "1 to 64 letters, digits"),
    ("from_domain", "'exa mple'", "trunks.carrier.from_domain", "a host name"),
    ("caller_id", "'555-0100'", "trunks.carrier.caller_id", "a phone number"),
    ("auth", "{username: 'a@b'}", "trunks.carrier.auth.username", "1 to 64 letters"),
])
def test_values_that_would_reach_pjsip_are_restricted(tmp_path: Path, field: str, value: str,
                                                      path: str, words: str) -> None:
    trunk = re.sub(rf"(?m)^( +){field}: .*$", rf"\g<1>{field}: {value}", TRUNK)
    assert trunk != TRUNK
    message = find(errors(tmp_path, trunks=trunk), path).message
    assert words in message, message


def test_a_hostile_did_or_codec_is_refused(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          carrier:
            host: 127.0.0.2
            codecs: [ulaw, "alaw,h264"]
            dids: {"+1555,0109000": main}
        """)
    assert find(errs, "trunks.carrier.codecs[1]")
    assert find(errs, "trunks.carrier.dids").message.startswith(
        "invalid key '+1555,0109000': expected a phone number")


def test_registration_needs_auth(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          carrier: {host: 127.0.0.2, registration: true}
        """)
    assert "registration: true needs auth" in find(errs, "trunks.carrier").message


def test_no_password_key_in_the_yaml(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          carrier: {host: 127.0.0.2, auth: {username: cc, password: hunter2}}
        """)
    error = find(errs, "trunks.carrier.auth")
    assert "password" in error.message
    assert "hunter2" not in str(error)


def test_a_provider_among_the_inbound_peers_is_refused(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          carrier: {host: 127.0.0.1}
        """)
    assert lines(errs) == [
        ("trunks.yaml:2:19: trunks.carrier.host: 127.0.0.1 is in settings.inbound_sip_peers "
        "(127.0.0.1/32): Asterisk could not tell the trunk's calls from callers' calls; give "
        "the provider an address outside them (or narrow inbound_sip_peers)")]


def test_two_trunks_may_not_share_an_address(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          one: {host: Sip.Example.net}
          two: {host: sip.example.net, port: 5080}
        """)
    assert lines(errs) == [
        ("trunks.yaml:3:15: trunks.two.host: trunk 'one' already has host sip.example.net: "
        "Asterisk knows a provider's calls by its address, so one trunk per address")]


def test_a_trunk_may_not_take_a_softphone_agents_name(tmp_path: Path) -> None:
    errs = errors(tmp_path, trunks="""\
        trunks:
          alice: {host: 127.0.0.2}
        """)
    assert "agent alice's generated softphone endpoint" in find(errs, "trunks.alice").message


# -- the generated text -----------------------------------------------------------------------

def test_pjsip_sections_of_a_registered_trunk(tmp_path: Path) -> None:
    files = _render(tmp_path)
    pjsip = files["pjsip_callcenter.conf"]
    endpoint = _section(pjsip, "carrier", "endpoint")
    assert endpoint["context"] == "cc-trunk-carrier-in"
    assert endpoint["allow"] == "alaw,ulaw"
    assert endpoint["outbound_auth"] == "carrier-auth"
    assert (endpoint["from_user"], endpoint["from_domain"]) == ("callcenter", "sip.example.net")
    assert endpoint["send_pai"] == "yes"
    assert _section(pjsip, "carrier", "aor")["contact"] == "sip:127.0.0.2:5070"
    reg = _section(pjsip, "carrier-reg", "registration")
    assert reg["server_uri"] == "sip:127.0.0.2:5070"
    assert reg["client_uri"] == "sip:callcenter@sip.example.net:5070"
    assert _section(pjsip, "carrier-identify", "identify")["match"] == "127.0.0.2"
    assert f'#include "callcenter/{AUTH_FILE}"' in pjsip
    # The password only in the 0600 auth file.
    assert PASSWORDS["carrier"] not in pjsip
    auth = _section(files[AUTH_FILE], "carrier-auth", "auth")
    assert (auth["username"], auth["password"]) == ("callcenter", PASSWORDS["carrier"])


def test_an_ip_auth_trunk_has_no_auth_and_no_registration(tmp_path: Path) -> None:
    files = _render(tmp_path, """\
        trunks:
          carrier: {host: sip.example.net, transport: tcp}
        """, passwords={})
    pjsip = files["pjsip_callcenter.conf"]
    assert "outbound_auth" not in pjsip and "type=registration" not in pjsip
    assert _section(pjsip, "carrier", "aor")["contact"] == "sip:sip.example.net:5060;transport=tcp"
    assert _section(pjsip, "carrier", "endpoint")["transport"] == "transport-tcp"
    assert "carrier-auth" not in files[AUTH_FILE]


def test_dial_and_did_contexts(tmp_path: Path) -> None:
    ext = _render(tmp_path)["extensions_callcenter.conf"]
    out = _context(ext, "cc-trunk-carrier-out")
    assert "exten => _+X.,1,NoOp(callcenter trunk carrier to ${FILTER(+0-9,${EXTEN})})" in out
    assert ' same => n,GotoIf($["${FILTER(+0-9,${EXTEN})}" != "${EXTEN}"]?bad,1)' in out
    assert " same => n,Set(CALLERID(num)=+15550100000)" in out
    assert (' same => n,Dial(PJSIP/${EXTEN}@carrier,${IF($["${FILTER(0-9,${CC_RING_TIMEOUT})}"'
            ' = ""]?25:${FILTER(0-9,${CC_RING_TIMEOUT})})})') in out
    assert "exten => bad,1,NoOp(callcenter trunk carrier: not a number)\n same => n,Hangup(28)" \
        in out
    assert _context(ext, "cc-trunk-carrier-in").strip().splitlines()[-1] == \
        "exten => +15550109000,1,Goto(cc-entrypoint-main,s,1)"


def test_no_trunks_changes_nothing(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    files = render(loaded.config, loaded.where, agent_passwords=fake_passwords(loaded.config))
    assert "cc-trunk" not in files["extensions_callcenter.conf"]
    assert "trunk" not in files["pjsip_callcenter.conf"]


def test_a_missing_password_names_the_command_never_a_value(tmp_path: Path) -> None:
    with pytest.raises(MissingPasswordError,
                       match="no password for trunk 'carrier'.*callcenter trunks password "
                             "carrier"):
        _render(tmp_path, passwords={})
    with pytest.raises(MissingPasswordError) as info:
        _render(tmp_path, passwords={"carrier": "bad;password"})
    assert "bad;password" not in str(info.value)


@pytest.mark.parametrize("password", ["with blank", "semi;colon", 'quo"te', "back\\slash",
                                      "new\nline", "", "x" * 129])
def test_passwords_pjsip_could_misread_are_refused(password: str) -> None:
    assert not TRUNK_PASSWORD.fullmatch(password)


def test_hostile_description_and_directory_only_reach_comments(tmp_path: Path) -> None:
    hostile = tmp_path / "cfg${SHELL(id)}\n[evil]"
    hostile.mkdir()
    trunk = TRUNK.replace("        host: 127.0.0.2",
                          '        description: "x ;-- \\n[evil]\\ntype=endpoint ${SHELL(id)}"'
                          "\n        host: 127.0.0.2")
    assert trunk != TRUNK
    files = _render(hostile, trunk)
    for name, text in files.items():
        for line in text.splitlines():
            if "evil" in line or "SHELL" in line:
                assert line.startswith("; "), f"{name}: {line!r}"
                assert ";" not in line[2:] and "$" not in line


# -- secrets ---------------------------------------------------------------------------------

def test_trunk_passwords_are_stored_in_the_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    assert trunk_passwords(path, ["carrier"]) == {}
    set_trunk_password(path, "carrier", "p4ss")
    set_trunk_password(path, "other", "q")
    assert trunk_passwords(path, ["carrier", "missing"]) == {"carrier": "p4ss"}
    assert read_secrets(path)["trunk_passwords"] == {"carrier": "p4ss", "other": "q"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_auth_trunks_are_those_with_auth(tmp_path: Path) -> None:
    loaded = load(tmp_path, trunks="""\
        trunks:
          b: {host: 127.0.0.3, auth: {username: x}}
          a: {host: 127.0.0.2}
        """)
    assert auth_trunks(loaded.config) == ["b"]


# -- the carrier's pure parts -------------------------------------------------------------------

def test_the_number_plan() -> None:
    assert [c.name for c in NUMBER_PLAN] == ["answer", "busy", "no_answer", "fail", "machine",
                                              "hangup", "respondent"]
    assert classify("+15550100003").name == "answer"
    assert classify("+15550101999").name == "busy"
    assert classify("+15550104000").name == "machine"
    assert classify("+15550106420").name == "respondent"
    for number in ("+15550107000", "+1555010000", "15550100003", "+155501000031"):
        assert classify(number) is None, number
    assert [c.number(7) for c in NUMBER_PLAN][:2] == ["+15550100007", "+15550101007"]


def test_carrier_dialplan_gives_each_class_its_sip_answer() -> None:
    files = carrier_files("callcenter", "A" * 20)
    plan = files["extensions_callcenter.conf"]
    assert "exten => _+15550101XXX,1,NoOp(carrier call from" in plan
    for pattern, final in (("_+15550101XXX", "PJSIPHangup(486)"),
                           ("_+15550103XXX", "PJSIPHangup(503)")):
        block = plan.split(f"exten => {pattern},1,", 1)[1].split("\nexten", 1)[0]
        assert block.rstrip().endswith(final)
    assert "Playback(vm-nobodyavail&vm-intro)" in plan
    # The respondent presses its number's last three digits, one by one.
    block = plan.split("exten => _+15550106XXX,1,", 1)[1].split("\nexten", 1)[0]
    assert [line.split(",", 1)[1] for line in block.splitlines()
            if "SendDTMF" in line] == ["SendDTMF(${EXTEN:-3:1},,250)",
                                       "SendDTMF(${EXTEN:-2:1},,250)",
                                       "SendDTMF(${EXTEN:-1:1},,250)"]
    assert "password=" + "A" * 20 in files["pjsip_callcenter.conf"]


@pytest.mark.parametrize("account, password", [("Call;center", "A" * 20), ("cc", "short"),
                                               ("cc", "A" * 20 + ";x")])
def test_carrier_files_refuse_what_would_break_its_config(account: str, password: str) -> None:
    with pytest.raises(ValueError):
        carrier_files(account, password)


def test_the_printed_trunk_yaml_loads_as_a_trunk(tmp_path: Path) -> None:
    text = trunk_yaml(host="127.0.0.2", port=5062, account="callcenter",
                      dids={"+15550109000": "main"})
    loaded = load(tmp_path, trunks=text)
    trunk = loaded.config.trunks["carrier"]
    assert (trunk.host, trunk.port, trunk.registration, trunk.from_user) == (
        "127.0.0.2", 5062, True, "callcenter")
    assert trunk.auth is not None and trunk.auth.username == "callcenter"
    assert trunk.dids == {"+15550109000": "main"}
    assert all("password" not in line.split("#")[0] for line in text.splitlines())


def test_call_fields_refuse_a_non_number(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path)
    with pytest.raises(ValueError):
        carrier.call_fields("+1555,0109000", caller_id="+15551230001")
    with pytest.raises(ValueError):
        carrier.call_fields("+15550109000", caller_id="x&y")


def _section(text: str, name: str, kind: str) -> dict[str, str]:
    """``key -> value`` of section ``[name]`` with ``type=kind`` in a PJSIP config."""
    for block in re.split(r"\n(?=\[)", text):
        head, _, body = block.partition("\n")
        values = dict(line.split("=", 1) for line in body.splitlines()
                      if "=" in line and not line.startswith(";"))
        if head == f"[{name}]" and values.get("type") == kind:
            return values
    raise AssertionError(f"no [{name}] type={kind} in:\n{text}")


def _context(text: str, name: str) -> str:
    return text.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]


def test_config_model_has_the_trunks_section() -> None:
    assert "trunks" in CallCenterConfig.model_fields
