"""``callcenter contacts`` and ``callcenter dnc``: campaign lists in and out of the database.

::

    callcenter contacts import renewals contacts.csv --config config/example
    callcenter contacts export renewals > renewals.csv
    callcenter dnc import dnc.csv

An import reads the whole file first (:mod:`callcenter.dialer.contacts`), reports every
record it skips as ``FILE:LINE: reason`` on stderr, then stores the good ones in one
transaction: an interrupted import stores nothing. It exits 1 when a record was skipped,
so a script notices. Registered on the main group by :mod:`callcenter.cli`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

__all__ = ["contacts", "dnc"]

_BATCH = 1000


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from None


def _report(path: Path, problems: Sequence[Any]) -> None:
    for problem in problems:
        click.echo(f"{path}:{problem.line}: {problem.reason}", err=True)


async def _with_session(url: str, work: Callable[[Any], Any]) -> Any:
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade

    await upgrade(url)
    # One transaction that waits for the write lock at BEGIN (SQLite): a dialer or the
    # router writing meanwhile makes it wait, never fail with "database is locked" (a
    # deferred transaction that read before another writer committed cannot write).
    engine = make_engine(url, sqlite_immediate=True)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _progress(total: int, label: str) -> Any:
    """A progress bar on a terminal; nothing when stderr is a file or a pipe."""
    return click.progressbar(length=total, label=label, file=sys.stderr,
                             show_pos=True) if sys.stderr.isatty() else None


@click.group()
def contacts() -> None:
    """Campaign contact lists: import from CSV, export to CSV."""


@contacts.command("import")
@click.argument("campaign")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The config directory that defines CAMPAIGN (its region and zone rules).")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.pass_context
def contacts_import(ctx: click.Context, campaign: str, csv_file: Path, config_dir: Path,
                    url: str | None) -> None:
    """Import CSV_FILE's contacts into CAMPAIGN.

    A number column (number, phone, phone_number, telephone or mobile) is required; an
    optional timezone column gives the contact's zone; every other column is kept as the
    contact's data. Bad records are reported by line and skipped; a number already in
    the campaign (or repeated in the file) is merged, not duplicated.
    """
    from callcenter.cli import _load
    from callcenter.dialer.contacts import parse_contacts
    from callcenter.storage.campaigns import CampaignRepository, NewContact

    obj = ctx.obj
    config = _load(obj, config_dir).config
    if campaign not in config.campaigns:
        known = ", ".join(sorted(config.campaigns)) or "none defined"
        raise click.ClickException(f"unknown campaign '{campaign}' in {config_dir} "
                                   f"(known: {known})")
    settings = config.campaigns[campaign]
    parsed = parse_contacts(_read(csv_file), region=settings.region)
    _report(csv_file, parsed.problems)
    rows = [NewContact(c.number, c.timezone, c.data) for c in parsed.contacts]
    unknown_zone = sum(1 for c in parsed.contacts if c.timezone is None)

    async def work(session: Any) -> tuple[int, int]:
        repo = CampaignRepository(session)
        inserted = merged = 0
        bar = _progress(len(rows), f"importing into {campaign}")
        try:
            for start in range(0, len(rows), _BATCH):
                done = await repo.import_contacts(campaign, rows[start:start + _BATCH])
                inserted += done.inserted
                merged += done.merged
                if bar is not None:
                    bar.update(len(rows[start:start + _BATCH]))
        finally:
            if bar is not None:
                bar.render_finish()
        return inserted, merged

    inserted, merged = asyncio.run(_with_session(obj.db_url(url), work))
    merged += len(parsed.merged)
    click.echo(f"{campaign}: imported {_plural(inserted, 'contact')}, merged {merged}, "
               f"{len(parsed.problems)} rejected")
    if unknown_zone:
        rule = (f"assumed {settings.assume_timezone}" if settings.assume_timezone
                else "never called until they have one (or the campaign sets assume_timezone)")
        click.echo(f"{_plural(unknown_zone, 'contact')} with no known time zone: {rule}",
                   err=True)
    if parsed.problems:
        sys.exit(1)


@contacts.command("export")
@click.argument("campaign")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout.")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.pass_context
def contacts_export(ctx: click.Context, campaign: str, output: Path | None,
                    url: str | None) -> None:
    """Write CAMPAIGN's contacts as CSV: number, timezone, calling state, then their data.

    Cells a spreadsheet would run as a formula (starting with = + - @) are written with a
    leading ' so they open as text.
    """
    from callcenter.dialer.lists import write_table
    from callcenter.storage.campaigns import CampaignRepository

    async def work(session: Any) -> str:
        found = await CampaignRepository(session).contacts(campaign)
        extra: dict[str, None] = {}
        for contact in found:
            extra.update(dict.fromkeys(contact.data or {}))
        fixed = ["number", "timezone", "state", "attempts", "next_attempt_at",
                 "last_outcome", "disposition"]
        data_columns = [k for k in extra if k not in fixed]
        rows = ([c.number, c.timezone, c.state, c.attempts,
                 c.next_attempt_at.isoformat() if c.next_attempt_at else None,
                 c.last_outcome, c.disposition,
                 *[(c.data or {}).get(k) for k in data_columns]] for c in found)
        return write_table(fixed + data_columns, rows)

    text = asyncio.run(_with_session(ctx.obj.db_url(url), work))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8", newline="")


@click.group()
def dnc() -> None:
    """The do-not-call list: numbers no campaign ever calls."""


@dnc.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--region", default="US", show_default=True,
              help="Country (ISO 3166) of numbers written without a country code.")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.pass_context
def dnc_import(ctx: click.Context, csv_file: Path, region: str, url: str | None) -> None:
    """Add CSV_FILE's numbers (a number column, optional reason) to the do-not-call list.

    Contacts with those numbers waiting in any campaign are closed as do_not_call.
    """
    from callcenter.dialer.contacts import parse_dnc
    from callcenter.phone_numbers import is_region
    from callcenter.storage.campaigns import CampaignRepository

    if not is_region(region.upper()):
        raise click.BadParameter(f"expected a country code such as US or GB, got {region!r}",
                                 param_hint="--region")
    parsed = parse_dnc(_read(csv_file), region=region.upper())
    _report(csv_file, parsed.problems)

    async def work(session: Any) -> int:
        return await CampaignRepository(session).add_dnc(
            parsed.numbers, source=f"import:{csv_file.name}")

    added = asyncio.run(_with_session(ctx.obj.db_url(url), work))
    click.echo(f"do-not-call: added {_plural(added, 'number')}, "
               f"{len(parsed.numbers) - added} already listed, {len(parsed.problems)} rejected")
    if parsed.problems:
        sys.exit(1)
