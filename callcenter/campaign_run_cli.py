"""``callcenter campaigns run CAMPAIGN --config DIR``: dial a progressive, predictive or
agentless campaign.

::

    callcenter contacts import renewals contacts.csv --config config/example
    callcenter campaigns run renewals --config config/example

Runs :class:`ari_apps.dialer.CampaignDialer` (:class:`ari_apps.agentless.AgentlessDialer`
for an agentless campaign: its flow on every live answer, ``lines`` calls at once, the
answers stored per contact; no agent) against the home's Asterisk (its ARI
credentials, Stasis app ``cc-dialer``) and database until SIGINT, SIGTERM or SIGHUP:
then no new call is placed and the calls in progress end as they will. Agents log in
as for inbound calls (``*70``, ``callcenter agents login``); the queue router may run
at the same time (``callcenter run``): both reserve agents through the database, and an
agent is the dialer's only while available. Registered on the
``campaigns`` group of :mod:`callcenter.campaigns_cli`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

__all__ = ["campaigns_run"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@click.command("run")
@click.argument("campaign")
@click.option("--config", "config_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The config directory that defines CAMPAIGN.")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.option("--node", default="dialer", show_default=True,
              help="This dialer's name (its claims on contacts; closed again on restart).")
@click.option("--wrap-up", "wrap_up", type=click.IntRange(0, 3600), default=10,
              show_default=True, help="Seconds of wrap-up after each answered call.")
@click.pass_context
def campaigns_run(ctx: click.Context, campaign: str, config_dir: Path, url: str | None,
                  node: str, wrap_up: int) -> None:
    """Dial CAMPAIGN. Progressive: each available agent of the campaign gets the next
    due contact. Predictive: as many calls as the pacer predicts, a live answer going to
    the longest-idle agent (none within 2 s: the safe-harbor message). A live answer is
    bridged to the agent. Agentless: up to the campaign's lines at once, each live answer
    sent into its flow (or played its message), the answers stored per contact."""
    from callcenter.asterisk.instance import InstanceError
    from callcenter.cli import _load

    obj = ctx.obj
    config = _load(obj, config_dir).config
    if campaign not in config.campaigns:
        known = ", ".join(sorted(config.campaigns)) or "none defined"
        raise click.ClickException(f"unknown campaign '{campaign}' in {config_dir} "
                                   f"(known: {known})")
    mode = config.campaigns[campaign].mode
    if mode not in ("progressive", "predictive", "agentless"):
        raise click.ClickException(f"campaign '{campaign}' is {mode}: only progressive, "
                                   "predictive and agentless campaigns can be run")
    try:
        credentials = obj.instance.credentials
        ari_url = obj.instance.ari_url
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    asyncio.run(_run(config, campaign, ari_url, credentials, obj.db_url(url), node,
                     timedelta(seconds=wrap_up)))


async def _run(config: Any, campaign: str, ari_url: str, credentials: Any, db_url: str,
               node: str, wrap_up: timedelta) -> None:
    from ari_apps.agentless import AgentlessDialer
    from ari_apps.dialer import CampaignDialer
    from callcenter.asterisk.ari.client import ARIClient
    from callcenter.dialer.amd import DIALER_APP
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade

    await upgrade(db_url)
    engine = make_engine(db_url, sqlite_immediate=True)
    loop = asyncio.get_running_loop()
    try:
        async with ARIClient(ari_url, username=credentials.ari_user,
                             password=credentials.ari_password, app=DIALER_APP) as ari:
            dialer: CampaignDialer | AgentlessDialer
            if config.campaigns[campaign].mode == "agentless":
                dialer = AgentlessDialer(config, campaign, ari, make_sessionmaker(engine),
                                         node=node)
            else:
                dialer = CampaignDialer(config, campaign, ari, make_sessionmaker(engine),
                                        node=node, wrap_up=wrap_up)
            for sig in _STOP_SIGNALS:
                loop.add_signal_handler(sig, dialer.stop)
            reader = asyncio.create_task(ari.run_event_loop(dialer.on_event, on_connected=dialer.resync),
                                         name="dialer events")
            try:
                click.echo(f"Dialing campaign {campaign} (Stasis app {DIALER_APP}, "
                           f"node {node}); Ctrl-C stops")
                await dialer.run()
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await engine.dispose()
