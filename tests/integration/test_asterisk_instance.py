"""The provisioned Asterisk: loopback only, generated secrets, CLI, apply/rollback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat

import pytest

from callcenter.apply import ApplyError, apply_files
from callcenter.asterisk.ami import AMIAuthenticationError, AMIClient
from callcenter.procnet import BoundSocket, bound_sockets
from tests.conftest import PBX
from tests.passwords import instance_render

pytestmark = pytest.mark.integration


def _listening_sockets(pid: int) -> list[BoundSocket]:
    """Every socket the process listens on (TCP) or binds (UDP), from /proc (a minimal
    Debian has no ``ss``)."""
    return [s for s in bound_sockets(pid) if s.listening]


async def test_every_listener_is_on_loopback(pbx: PBX) -> None:
    """What accepts peers (TCP listeners, unconnected UDP sockets on our fixed ports) is
    bound to 127.0.0.1, read from /proc: a minimal Debian has no ``ss``."""
    pid = pbx.instance.pid
    assert pid is not None
    s = pbx.instance.settings
    sockets = await asyncio.to_thread(_listening_sockets, pid)
    addresses = [f"{b.proto} {b}" for b in sockets]
    ours = {("udp", s.sip_port), ("tcp", s.sip_port), ("tcp", s.http_port), ("tcp", s.ami_port)}
    assert ours <= {(b.proto, b.port) for b in sockets}, addresses
    # RTP is bound per call; everything that accepts connections is loopback.
    listeners = [str(b) for b in sockets if b.proto == "tcp"]
    assert listeners and all(a.startswith("127.0.0.1:") for a in listeners), listeners
    # Every fixed port (SIP, ARI, AMI) is bound to loopback only, UDP included.
    fixed = [str(b) for b in sockets if b.port in (s.sip_port, s.http_port, s.ami_port)]
    assert fixed and all(a.startswith("127.0.0.1:") for a in fixed), fixed


async def test_secrets_are_generated_private_and_not_logged(pbx: PBX) -> None:
    secrets_file = pbx.instance.home / "secrets.json"
    mode = stat.S_IMODE(os.stat(secrets_file).st_mode)
    assert mode == 0o600
    creds = json.loads(secrets_file.read_text())
    assert len(creds["ari_password"]) >= 24 and len(creds["ami_secret"]) >= 24
    assert creds["ari_password"] != creds["ami_secret"]
    for conf in ("ari.conf", "manager.conf"):
        assert stat.S_IMODE(os.stat(pbx.instance.etc / conf).st_mode) == 0o600
    for log in pbx.instance.log_dir.iterdir():
        text = log.read_text(errors="replace")
        assert creds["ari_password"] not in text and creds["ami_secret"] not in text


async def test_cli_reports_version_and_modules(pbx: PBX) -> None:
    rc, out = await asyncio.to_thread(pbx.instance.cli, "core show version")
    assert rc == 0 and re.search(r"Asterisk 22\.\d+", out), out
    _, modules = await asyncio.to_thread(pbx.instance.cli, "module show like res_pjsip.so")
    assert "res_pjsip.so" in modules and "Running" in modules


async def test_ami_login_with_generated_credentials(pbx: PBX, ami: AMIClient) -> None:
    """The generated secret opens AMI (the session client logged in with it and runs a
    command) and nothing else does."""
    uptime = await ami.command("core show uptime seconds")
    assert re.search(r"^System uptime: \d+$", uptime, re.MULTILINE), uptime
    creds = pbx.instance.credentials
    # (Asterisk holds each failed login for a second: one is enough.)
    with pytest.raises(AMIAuthenticationError):
        async with AMIClient("127.0.0.1", pbx.instance.settings.ami_port,
                             username=creds.ami_user, secret=creds.ami_secret[:-1]):
            pass


async def test_apply_confirms_generation_and_keeps_previous(pbx: PBX) -> None:
    files = instance_render(pbx.instance, pbx.loaded)
    result = await asyncio.to_thread(apply_files, pbx.instance, files)
    assert result.reloaded
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show generation@cc-meta")
    assert result.generation in shown
    assert (pbx.instance.generated_dir.with_name("callcenter.prev")
            / "extensions_callcenter.conf").exists()


async def test_apply_rolls_back_when_asterisk_rejects_the_dialplan(pbx: PBX) -> None:
    good = instance_render(pbx.instance, pbx.loaded)
    before = await asyncio.to_thread(apply_files, pbx.instance, good)
    broken = dict(good)
    # An unterminated context header makes Asterisk drop the file.
    broken["extensions_callcenter.conf"] = "[cc-broken\n" + good["extensions_callcenter.conf"]
    with pytest.raises(ApplyError, match="previous generation was restored"):
        await asyncio.to_thread(apply_files, pbx.instance, broken)
    _, shown = await asyncio.to_thread(pbx.instance.cli, "dialplan show generation@cc-meta")
    assert before.generation in shown, shown
    _, menus = await asyncio.to_thread(pbx.instance.cli, "dialplan show s@cc-menu-main")
    assert "background(" in menus.lower(), menus


async def test_cli_status_and_cli_commands(pbx: PBX) -> None:
    from click.testing import CliRunner

    from callcenter.cli import main

    home = ["--home", str(pbx.instance.home)]
    runner = CliRunner()
    status = await asyncio.to_thread(runner.invoke, main, [*home, "asterisk", "status"])
    assert status.exit_code == 0, status.output
    assert status.output.startswith("running, pid") and "System uptime" in status.output
    version = await asyncio.to_thread(runner.invoke, main,
                                      [*home, "asterisk", "cli", "core show version"])
    assert version.exit_code == 0 and "Asterisk 22." in version.output


async def test_cli_status_of_a_stopped_instance(tmp_path, asterisk_installation) -> None:
    from click.testing import CliRunner

    from callcenter.asterisk.instance import AsteriskInstance
    from callcenter.cli import main

    AsteriskInstance(tmp_path).setup(asterisk_installation)
    result = await asyncio.to_thread(CliRunner().invoke, main,
                                     ["--home", str(tmp_path), "asterisk", "status"])
    assert result.exit_code == 3 and result.output.startswith("stopped"), result.output


async def test_start_refuses_ports_held_by_another_process(tmp_path, asterisk_installation) -> None:
    """Another PBX on the same host holding our SIP port: a clear error, no silent start."""
    import socket

    from callcenter.asterisk.instance import (
        AsteriskInstance,
        InstanceError,
        InstanceSettings,
    )
    from callcenter.testing.ports import free_port, free_udp_tcp_port

    sip = free_udp_tcp_port()
    instance = AsteriskInstance(tmp_path)
    instance.setup(asterisk_installation, InstanceSettings(
        sip_port=sip, http_port=free_port(), ami_port=free_port()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", sip))
        with pytest.raises(InstanceError, match=rf"SIP 127\.0\.0\.1:{sip}/udp"):
            await asyncio.to_thread(instance.start)
    assert instance.pid is None
