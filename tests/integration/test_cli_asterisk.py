"""``callcenter asterisk cli|start`` against the session's real Asterisk: the exit
code of ``cli`` tells a script whether Asterisk knew the command; ``start`` on a
port that Asterisk holds names it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.cli import main
from callcenter.testing.ports import free_port
from tests.conftest import PBX

pytestmark = pytest.mark.integration


def _asterisk_cli(pbx: PBX, command: str):
    return CliRunner().invoke(main, ["--home", str(pbx.instance.home), "asterisk", "cli",
                                     command], catch_exceptions=False)


async def test_unknown_command_exits_non_zero(pbx: PBX) -> None:
    result = _asterisk_cli(pbx, "no such thing")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("No such command 'no such thing'"), result.stdout


async def test_known_command_exits_zero(pbx: PBX) -> None:
    result = _asterisk_cli(pbx, "core show uptime seconds")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("System uptime: "), result.stdout


async def test_start_names_the_pbx_holding_the_sip_port(pbx: PBX, tmp_path,
                                                        asterisk_installation) -> None:
    """A second instance on the session PBX's SIP port: the error names that Asterisk."""
    second = AsteriskInstance(tmp_path / "home")
    second.setup(asterisk_installation, InstanceSettings(
        sip_port=pbx.sip_port, http_port=free_port(), ami_port=free_port(),
        rtp_start=33000, rtp_end=33009))
    result = CliRunner().invoke(main, ["--home", str(second.home), "asterisk", "start"],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    held = f"(held by pid {pbx.instance.pid} asterisk)"
    assert f"  SIP 127.0.0.1:{pbx.sip_port}/udp {held}; choose another: " \
        "callcenter asterisk install --sip-port N" in result.stderr.splitlines(), result.stderr
    assert f"  SIP 127.0.0.1:{pbx.sip_port}/tcp {held}" in result.stderr
    assert second.pid is None and "Traceback" not in result.output
