"""``callcenter trunks password`` and ``generate`` with a trunk, in-process (CliRunner)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.asterisk.secrets import read_secrets
from callcenter.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
TRUNK = """\
trunks:
  carrier:
    host: 127.0.0.2
    auth: {username: callcenter}
    registration: true
    dids: {"+15550109000": main_line}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    shutil.copytree(EXAMPLE, directory)
    (directory / "trunks.yaml").write_text(TRUNK)
    return directory


def _cli(home: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), *args], input=stdin,
                              catch_exceptions=False)


def test_generate_without_the_password_says_how_to_store_it(tmp_path: Path,
                                                             config: Path) -> None:
    result = _cli(tmp_path / "home", "generate", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "no password for trunk 'carrier'" in result.output
    assert "callcenter trunks password carrier" in result.output
    assert "Traceback" not in result.output


def test_stored_password_goes_only_into_the_auth_file(tmp_path: Path, config: Path) -> None:
    home, out = tmp_path / "home", tmp_path / "out"
    password = "pr0vider!Given#1"
    stored = _cli(home, "trunks", "password", "carrier", "--config", str(config),
                  stdin=password + "\n")
    assert stored.exit_code == 0, stored.output
    assert password not in stored.output
    assert read_secrets(home / "secrets.json")["trunk_passwords"] == {"carrier": password}
    result = _cli(home, "generate", str(config), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"password={password}" in (out / "pjsip_callcenter_auth.conf").read_text()
    assert (out / "pjsip_callcenter_auth.conf").stat().st_mode & 0o777 == 0o600
    for name in ("pjsip_callcenter.conf", "extensions_callcenter.conf"):
        assert password not in (out / name).read_text()


@pytest.mark.parametrize("password", ["semi;colon", "with blank", ""])
def test_a_password_pjsip_could_misread_is_refused(tmp_path: Path, password: str) -> None:
    result = _cli(tmp_path / "home", "trunks", "password", "carrier", stdin=password + "\n")
    assert result.exit_code == 1
    assert "printable ASCII characters without blank" in result.output
    assert not (tmp_path / "home" / "secrets.json").exists()


def test_password_for_a_trunk_the_config_lacks(tmp_path: Path, config: Path) -> None:
    result = _cli(tmp_path / "home", "trunks", "password", "carier", "--config", str(config),
                  stdin="x\n")
    assert result.exit_code == 1
    assert "'carier' is no trunk with auth" in result.output
