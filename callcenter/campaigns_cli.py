"""``callcenter campaigns``: dispositions, status and the compliance report (``run``, the
dialer, is :mod:`callcenter.campaign_run_cli`; ``start``, ``pause``, ``stop`` are
:mod:`callcenter.campaign_state_cli`).

::

    callcenter campaigns dispose 42 callback --callback-at 2026-12-02T15:00+00:00 --config DIR
    callcenter campaigns status renewals --config config/example
    callcenter campaigns report renewals --config config/example --format json
    callcenter campaigns answers survey --config config/example > answers.csv

``dispose`` records an agent's disposition of an ended attempt (validated against the
campaign's list; ``do_not_call`` also lists the number) and says what happens to the
contact next; one that names a queue, on a live call, hands the contact to that inbound
queue first (:mod:`callcenter.dialer.dispose`, over the home's ARI). ``status`` shows
the run state (who changed it, when), the dialers running the campaign now (their
heartbeats) and counts the contacts by state; ``report`` is the compliance report of
:mod:`callcenter.dialer.compliance`, and exits 1 when a hard rule was broken
(a call outside the window, a call to a DNC number, the abandon rate over its limit), so
a nightly job notices. ``answers`` writes an agentless campaign's answers as CSV, a row
per contact's call and a column per answer variable. Registered on the main group by :mod:`callcenter.cli`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from callcenter.lists_cli import _with_session

__all__ = ["campaigns"]

_CONFIG = click.option("--config", "config_dir", required=True,
                       type=click.Path(exists=True, file_okay=False, path_type=Path),
                       help="The config directory that defines the campaigns.")
_DB = click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                       default="table", show_default=True)


def _campaigns(ctx: click.Context, config_dir: Path) -> dict[str, Any]:
    from callcenter.cli import _load

    return dict(_load(ctx.obj, config_dir).config.campaigns)


def _known(config: dict[str, Any], campaign: str, config_dir: Path) -> Any:
    if campaign not in config:
        known = ", ".join(sorted(config)) or "none defined"
        raise click.ClickException(f"unknown campaign '{campaign}' in {config_dir} "
                                   f"(known: {known})")
    return config[campaign]


def _parse_when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}",
                                 param_hint="--callback-at") from None
    if when.tzinfo is None:
        raise click.BadParameter(f"{value!r} needs a UTC offset (e.g. +00:00)",
                                 param_hint="--callback-at")
    return when


def _emit(rows: list[tuple[str, str]], doc: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
    elif fmt == "csv":
        from callcenter.dialer.lists import write_table

        click.echo(write_table(["figure", "value"], rows), nl=False)
    else:
        width = max((len(k) for k, _ in rows), default=0)
        for key, value in rows:
            click.echo(f"{key:<{width}}  {value}")


@click.group()
def campaigns() -> None:
    """Outbound campaigns: run the dialer, dispositions, status, the compliance report."""


@campaigns.command("dispose")
@click.argument("attempt", type=click.IntRange(min=1))
@click.argument("disposition")
@click.option("--callback-at", default=None,
              help="When the contact asked to be called back (ISO 8601 with offset).")
@click.option("--note", default=None, help="The agent's note.")
@click.option("--agent", default=None, help="Who disposes (stored on the attempt).")
@_CONFIG
@_DB
@click.pass_context
def campaigns_dispose(ctx: click.Context, attempt: int, disposition: str,
                      callback_at: str | None, note: str | None, agent: str | None,
                      config_dir: Path, url: str | None) -> None:
    """Record DISPOSITION on ATTEMPT (an ended call) and move its contact on. A
    disposition naming a queue, given on the live call, hands the contact to that queue
    through the home's Asterisk (the agent wraps up)."""
    from callcenter.cli import _load
    from callcenter.storage.campaigns import DispositionError

    when = _parse_when(callback_at)
    config = _load(ctx.obj, config_dir).config
    try:
        handled = asyncio.run(_dispose(ctx.obj, ctx.obj.db_url(url), config, attempt,
                                       disposition, agent=agent, note=note, when=when))
    except DispositionError as exc:
        raise click.ClickException(str(exc)) from None
    done = handled.disposed
    nxt = f", due {done.next_attempt_at.isoformat()}" if done.next_attempt_at else ""
    to = f"; handed to queue {handled.queue}" if handled.queue else ""
    click.echo(f"attempt {done.attempt_id} ({done.campaign}): {done.disposition}{to}; "
               f"contact {done.contact_id} {done.state}{nxt} ({done.reason})")


