"""``callcenter asterisk cli`` against the session's real Asterisk: its exit code
tells a script whether Asterisk knew the command."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from callcenter.cli import main
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
