"""``callcenter run``, the README's demo command, end to end in a subprocess.

Installs into a fresh home on free ports, runs the example center, waits for it
to say it listens, checks Asterisk loaded the dialplan, then stops it with
SIGTERM: FastAGI and Asterisk must both be gone.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.testing.ports import free_port, free_udp_tcp_port
from tests.conftest import EXAMPLE, _example_copy

pytestmark = pytest.mark.integration


async def test_run_serves_the_example_and_stops_on_sigterm(tmp_path, asterisk_installation) -> None:
    home = tmp_path / "home"
    instance = AsteriskInstance(home)
    instance.setup(asterisk_installation, InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port()))
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
                if line.startswith("FastAGI listening"):
                    break
        assert instance.is_running()
        _, shown = await asyncio.to_thread(instance.cli, "dialplan show s@cc-menu-main")
        assert "background(" in shown.lower()
        proc.send_signal(signal.SIGTERM)
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
    assert not instance.is_running()
