"""Agents' generated softphone accounts against the real Asterisk, with a real softphone.

baresip registers as the example's agents with digest auth and the password
``callcenter`` generated into the instance's ``secrets.json``; Asterisk's own
view (``pjsip show contacts``, ARI ``/endpoints``, AMI ``ContactStatus`` and
``DialEnd``) says whether it worked. The operator key reaching carmen's
registered phone is in ``test_ivr_calls``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from callcenter.asterisk.ami.client import AMIClient
from callcenter.asterisk.ari import ARIClient
from callcenter.testing.observe import next_event, registered_contacts
from tests.conftest import PBX


@pytest.fixture
async def ari(pbx: PBX) -> AsyncIterator[ARIClient]:
    creds = pbx.instance.credentials
    async with ARIClient(pbx.instance.ari_url, username=creds.ari_user,
                         password=creds.ari_password, app="cc-test-phones") as client:
        yield client


async def test_softphone_registers_with_digest_auth(pbx: PBX, ami: AMIClient,
                                                    ari: ARIClient) -> None:
    with ami.subscribe("ContactStatus") as contacts:
        async with pbx.agent_phone("alice") as phone:
            assert phone.registration["type"] == "REGISTER_OK"
            assert phone.registration["param"] == "200 OK"
            # Asterisk qualifies the new contact at once (qualify_frequency): reachable.
            await next_event(contacts, {"AOR": "alice", "ContactStatus": "Reachable"})
            registered = await registered_contacts(pbx.instance, "alice")
            assert len(registered) == 1, registered
            assert f"@127.0.0.1:{phone.sip_port}" in registered[0], registered
            endpoint = await ari.request("GET", "/endpoints/PJSIP/alice")
            assert endpoint["state"] == "online", endpoint
        # baresip unregisters when it stops: the contact is gone, not left to expire.
        await next_event(contacts, {"AOR": "alice", "ContactStatus": "Removed"})
    assert await registered_contacts(pbx.instance, "alice") == []
    endpoint = await ari.request("GET", "/endpoints/PJSIP/alice")
    assert endpoint["state"] == "offline", endpoint


async def test_wrong_password_is_rejected(pbx: PBX) -> None:
    wrong = secrets.token_urlsafe(18)
    async with pbx.agent_phone("bob", password=wrong, require_registration=False) as phone:
        assert phone.registration["type"] == "REGISTER_FAIL"
        assert phone.registration["param"].split()[0] in ("401", "403"), phone.registration
        assert await registered_contacts(pbx.instance, "bob") == []


async def test_another_agents_password_is_rejected(pbx: PBX) -> None:
    """Each agent has their own password: alice's does not register bob."""
    async with pbx.agent_phone("bob", password=pbx.agent_password("alice"),
                               require_registration=False) as phone:
        assert phone.registration["type"] == "REGISTER_FAIL"
        assert await registered_contacts(pbx.instance, "bob") == []


async def test_one_contact_per_agent(pbx: PBX, ami: AMIClient) -> None:
    """max_contacts=1: a second phone of the same agent replaces the first
    (remove_existing), so calls never ring two places or a stale one."""
    with ami.subscribe("ContactStatus") as contacts:
        async with pbx.agent_phone("bob") as first:
            await next_event(contacts, {"AOR": "bob", "ContactStatus": "Reachable"})
            async with pbx.agent_phone("bob") as second:
                await next_event(contacts, {"AOR": "bob", "ContactStatus": "Reachable"})
                registered = await registered_contacts(pbx.instance, "bob")
                assert len(registered) == 1, registered
                assert f"@127.0.0.1:{second.sip_port}" in registered[0], registered
                assert f":{first.sip_port}" not in registered[0]
        await next_event(contacts, {"AOR": "bob", "ContactStatus": "Removed"})
    assert await registered_contacts(pbx.instance, "bob") == []


async def test_call_to_the_agents_extension_reaches_the_registered_phone(
        clean_pbx: PBX, ami: AMIClient) -> None:
    """The {extension: ...} destination's context: 1001 rings alice's softphone, which
    answers; the caller's number reaches the phone."""
    caller = "15557771001"
    with ami.subscribe("DialEnd") as dials:
        async with clean_pbx.agent_phone("alice") as phone:
            await ami.action("Originate", Channel="Local/1001@cc-extensions",
                             Application="Wait", Data="1", CallerID=f"<{caller}>",
                             Async="true")
            call = await phone.call()
            answered = await next_event(dials, {"DialStatus": "ANSWER"})
    assert answered["DestChannel"].startswith("PJSIP/alice-"), answered
    assert call.flow() == ["CALL_ESTABLISHED", "CALL_CLOSED"], call.stderr
    assert call.peer_uri.startswith(f"sip:{caller}@"), call.peer_uri


async def test_unregistered_agent_is_not_reached(clean_pbx: PBX, ami: AMIClient) -> None:
    """Nobody registered as bob: Dial finds no contact (no channel, no ringing) and
    the call goes on to cc-failure instead of hanging in the dialplan."""
    with ami.subscribe("Newexten", "DialBegin") as events:
        await ami.action("Originate", Channel="Local/1002@cc-extensions",
                         Application="Wait", Data="1", CallerID="<15557771002>", Async="true")
        seen: list[dict[str, str]] = []
        async with asyncio.timeout(15):
            async for event in events:
                if event.get("Channel", "").startswith("Local/1002@cc-extensions"):
                    seen.append(dict(event))
                    if event.get("Context") == "cc-failure":
                        break
    assert not [e for e in seen if e["Event"] == "DialBegin"], seen
    apps = [(e["Context"], e.get("Application")) for e in seen if e["Event"] == "Newexten"
            and e["Channel"].endswith(";2")]  # the dialplan side of the Local channel
    assert apps[:4] == [("cc-extensions", "NoOp"), ("cc-extensions", "Dial"),
                        ("cc-extensions", "Goto"), ("cc-failure", "Log")], apps


async def test_passwords_stay_in_the_secret_files(pbx: PBX) -> None:
    """After registrations (right and wrong), no agent's password is in Asterisk's logs
    or in a generated file other than the 0600 auth file."""
    passwords = [pbx.agent_password(agent) for agent in ("alice", "bob", "carmen")]
    generated = pbx.instance.generated_dir
    auth = generated / "pjsip_callcenter_auth.conf"
    assert auth.stat().st_mode & 0o777 == 0o600
    assert all(f"password={p}\n" in auth.read_text() for p in passwords)
    assert pbx.instance.secrets_file.stat().st_mode & 0o777 == 0o600
    others = [p for p in generated.iterdir() if p != auth]
    others += list(pbx.instance.log_dir.iterdir())
    leaks = [str(path) for path in others if path.is_file()
             and any(p in path.read_text(errors="replace") for p in passwords)]
    assert leaks == []
