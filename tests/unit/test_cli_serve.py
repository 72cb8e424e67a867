"""``callcenter serve`` and ``run`` refuse to start, with the reason, before binding
anything: no Asterisk instance in the home, or a port of theirs taken."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.cli import main
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
from tests.conftest import _example_copy


def _cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)
    monkeypatch.delenv("CALLCENTER_DB", raising=False)
    return tmp_path / "home"


def _instance(home: Path, tmp_path: Path) -> AsteriskInstance:
    """An instance whose Asterisk never runs (the checks come first)."""
    instance = AsteriskInstance(home)
    rtp_start, rtp_end = free_udp_range(10, low=31000, high=32700)
    instance.setup(AsteriskInstallation("22.0.0", tmp_path / "no-tree"), InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
        rtp_start=rtp_start, rtp_end=rtp_end))
    return instance


def test_serve_needs_an_asterisk_instance(home: Path, tmp_path: Path) -> None:
    config = _example_copy(tmp_path / "example", free_port())
    result = _cli(home, "serve", str(config))
    assert result.exit_code == 1, result.output
    assert result.stderr == (f"Error: no Asterisk instance in {home}: 'callcenter run {config}' "
                             "installs, starts and serves it (or point --home / "
                             "CALLCENTER_HOME at an existing one)\n")


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_taken_api_port_is_named_with_its_setting_before_anything_starts(
        home: Path, tmp_path: Path, command: str) -> None:
    instance = _instance(home, tmp_path)
    api = free_port()
    config = _example_copy(tmp_path / "example", free_port(), http_api_port=api)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", api))
        holder.listen()
        result = _cli(home, command, str(config))
    assert result.exit_code == 1, result.output
    me = f"held by pid {os.getpid()} {Path('/proc/self/comm').read_text().strip()}"
    assert result.stderr.splitlines() == [
        "Error: ports in use by another process (nothing was started):",
        f"  HTTP API 127.0.0.1:{api}/tcp ({me}); choose another: settings.http_api.port "
        f"({config / 'settings.yaml'}:10:11)",
    ]
    assert not (home / "api.json").exists()
    assert not (instance.run_dir / "asterisk.pid").exists()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+asyncpg://cc:s3cret-pw@127.0.0.1:{port}/cc",
     "postgresql+asyncpg://cc:***@127.0.0.1:{port}/cc"),
    ("sqlite+aiosqlite:////nonexistent-dir/sub/cc.sqlite3",
     "sqlite+aiosqlite:////nonexistent-dir/sub/cc.sqlite3"),
    ("nosuchdb://x", "nosuchdb://x"),
])
def test_a_database_that_cannot_be_opened_is_a_clear_error_without_its_password(
        home: Path, tmp_path: Path, url: str, shown: str) -> None:
    _instance(home, tmp_path)
    port = free_port()  # nobody listens there
    config = _example_copy(tmp_path / "example", free_port())
    result = _cli(home, "serve", str(config), "--db", url.format(port=port))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1].startswith(
        f"Error: cannot open the database {shown.format(port=port)}: "), result.stderr
    assert "s3cret-pw" not in result.output and "Traceback" not in result.output
    assert not (home / "api.json").exists()
