"""The home's secrets file: generated once, kept, 0600, never shown in errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from callcenter.asterisk.secrets import (
    AGENT_PASSWORDS,
    PASSWORD_PATTERN,
    SecretsError,
    agent_passwords,
    ensure_secrets,
    stored_agent_password,
)


def test_passwords_are_generated_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    ensure_secrets(path, {"ari_user": "callcenter", "ari_password": "p"})
    first = agent_passwords(path, ["alice", "bob"])
    assert all(PASSWORD_PATTERN.fullmatch(p) for p in first.values())
    assert first["alice"] != first["bob"]
    assert agent_passwords(path, ["bob", "carmen"])["bob"] == first["bob"]
    data = json.loads(path.read_text())
    assert data["ari_password"] == "p"  # other secrets untouched
    assert sorted(data[AGENT_PASSWORDS]) == ["alice", "bob", "carmen"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert stored_agent_password(path, "alice") == first["alice"]
    assert stored_agent_password(path, "zoe") is None


def test_ensure_secrets_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    agent_passwords(path, ["alice"])
    ensure_secrets(path, {"ami_secret": "new", AGENT_PASSWORDS: {}})
    assert stored_agent_password(path, "alice") is not None
    assert json.loads(path.read_text())["ami_secret"] == "new"


def test_a_loose_secrets_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    agent_passwords(path, ["alice"])
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_broken_secrets_file_is_named_not_shown(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"agent_passwords": {"alice": "hunter2hunter2hunter2"')
    with pytest.raises(SecretsError) as info:
        agent_passwords(path, ["alice"])
    assert str(path) in str(info.value) and "hunter2" not in str(info.value)