class _HomeHandoff:
    """The hand-off port of the CLI: an ARI client of the home's Asterisk, opened only
    when a disposition hands a call over."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    async def hand_off(self, plan: Any) -> None:
        from ari_apps.campaign_handoff import AriHandoff
        from callcenter.asterisk.ari.client import ARIClient, ARIError
        from callcenter.asterisk.instance import InstanceError
        from callcenter.dialer.amd import DIALER_APP
        from callcenter.dialer.handoff import HandoffRefused

        try:
            credentials = self.obj.instance.credentials
            ari_url = self.obj.instance.ari_url
        except InstanceError as exc:
            raise HandoffRefused(503, "attempt", f"cannot reach the PBX: {exc}") from None
        try:
            async with ARIClient(ari_url, username=credentials.ari_user,
                                 password=credentials.ari_password, app=DIALER_APP) as ari:
                await AriHandoff(ari).hand_off(plan)
        except (ARIError, OSError) as exc:
            raise HandoffRefused(503, "attempt", f"cannot reach the PBX: {exc}") from None


async def _dispose(obj: Any, url: str, config: Any, attempt: int, disposition: str, *,
                   agent: str | None, note: str | None, when: dt.datetime | None) -> Any:
    from callcenter.dialer.dispose import dispose_or_hand_off
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade

    await upgrade(url)
    engine = make_engine(url, sqlite_immediate=True)  # as _with_session: wait, never fail
    port = _HomeHandoff(obj)
    try:
        return await dispose_or_hand_off(
            make_sessionmaker(engine), config, attempt, disposition, port=lambda: port,
            agent=agent, note=note, callback_at=when, clock=lambda: dt.datetime.now(dt.UTC))
    finally:
        await engine.dispose()


@campaigns.command("status")
@click.argument("campaign")
@_CONFIG
@_DB
@_FORMAT
@click.pass_context
def campaigns_status(ctx: click.Context, campaign: str, config_dir: Path, url: str | None,
                     fmt: str) -> None:
    """CAMPAIGN's run state (who changed it, when), the dialers running it, its contacts
    by calling state, those due now, and attempts made."""
    from callcenter.dialer.state_watch import SEEN_WITHIN
    from callcenter.storage.campaign_state import CampaignStateRepository
    from callcenter.storage.campaigns import CampaignRepository

    _known(_campaigns(ctx, config_dir), campaign, config_dir)
    now = dt.datetime.now(dt.UTC)

    async def work(session: Any) -> tuple[Any, list[Any], dict[str, int]]:
        states = CampaignStateRepository(session)
        return (await states.state(campaign),
                await states.dialers(campaign, now=now, within=SEEN_WITHIN),
                await CampaignRepository(session).status(campaign, now))

    stored, dialers, counts = asyncio.run(_with_session(ctx.obj.db_url(url), work))
    changed = (f"by {stored.changed_by} at {stored.changed_at.isoformat()}"
               if stored.changed_at is not None else "never (running by default)")
    running = "; ".join(f"{d.node} on {d.host} (pid {d.pid}, seen "
                        f"{max(0, round((now - d.seen_at).total_seconds()))} s ago)"
                        for d in dialers) or "none"
    _emit([("campaign", campaign), ("state", stored.state), ("state_changed", changed),
           ("dialers", running), *((k, str(v)) for k, v in counts.items())],
          {"campaign": campaign, "state": stored.state,
           "state_changed_by": stored.changed_by,
           "state_changed_at": stored.changed_at.isoformat() if stored.changed_at else None,
           "dialers": [{"node": d.node, "host": d.host, "pid": d.pid,
                        "started_at": d.started_at.isoformat(),
                        "seen_at": d.seen_at.isoformat()} for d in dialers],
           **counts}, fmt)


@campaigns.command("report")
@click.argument("campaign")
@_CONFIG
@_DB
@_FORMAT
@click.pass_context
def campaigns_report(ctx: click.Context, campaign: str, config_dir: Path, url: str | None,
                     fmt: str) -> None:
    """CAMPAIGN's compliance report; exits 1 when a rule was broken."""
    from callcenter.dialer.compliance import compliance_report
    from callcenter.storage.campaigns import CampaignRepository

    settings = _known(_campaigns(ctx, config_dir), campaign, config_dir)

    async def work(session: Any) -> Any:
        repository = CampaignRepository(session)
        return (*await repository.compliance_inputs(campaign),
                await repository.dnc_blocked(campaign))

    contacts, attempts, blocked = asyncio.run(_with_session(ctx.obj.db_url(url), work))
    report = compliance_report(campaign, settings, contacts, attempts,
                               dt.datetime.now(dt.UTC), dnc_blocked=blocked)
    _emit(report.rows(), report.as_json(), fmt)
    if not report.compliant:
        sys.exit(1)


@campaigns.command("answers")
@click.argument("campaign")
@_CONFIG
@_DB
@click.pass_context
def campaigns_answers(ctx: click.Context, campaign: str, config_dir: Path,
                      url: str | None) -> None:
    """CAMPAIGN's answers as CSV: contact, number, attempt, complete (yes/no), then one
    column per answer variable (the campaign's ``answers``, else all its flow collects)."""
    import csv

    from callcenter.cli import _load
    from callcenter.dialer.agentless import answer_table, answer_variables
    from callcenter.storage.answers import AnswerRepository

    config = _load(ctx.obj, config_dir).config
    settings = _known(dict(config.campaigns), campaign, config_dir)
    if settings.mode != "agentless":
        raise click.ClickException(f"campaign '{campaign}' is {settings.mode}: only "
                                   "agentless campaigns collect answers")

    async def work(session: Any) -> Any:
        return await AnswerRepository(session).for_campaign(campaign)

    rows = asyncio.run(_with_session(ctx.obj.db_url(url), work))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerows(answer_table(answer_variables(config, settings), rows))


def _add_run() -> None:
    from callcenter.campaign_run_cli import campaigns_run
    from callcenter.campaign_state_cli import COMMANDS

    campaigns.add_command(campaigns_run)
    for command in COMMANDS:
        campaigns.add_command(command)


_add_run()
