"""Join our scratch PBX to the test carrier over the real trunk, as an admin would.

The steps ``callcenter carrier run`` prints, then ``callcenter apply``: the config
directory (holding the carrier's ``trunks:`` entry) is loaded, the carrier's password
goes into our home's ``secrets.json``, the generated files are applied, and the call
returns once our registration to the carrier is up (its AMI ``Registry`` event, or
``pjsip show registrations`` already saying so): no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import agi_scripts
from callcenter.apply import apply_files
from callcenter.asterisk import variables as V
from callcenter.asterisk.ami.client import AMIClient, AMISubscription
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.asterisk.secrets import (
    AGENT_PASSWORDS,
    agent_passwords,
    ensure_secrets,
    read_secrets,
    set_trunk_password,
    trunk_passwords,
)
from callcenter.config.loader import load_config
from callcenter.testing.carrier import Carrier
from dialplan.generator import render, softphone_agents
from dialplan.trunks import auth_trunks
from tests.conftest import PBX
from tests.integration.scratch_pbx import ScratchPBX, scratch_pbx

__all__ = ["DialerNode", "connect_trunk", "dialer_node", "joined_node", "running_carrier",
           "wait_registered"]

#: The caller ID our trunk sends (what the carrier's dialplan logs).
TRUNK_CALLER_ID = "+15550100000"


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


@dataclass
class DialerNode:
    """Our own Asterisk with the session's example config plus a trunk to a test
    carrier and the test's files (campaigns, users), the carrier's AMI and the carrier
    (its home: the answering machine's recordings)."""

    pbx: PBX
    carrier_ami: AMIClient
    carrier: Carrier | None = None


@contextlib.asynccontextmanager
async def dialer_node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
                      installation: AsteriskInstallation, name: str,
                      files: Mapping[str, str]) -> AsyncIterator[DialerNode]:
    """A carrier and a node joined to it by trunk ``carrier`` (caller ID
    :data:`TRUNK_CALLER_ID`), the session's agent passwords, ``files`` written into the
    config directory, its own SQLite database; homes named after ``name``."""
    async with running_carrier(tmp_path_factory, installation) as (carrier, carrier_ami), \
            joined_node(pbx, tmp_path_factory, installation, name, files,
                        carrier) as ours:
        yield DialerNode(ours, carrier_ami, carrier)


@contextlib.asynccontextmanager
async def running_carrier(tmp_path_factory: pytest.TempPathFactory,
                          installation: AsteriskInstallation,
                          ) -> AsyncIterator[tuple[Carrier, AMIClient]]:
    """The test carrier, started, and a connection to its AMI (what it was dialled)."""
    carrier = Carrier(tmp_path_factory.mktemp("carrier-home"))
    carrier.setup(installation)
    await asyncio.to_thread(carrier.start)
    try:
        creds = carrier.instance.credentials
        host, port = carrier.instance.ami_address
        async with AMIClient(host, port, username=creds.ami_user,
                             secret=creds.ami_secret) as carrier_ami:
            yield carrier, carrier_ami
    finally:
        await asyncio.to_thread(carrier.stop)


@contextlib.asynccontextmanager
async def joined_node(pbx: PBX, tmp_path_factory: pytest.TempPathFactory,
                      installation: AsteriskInstallation, name: str,
                      files: Mapping[str, str], carrier: Carrier) -> AsyncIterator[PBX]:
    """A node of our own joined to ``carrier`` (see :func:`dialer_node`); several nodes
    may join one carrier (each registers with the carrier's one account, the last one
    holds the registration: calls out authenticate on their own)."""
    from callcenter.storage import default_sqlite_url
    from callcenter.storage.migrate import upgrade

    home = tmp_path_factory.mktemp(f"{name}-home")
    async with scratch_pbx(home, installation) as ours:
        config_dir = tmp_path_factory.mktemp(f"{name}-config") / "example"
        shutil.copytree(pbx.config_dir, config_dir)
        (config_dir / "trunks.yaml").write_text(carrier.trunk_yaml(
            caller_id=TRUNK_CALLER_ID, dids={"+15550109000": "main_line"}))
        for file_name, text in files.items():
            (config_dir / file_name).write_text(text)
        loaded = load_config(config_dir, sounds=installation.sound_languages(),
                             agi_scripts=agi_scripts.handlers().keys())
        secrets_file = ours.instance.secrets_file
        ensure_secrets(secrets_file, {
            AGENT_PASSWORDS: read_secrets(pbx.instance.secrets_file)[AGENT_PASSWORDS]})
        set_trunk_password(secrets_file, "carrier", carrier.password)
        rendered = render(loaded.config, loaded.where,
                          agent_passwords=agent_passwords(
                              secrets_file, softphone_agents(loaded.config)),
                          trunk_passwords=trunk_passwords(
                              secrets_file, auth_trunks(loaded.config)))
        db_url = default_sqlite_url(home)
        await upgrade(db_url)
        with ours.ami.subscribe("Registry") as registry:
            await asyncio.to_thread(apply_files, ours.instance, rendered)
            await wait_registered(ours, registry)
        # The IVR's schedules read the session's fake clock (business hours).
        await asyncio.to_thread(
            ours.instance.cli,
            f"dialplan set global {V.CLOCK_OVERRIDE} {int(pbx.clock.now.timestamp())}")
        yield PBX(ours.instance, loaded, config_dir, pbx.clock, pbx.agi, db_url,
                  _ports=pbx._ports)
