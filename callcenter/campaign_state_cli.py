"""``callcenter campaigns start|pause|stop CAMPAIGN --config DIR``: a campaign's run state.

::

    callcenter campaigns pause renewals --config config/example --reason "system test"
    callcenter campaigns start renewals --config config/example
    callcenter campaigns stop renewals --config config/example

The state is stored in the database (:mod:`callcenter.storage.campaign_state`), the only
channel to every dialer of the campaign, on any machine; each reads it once per pass
(:mod:`callcenter.dialer.campaign_state` says what it allows). ``pause``: no new call
(nor preview) until ``start``; ``stop``: the same, and each ``campaigns run`` exits once
its calls in progress ended. Each change is stored with the OS user who ran the command
and when (``campaigns status`` shows it). Asking for the state the campaign is in
already changes nothing and exits 0. Registered on the ``campaigns`` group of
:mod:`callcenter.campaigns_cli`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import os
from pathlib import Path
from typing import Any

import click

__all__ = ["COMMANDS", "os_user"]

_HELP = {
    "start": "Run CAMPAIGN: its dialers place calls (again).",
    "pause": "Pause CAMPAIGN: no new call; calls in progress end as they will; its dialers "
             "wait for start.",
    "stop": "Stop CAMPAIGN: no new call; each `campaigns run` exits once its calls in "
            "progress ended.",
}


def os_user() -> str:
    """Who runs this command: the OS login name (the uid when it has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry nor LOGNAME/USER (a bare container)
        return f"uid:{os.getuid()}"


def _command(action: str) -> click.Command:
    @click.command(action, help=_HELP[action])
    @click.argument("campaign")
    @click.option("--config", "config_dir", required=True,
                  type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="The config directory that defines CAMPAIGN.")
    @click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
    @click.option("--reason", default=None, help="Why (kept with the change).")
    @click.pass_context
    def command(ctx: click.Context, campaign: str, config_dir: Path, url: str | None,
                reason: str | None) -> None:
        from callcenter.campaigns_cli import _campaigns, _known
        from callcenter.lists_cli import _with_session
        from callcenter.storage.campaign_state import CampaignStateRepository

        _known(_campaigns(ctx, config_dir), campaign, config_dir)
        if reason is not None and not (reason.strip() and reason.isprintable()
                                       and len(reason) <= 200):
            raise click.BadParameter("expected a line of text of 1 to 200 characters",
                                     param_hint="--reason")
        who = os_user()

        async def work(session: Any) -> Any:
            return await CampaignStateRepository(session).set(
                campaign, action, by=who, at=dt.datetime.now(dt.UTC), via="cli",
                reason=reason.strip() if reason else None)

        done = asyncio.run(_with_session(ctx.obj.db_url(url), work))
        stored = done.stored
        since = (f" (by {stored.changed_by} at {stored.changed_at.isoformat()})"
                 if stored.changed_at is not None else " (never changed)")
        if done.change.changed:
            click.echo(f"campaign {campaign}: {done.change.state.value} (was "
                       f"{done.change.previous.value}), by {stored.changed_by} at "
                       f"{stored.changed_at.isoformat() if stored.changed_at else '?'}")
        else:
            click.echo(f"campaign {campaign}: {done.change.state.value} already{since}")

    return command


#: ``start``, ``pause`` and ``stop``.
COMMANDS: tuple[click.Command, ...] = tuple(_command(a) for a in ("start", "pause", "stop"))
