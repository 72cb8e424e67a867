"""``callcenter run``, the README's demo command, end to end in a subprocess.

Installs into a fresh home on free ports, runs the example center, waits for it
to say it listens, checks Asterisk loaded the dialplan and the instance's RTP
range, then stops it with SIGTERM (a service manager) or SIGHUP (its terminal
closed): FastAGI, the HTTP API and Asterisk must all be gone.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import pytest

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
from callcenter.web.endpoint import read_endpoint
from tests.conftest import EXAMPLE, _example_copy

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
async def test_run_serves_the_example_and_stops_on_signal(
        tmp_path, asterisk_installation, stop_signal: signal.Signals) -> None:
    home = tmp_path / "home"
    instance = AsteriskInstance(home)
    rtp, _ = free_udp_range(20, low=32000, high=34000)
    instance.setup(asterisk_installation, InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
        rtp_start=rtp, rtp_end=rtp + 19))
    config = _example_copy(tmp_path / "example", free_port())
    assert EXAMPLE.exists()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from callcenter.cli import main; main()",
        "--home", str(home), "run", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output: list[str] = []
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
                assert line, "callcenter run exited early:\n" + "".join(output)
                output.append(line)
                if line.startswith("HTTP API listening"):
                    break
        assert any(line.startswith("FastAGI listening") for line in output)
        assert read_endpoint(home) is not None  # callcenter agents finds the API
        assert instance.is_running()
        _, shown = await asyncio.to_thread(instance.cli, "dialplan show s@cc-menu-main")
        assert "background(" in shown.lower()
        _, rtp_settings = await asyncio.to_thread(instance.cli, "rtp show settings")
        assert re.search(rf"Port start:\s+{rtp}\n", rtp_settings), rtp_settings
        assert re.search(rf"Port end:\s+{rtp + 19}\n", rtp_settings), rtp_settings
        proc.send_signal(stop_signal)
        async with asyncio.timeout(30):
            rest, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.to_thread(instance.stop)
    text = "".join(output) + rest.decode()
    assert proc.returncode == 0, text
    assert "Asterisk stopped" in text
    assert "agents credentials NAME prints what to enter (NAME: alice, bob, carmen)" in text
    passwords = json.loads((home / "secrets.json").read_text())["agent_passwords"]
    leaked = [name for name, password in passwords.items() if password in text]
    assert leaked == [], "run printed agents' passwords"
    assert not instance.is_running()
    assert read_endpoint(home) is None
