"""``callcenter phone``: what it says for each event, and its clear refusals (no
baresip started). The phone against the real Asterisk is in
tests/integration/test_cli_phone.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.cli import main
from callcenter.testing.demo_phone import PhoneLines, printable

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    invoke.home = home  # type: ignore[attr-defined]
    return invoke


def _store_password(home: Path, agent: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "secrets.json"
    path.write_text(json.dumps({"agent_passwords": {agent: "x" * 24}}))
    os.chmod(path, 0o600)


def test_lines_for_a_registration_and_a_call() -> None:
    lines = PhoneLines("carmen", "127.0.0.1:5060")
    said = [lines.line(e) for e in [
        {"type": "REGISTERING"},
        {"type": "REGISTER_OK", "param": "200 OK"},
        {"type": "REGISTER_OK", "param": "200 OK"},  # the re-registration: not news
        {"type": "CALL_REMOTE_SDP", "direction": "incoming"},
        {"type": "CALL_ESTABLISHED", "direction": "incoming", "peeruri": "sip:1555@127.0.0.1",
         "peerdisplayname": "Ada"},
        {"type": "CALL_CLOSED", "direction": "incoming", "param": "Connection reset by peer"},
    ]]
    assert [s for s in said if s] == [
        "registered: carmen at 127.0.0.1:5060 (200 OK)",
        'incoming call from "Ada" <sip:1555@127.0.0.1>: answered',
        "call ended (Connection reset by peer)",
    ]


def test_a_failed_registration_is_said_once_per_status_and_again_when_it_recovers() -> None:
    lines = PhoneLines("carmen", "127.0.0.1:5060")
    said = [lines.line({"type": t, "param": p}) for t, p in [
        ("REGISTER_FAIL", "401 Unauthorized"), ("REGISTER_FAIL", "401 Unauthorized"),
        ("REGISTER_FAIL", "Connection timed out"), ("REGISTER_OK", "200 OK"),
        ("REGISTER_FAIL", "401 Unauthorized")]]
    assert said == ["registration failed: 401 Unauthorized", None,
                    "registration failed: Connection timed out",
                    "registered: carmen at 127.0.0.1:5060 (200 OK)",
                    "registration failed: 401 Unauthorized"]


def test_a_callers_name_cannot_write_to_the_terminal() -> None:
    """The display name is the caller's From header: escape sequences are shown, not run."""
    line = PhoneLines("carmen", "h").line({
        "type": "CALL_ESTABLISHED", "direction": "incoming",
        "peeruri": "sip:1@h", "peerdisplayname": "\x1b]0;pwned\x07\x1b[2J\u202eX"})
    assert line is not None
    assert not any(not c.isprintable() for c in line), repr(line)
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202eX" in line
    assert printable("a" * 500).endswith("...") and len(printable("a" * 500)) < 130


def test_phone_refuses_a_name_that_is_no_agent_name(cli) -> None:
    result = cli("phone", "Carmen;x")
    assert result.exit_code == 2
    assert "an agent name is a lowercase letter" in result.output


def test_phone_for_an_agent_with_a_device(cli, tmp_path: Path) -> None:
    config = tmp_path / "dev"
    config.mkdir()
    (config / "main.yaml").write_text(
        "entry_points: {e: {numbers: ['100'], flow: f}}\n"
        "flows: {f: {steps: [{transfer: {extension: '1001'}}]}}\n"
        "agents: {dora: {extension: '1001', device: PJSIP/1001}}\n")
    result = cli("phone", "dora", "--config", str(config))
    assert result.exit_code == 1
    assert "agent dora rings the device PJSIP/1001" in result.output
    assert "Traceback" not in result.output


def test_phone_for_an_agent_not_applied_yet(cli) -> None:
    result = cli("phone", "alice", "--config", str(EXAMPLE))
    assert result.exit_code == 1
    assert "agent alice has no softphone account" in result.output
    assert f"'callcenter apply {EXAMPLE}'" in result.output
    # The phone does not create the password: only apply (or credentials) does.
    assert not (cli.home / "secrets.json").exists()


def test_phone_when_asterisk_is_not_running(cli) -> None:
    _store_password(cli.home, "carmen")
    result = cli("phone", "carmen")
    assert result.exit_code == 1
    assert f"Asterisk is not running in {cli.home.resolve()}" in result.output
    assert "x" * 24 not in result.output


async def test_a_login_or_logout_the_service_cannot_answer_is_reported_not_raised(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``phone --login``: when the service stopped first (one Ctrl-C for both), the
    phone's logout says so and the phone still stops cleanly."""
    from callcenter.cli import _ApiLogin
    from callcenter.web.client import ServiceNotRunning

    class Gone:
        def act(self, agent: str, action: str) -> dict[str, str]:
            raise ServiceNotRunning("the callcenter API at http://127.0.0.1:8090 does not "
                                    "answer (connection refused)")

    await _ApiLogin(Gone()).logout("alice")
    err = capsys.readouterr().err
    assert "phone alice: logout failed: the callcenter API" in err
