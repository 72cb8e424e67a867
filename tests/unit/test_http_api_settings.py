"""``settings.http_api`` (where ``callcenter serve``'s HTTP API listens) and its token
in the home's secrets file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from callcenter.asterisk.secrets import (
    API_TOKEN,
    PASSWORD_PATTERN,
    agent_passwords,
    api_token,
    ensure_secrets,
    stored_api_token,
)
from callcenter.config.errors import ConfigErrors
from callcenter.config.loader import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"


def test_the_api_listens_on_loopback_port_8090_by_default() -> None:
    from callcenter.config.models import Settings

    assert (Settings().http_api.host, Settings().http_api.port) == ("127.0.0.1", 8090)
    assert load_config(EXAMPLE).config.settings.http_api.port == 8090


@pytest.mark.parametrize(("written", "message"), [
    ("http_api: {port: 70000}",
     "settings.http_api.port: input should be less than or equal to 65535 (got 70000)"),
    ("http_api: {host: '127.0.0.1; rm -rf /'}",
     "settings.http_api.host: invalid host '127.0.0.1; rm -rf /'"),
    ("http_api: {hots: 0.0.0.0}", "settings.http_api: unknown key 'hots'"),
    ("http_api: {port: 'eighty'}", "settings.http_api.port: "),
])
def test_a_bad_http_api_setting_is_a_located_error(tmp_path: Path, written: str,
                                                   message: str) -> None:
    config = tmp_path / "example"
    shutil.copytree(EXAMPLE, config)
    settings = config / "settings.yaml"
    lines = settings.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  http_api:"))
    lines[at:at + 3] = [f"  {written}"]
    settings.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigErrors) as raised:
        load_config(config)
    errors = [str(e) for e in raised.value.errors]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{settings}:{at + 1}:"), errors
    assert message in errors[0], errors


def test_the_token_is_generated_once_kept_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    assert stored_api_token(path) is None  # a client never creates one
    assert not path.exists()
    ensure_secrets(path, {"ari_user": "callcenter", "ari_password": "p"})
    passwords = agent_passwords(path, ["alice"])
    token = api_token(path)
    assert PASSWORD_PATTERN.fullmatch(token) and len(token) >= 43  # 256 bits
    assert api_token(path) == token == stored_api_token(path)
    data = json.loads(path.read_text())
    assert data["ari_password"] == "p" and agent_passwords(path, ["alice"]) == passwords
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_token_edited_into_something_unsafe_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ensure_secrets(path, {API_TOKEN: "short"})
    assert stored_api_token(path) is None
    token = api_token(path)
    assert token != "short" and stored_api_token(path) == token
