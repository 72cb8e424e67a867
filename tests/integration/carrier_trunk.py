"""Join our scratch PBX to the test carrier over the real trunk, as an admin would.

The steps ``callcenter carrier run`` prints, then ``callcenter apply``: the config
directory (holding the carrier's ``trunks:`` entry) is loaded, the carrier's password
goes into our home's ``secrets.json``, the generated files are applied, and the call
returns once our registration to the carrier is up (its AMI ``Registry`` event, or
``pjsip show registrations`` already saying so): no sleeps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcenter.apply import apply_files
from callcenter.asterisk.ami.client import AMISubscription
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.asterisk.secrets import set_trunk_password, trunk_passwords
from callcenter.config.loader import load_config
from callcenter.testing.carrier import Carrier
from dialplan.generator import render
from dialplan.trunks import auth_trunks
from tests.integration.scratch_pbx import ScratchPBX

__all__ = ["connect_trunk", "wait_registered"]


async def connect_trunk(ours: ScratchPBX, carrier: Carrier, config_dir: Path,
                        installation: AsteriskInstallation, *, trunk: str = "carrier",
                        ) -> None:
    """Apply ``config_dir`` (with trunk ``trunk`` to ``carrier``) to ``ours``; return
    once the trunk is registered."""
    loaded = load_config(config_dir, sounds=installation.sound_languages())
    set_trunk_password(ours.instance.secrets_file, trunk, carrier.password)
    files = render(loaded.config, loaded.where, agent_passwords={},
                   trunk_passwords=trunk_passwords(ours.instance.secrets_file,
                                                   auth_trunks(loaded.config)))
    with ours.ami.subscribe("Registry") as registry:
        await asyncio.to_thread(apply_files, ours.instance, files)
        await wait_registered(ours, registry)


async def wait_registered(ours: ScratchPBX, registry: AMISubscription) -> None:
    """Our registration to the carrier: its Registry event, or already done."""
    async with asyncio.timeout(30):
        while True:
            _, out = await asyncio.to_thread(ours.instance.cli, "pjsip show registrations")
            if "Registered" in out:
                return
            event = await registry.get()
            if event.get("Status") == "Registered":
                return
