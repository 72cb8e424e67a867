"""Agents' phones: generated softphone accounts and existing devices."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from callcenter.config.models import Agent, CallCenterConfig
from dialplan.generator import AUTH_FILE, MissingPasswordError, render, softphone_agents
from tests.passwords import fake_passwords
from tests.unit.test_checks import errors, find


def _config(agents: dict[str, dict[str, object]]) -> CallCenterConfig:
    return CallCenterConfig.model_validate({
        "entry_points": {"e": {"numbers": ["100"], "flow": "f"}},
        "flows": {"f": {"steps": [{"transfer": {"extension": "1001"}}]}},
        "agents": agents,
    })


def _sections(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``(name, type) -> options`` of a PJSIP config text."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for block in re.split(r"^(?=\[)", text, flags=re.MULTILINE):
        m = re.match(r"\[([^\]]+)\]\n", block)
        if not m:
            continue
        options = dict(line.split("=", 1) for line in block.splitlines()[1:]
                       if "=" in line and not line.startswith(";"))
        out[(m.group(1), options["type"])] = options
    return out


MIXED = _config({
    "alice": {"name": "Alice Smith", "extension": "1001"},
    "dora": {"extension": "1004", "device": "PJSIP/1004@office"},
})


def test_softphone_endpoint_is_nat_friendly_with_one_contact() -> None:
    files = render(MIXED, agent_passwords={"alice": "a" * 24})
    pjsip = _sections(files["pjsip_callcenter.conf"])
    endpoint = pjsip[("alice", "endpoint")]
    assert endpoint["auth"] == "alice-auth" and endpoint["aors"] == "alice"
    for option in ("rewrite_contact", "rtp_symmetric", "force_rport"):
        assert endpoint[option] == "yes", option
    assert endpoint["direct_media"] == "no"
    assert endpoint["callerid"] == '"Alice Smith" <1001>'
    aor = pjsip[("alice", "aor")]
    assert aor["max_contacts"] == "1" and aor["remove_existing"] == "yes"
    assert int(aor["qualify_frequency"]) > 0
    auth = _sections(files[AUTH_FILE])[("alice-auth", "auth")]
    assert auth == {"type": "auth", "auth_type": "userpass", "username": "alice",
                    "password": "a" * 24}
    assert f'#include "callcenter/{AUTH_FILE}"' in files["pjsip_callcenter.conf"]


def test_password_only_in_the_auth_file() -> None:
    files = render(MIXED, agent_passwords={"alice": "s3cret-" + "x" * 20})
    holding = [name for name, text in files.items() if "s3cret-" in text]
    assert holding == [AUTH_FILE]


def test_device_agent_rings_its_device_and_gets_no_endpoint() -> None:
    assert softphone_agents(MIXED) == ["alice"]
    files = render(MIXED, agent_passwords={"alice": "a" * 24})
    assert "dora" not in files["pjsip_callcenter.conf"] + files[AUTH_FILE]
    ext = files["extensions_callcenter.conf"]
    assert "exten => 1004,1,NoOp(agent dora)\n same => n,Dial(PJSIP/1004@office,30)" in ext
    assert " same => n,Dial(PJSIP/alice,30)" in ext
    assert MIXED.agents["dora"].dial_string("dora") == "PJSIP/1004@office"
    assert MIXED.agents["alice"].dial_string("alice") == "PJSIP/alice"


def test_no_agents_no_softphone_section() -> None:
    files = render(_config({"dora": {"extension": "1001", "device": "PJSIP/1001"}}))
    assert "#include" not in files["pjsip_callcenter.conf"]
    assert "type=auth" not in files[AUTH_FILE]


@pytest.mark.parametrize("passwords", [None, {}, {"bob": "b" * 24}])
def test_a_missing_password_fails_loudly(passwords: dict[str, str] | None) -> None:
    with pytest.raises(MissingPasswordError, match="no softphone password for agent 'alice'"):
        render(MIXED, agent_passwords=passwords)


@pytest.mark.parametrize("bad", ["short", "has space in it here", "semi;colon-and-more-text",
                                 "x" * 129, "line\nbreak-and-more-text"])
def test_an_unusable_password_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(MissingPasswordError) as info:
        render(MIXED, agent_passwords={"alice": bad})
    assert bad not in str(info.value)


def test_display_name_cannot_break_the_callerid() -> None:
    config = _config({"alice": {"name": 'Al"ice <9> ;x\n[evil]', "extension": "1001"}})
    text = render(config, agent_passwords=fake_passwords(config))["pjsip_callcenter.conf"]
    assert "callerid=\"Alice 9 x evil\" <1001>\n" in text
    assert "[evil]" not in text


def test_display_name_keeps_accented_letters() -> None:
    config = _config({"jose": {"name": "José Pérez", "extension": "1001"}})
    text = render(config, agent_passwords=fake_passwords(config))["pjsip_callcenter.conf"]
    assert 'callerid="José Pérez" <1001>\n' in text


@pytest.mark.parametrize("device", ["PJSIP/1001,30,tT", "PJSIP/${SHELL(id)}", "PJSIP/a&PJSIP/b",
                                    "PJSIP/x;y", "1001", "PJSIP/", "PJSIP/a b"])
def test_device_outside_the_safe_alphabet_is_a_located_error(tmp_path: Path,
                                                             device: str) -> None:
    errs = errors(tmp_path, queues=f"""\
        skills: [sales]
        queues:
          sales: {{skills: [sales]}}
        agents:
          alice: {{extension: "1001", skills: {{sales: 5}}, device: {json.dumps(device)}}}
        voicemail:
          general: {{mailbox: "8000", name: General}}
        """)
    error = find(errs, "agents.alice.device")
    assert "a dial string: a channel technology" in error.message
    assert error.line == 5


def test_agent_model_defaults_to_a_softphone() -> None:
    assert Agent(extension="1001").softphone
    assert not Agent(extension="1001", device="PJSIP/1001").softphone
