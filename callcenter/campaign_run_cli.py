"""``callcenter campaigns run CAMPAIGN [CAMPAIGN ...] --config DIR``: dial progressive,
predictive and agentless campaigns.

::

    callcenter contacts import renewals contacts.csv --config config/example
    callcenter campaigns run renewals --config config/example

Runs :class:`ari_apps.dialer.CampaignDialer` (:class:`ari_apps.agentless.AgentlessDialer`
for an agentless campaign: its flow on every live answer, ``lines`` calls at once, the
answers stored per contact; no agent) against the home's Asterisk (its ARI
credentials, Stasis app ``cc-dialer``) and database until SIGINT, SIGTERM or SIGHUP, or
until each campaign is stopped (``callcenter campaigns stop``, from any machine): then no
new call is placed, the calls in progress end as they will, and the command returns.
While the campaign is paused the dialer keeps running and places no call. A stopped
campaign is not run: ``campaigns start`` it first (exit 1 otherwise). Agents log in
as for inbound calls (``*70``, ``callcenter agents login``); the queue router may run
at the same time (``callcenter run``): both reserve agents through the database, and an
agent is the dialer's only while available.

One ``campaigns run`` per Asterisk: Asterisk gives a Stasis app's events to one events
connection, the latest, so a second process on the same Asterisk would silently take
the first one's calls from it (measured: the first dialer then waits for ever on calls it
no longer hears about). ``run`` therefore refuses to start while ``cc-dialer`` is
connected (:func:`dialer_connected`), and dials several campaigns in one process, their
dialers sharing the connection (each takes the events of its own channels). Several
machines: one ``run`` per Asterisk, each its own ``--node``. Registered on the
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
@click.argument("campaigns", nargs=-1, required=True, metavar="CAMPAIGN [CAMPAIGN ...]")
@click.option("--config", "config_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The config directory that defines the campaigns.")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.option("--node", default=None,
              help="This dialer's name (its claims on contacts, closed again when a dialer "
                   "of that name starts; default: this machine's name). One name, one "
                   "process at a time.")
@click.option("--wrap-up", "wrap_up", type=click.IntRange(0, 3600), default=10,
              show_default=True, help="Seconds of wrap-up after each answered call.")
@click.pass_context
def campaigns_run(ctx: click.Context, campaigns: tuple[str, ...], config_dir: Path,
                  url: str | None, node: str | None, wrap_up: int) -> None:
    """Dial each CAMPAIGN (one process per Asterisk dials them all). Progressive: each
    available agent of the campaign gets the next due contact. Predictive: as many calls
    as the pacer predicts, a live answer going to the longest-idle agent (none within
    2 s: the safe-harbor message). A live answer is bridged to the agent. Agentless: up
    to the campaign's lines at once, each live answer sent into its flow (or played its
    message), the answers stored per contact."""
    from callcenter.asterisk.instance import InstanceError
    from callcenter.cli import _load
    from callcenter.lists_cli import _with_session

    obj = ctx.obj
    config = _load(obj, config_dir).config
    names = tuple(dict.fromkeys(campaigns))  # a name given twice is dialled once
    for campaign in names:
        if campaign not in config.campaigns:
            known = ", ".join(sorted(config.campaigns)) or "none defined"
            raise click.ClickException(f"unknown campaign '{campaign}' in {config_dir} "
                                       f"(known: {known})")
        mode = config.campaigns[campaign].mode
        if mode not in ("progressive", "predictive", "agentless"):
            raise click.ClickException(f"campaign '{campaign}' is {mode}: only progressive, "
                                       "predictive and agentless campaigns can be run")
    from callcenter.service import default_node

    node = node or default_node()
    db_url = obj.db_url(url)

    async def refusals(session: Any) -> list[tuple[str | None, bool]]:
        return [await _refusal(session, campaign, node) for campaign in names]

    # One migration check and one transaction for every campaign named.
    for campaign, (refused, paused) in zip(
            names, asyncio.run(_with_session(db_url, refusals)), strict=True):
        if refused is not None:
            raise click.ClickException(refused)
        if paused:
            click.echo(f"Campaign {campaign} is paused: no call until `callcenter campaigns "
                       f"start {campaign}`")
    try:
        credentials = obj.instance.credentials
        ari_url = obj.instance.ari_url
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    asyncio.run(_run(config, names, ari_url, credentials, db_url, node,
                     timedelta(seconds=wrap_up)))


async def _refusal(session: Any, campaign: str, node: str) -> tuple[str | None, bool]:
    """Why ``run`` must not start (a stopped campaign, naming who stopped it and when;
    this ``--node`` running the campaign elsewhere), and whether the campaign is paused
    (the dialer then waits for ``start``)."""
    import os
    import socket

    from callcenter.dialer.campaign_state import (
        claimer_of,
        node_in_use,
        permit,
        run_refusal,
    )
    from callcenter.dialer.state_watch import SEEN_WITHIN
    from callcenter.storage.campaign_state import CampaignStateRepository
    from callcenter.storage.models import utcnow

    repository = CampaignStateRepository(session)
    stored = await repository.state(campaign)
    refused = run_refusal(stored.state, campaign)
    if refused is not None and stored.changed_at is not None:
        refused = (f"{refused} (stopped by {stored.changed_by} at "
                   f"{stored.changed_at.isoformat()})")
    if refused is None:
        now = utcnow()
        refused = node_in_use(await repository.dialers(campaign, now=now, within=SEEN_WITHIN),
                              claimer_of(node), campaign=campaign, host=socket.gethostname(),
                              pid=os.getpid(), alive=_alive, now=now)
    return refused, refused is None and not permit(stored.state, campaign).place_calls


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


async def dialer_connected(ari: Any, app: str) -> bool:
    """Whether a process is connected to this Asterisk as Stasis app *app* now (ARI lists
    an application only while its events connection is open)."""
    from callcenter.asterisk.ari.client import ARINotFound

    try:
        await ari.request("GET", f"/applications/{app}")
    except ARINotFound:
        return False
    return True


async def _run(config: Any, names: tuple[str, ...], ari_url: str, credentials: Any,
               db_url: str, node: str, wrap_up: timedelta) -> None:
    from ari_apps.agentless import AgentlessDialer
    from ari_apps.dialer import CampaignDialer
    from callcenter.asterisk.ari.client import ARIClient
    from callcenter.asterisk.ari.events import Event
    from callcenter.dialer.amd import DIALER_APP
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade

    await upgrade(db_url)
    engine = make_engine(db_url, sqlite_immediate=True)
    loop = asyncio.get_running_loop()
    try:
        async with ARIClient(ari_url, username=credentials.ari_user,
                             password=credentials.ari_password, app=DIALER_APP) as ari:
            if await dialer_connected(ari, DIALER_APP):
                raise click.ClickException(
                    f"another dialer is connected to this Asterisk (Stasis app {DIALER_APP}); "
                    "Asterisk sends an app's events to one connection only, so run one "
                    "'campaigns run' per Asterisk, naming every campaign it dials "
                    "('campaigns run A B'), or stop the other one first")
            sessions = make_sessionmaker(engine)
            dialers: list[CampaignDialer | AgentlessDialer] = [
                AgentlessDialer(config, name, ari, sessions, node=node)
                if config.campaigns[name].mode == "agentless"
                else CampaignDialer(config, name, ari, sessions, node=node, wrap_up=wrap_up)
                for name in names]

            def stop_all() -> None:
                for dialer in dialers:
                    dialer.stop()

            async def on_event(event: Event) -> None:
                for dialer in dialers:  # each takes its own channels' events
                    await dialer.on_event(event)

            async def resync() -> None:
                for dialer in dialers:
                    await dialer.resync()

            async def dial(name: str, dialer: CampaignDialer | AgentlessDialer) -> None:
                await dialer.run()
                if dialer.watch.permit is not None and dialer.watch.permit.exit:
                    click.echo(f"{dialer.watch.permit.reason}: calls ended, {name} done")

            for sig in _STOP_SIGNALS:
                loop.add_signal_handler(sig, stop_all)
            reader = asyncio.create_task(ari.run_event_loop(on_event, on_connected=resync),
                                         name="dialer events")
            try:
                click.echo(f"Dialing campaign{'s' if len(names) > 1 else ''} "
                           f"{', '.join(names)} (Stasis app {DIALER_APP}, node {node}); "
                           "Ctrl-C stops")
                async with asyncio.TaskGroup() as group:
                    for name, dialer in zip(names, dialers, strict=True):
                        group.create_task(dial(name, dialer), name=f"dialer {name}")
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await engine.dispose()
