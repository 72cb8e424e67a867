"""``callcenter`` command line: the composition root.

Parses arguments, builds the objects (config, Asterisk instance, database,
FastAGI server) and runs them. No decisions live here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import click

from callcenter.asterisk.instance import (
    AsteriskInstance,
    InstanceError,
    InstanceSettings,
    default_home,
)
from callcenter.asterisk.provision import ProvisionError, find_installation, install
from callcenter.config.errors import ConfigErrors
from callcenter.portcheck import PortsBusyError, PortUse, check_free

__all__ = ["main"]

log = logging.getLogger("callcenter")


class _Obj:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.instance = AsteriskInstance(home)

    def sounds(self) -> dict[str, Path] | None:
        """Sound dirs by language: the instance's (with the site's own recordings),
        else the cached Asterisk tree's; None when no Asterisk is installed."""
        if self.instance.is_installed():
            dirs = self.instance.sound_dirs()
            if dirs:
                return dirs
        found = find_installation()
        return found.sound_languages() if found else None

    def db_url(self, url: str | None) -> str:
        from callcenter.storage import default_sqlite_url

        self.home.mkdir(parents=True, exist_ok=True)
        return url or default_sqlite_url(self.home)


pass_obj = click.make_pass_decorator(_Obj)


def _load(obj: _Obj, config_dir: Path):
    import agi_scripts
    from callcenter.config.loader import load_config

    try:
        return load_config(config_dir, sounds=obj.sounds(),
                           agi_scripts=agi_scripts.handlers().keys())
    except ConfigErrors as errors:
        for error in errors.errors:
            click.echo(str(error), err=True)
        n = len(errors.errors)
        click.echo(f"{n} problem{'s' if n != 1 else ''} in {config_dir}", err=True)
        sys.exit(1)


@click.group()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="CALLCENTER_HOME", help="State directory (Asterisk instance, database, "
              "secrets). Default: ./var")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="callcenter")
@click.pass_context
def main(ctx: click.Context, home: Path | None, verbose: int) -> None:
    """Turn a real Asterisk into a contact center."""
    _configure_logging(verbose)
    ctx.obj = _Obj((home or default_home()).resolve())


#: Loggers of this project; ``-v`` opens these only (alembic, aiohttp, asyncio stay at
#: WARNING unless ``-vv``, or every migration check prints alembic's INFO lines).
_OWN_LOGGERS = ("callcenter", "agi_scripts", "ari_apps", "dialplan")


def _configure_logging(verbose: int) -> None:
    """-v: our INFO lines; -vv: everyone's DEBUG; otherwise warnings only."""
    logging.basicConfig(level=logging.DEBUG if verbose >= 2 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    own = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    for name in _OWN_LOGGERS:
        logging.getLogger(name).setLevel(own)


# -- config ------------------------------------------------------------------

@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_obj
def validate(obj: _Obj, config_dir: Path) -> None:
    """Check a config directory; print every problem as file:line:col."""
    loaded = _load(obj, config_dir)
    c = loaded.config
    sounds = "checked" if obj.sounds() is not None else "not checked (no Asterisk installed)"
    counts = ", ".join(_plural(len(items), what) for items, what in (
        (c.entry_points, "entry point"), (c.flows, "flow"), (c.menus, "menu"),
        (c.queues, "queue"), (c.agents, "agent")))
    click.echo(f"{config_dir}: OK — {counts}; sounds {sounds}")


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@main.command()
def schema() -> None:
    """Print the JSON Schema of the config (for yaml-language-server)."""
    from callcenter.config.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@pass_obj
def generate(obj: _Obj, config_dir: Path, out: Path) -> None:
    """Write the generated Asterisk config files into OUT."""
    from callcenter.apply import write_private
    from dialplan.generator import SECRET_FILES

    loaded = _load(obj, config_dir)
    files = _render(obj, loaded)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        if name in SECRET_FILES:
            write_private(out / name, text)
            click.echo(f"wrote {out / name} (mode 0600: agents' softphone passwords)")
        else:
            (out / name).write_text(text)
            click.echo(f"wrote {out / name}")


def _render(obj: _Obj, loaded: Any) -> dict[str, str]:
    """The generated files, with the agents' softphone passwords from the home's
    secrets file (generated there the first time an agent appears) and the trunks'
    (stored there by 'callcenter trunks password')."""
    from callcenter.asterisk.secrets import (
        SecretsError,
        agent_passwords,
        trunk_passwords,
    )
    from dialplan.generator import MissingPasswordError, render, softphone_agents
    from dialplan.trunks import auth_trunks

    try:
        passwords = agent_passwords(obj.instance.secrets_file, softphone_agents(loaded.config))
        trunks = trunk_passwords(obj.instance.secrets_file, auth_trunks(loaded.config))
        return render(loaded.config, loaded.where, agent_passwords=passwords,
                      trunk_passwords=trunks)
    except (SecretsError, OSError, MissingPasswordError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_obj
def apply(obj: _Obj, config_dir: Path) -> None:
    """Validate, install into Asterisk, reload, confirm (or roll back)."""
    from callcenter.apply import ApplyError, apply_files

    loaded = _load(obj, config_dir)
    if not obj.instance.is_installed():
        # Writing into an empty home would create a half instance and report success.
        raise click.ClickException(
            f"no Asterisk instance in {obj.home}: create one with 'callcenter asterisk install' "
            "(or point --home / CALLCENTER_HOME at an existing one)")
    try:
        result = apply_files(obj.instance, _render(obj, loaded))
    except (ApplyError, InstanceError) as exc:
        raise click.ClickException(str(exc)) from None
    state = "loaded by Asterisk" if result.reloaded else "written (Asterisk not running)"
    click.echo(f"generation {result.generation} {state}: {result.directory}")


@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--entry", required=True, help="Entry point name.")
@click.option("--caller-id", default="", help="Caller's number.")
@click.option("--at", "at", default=None,
              help="ISO time with offset, e.g. 2026-11-25T10:00:00-05:00 (default: now).")
@click.option("--keys", default="", help="Keys pressed, e.g. 1,3,# ; t = wait for the timeout.")
@click.option("--lookup", "stubs", multiple=True, metavar="NAME=STATUS[:FIELD=VALUE,...]",
              help="Answer lookup NAME without its backend, e.g. account=found:VIP=1,LANGUAGE=es "
                   "(repeatable; other lookups use the database or HTTP).")
@click.option("--db", default=None, help="Database URL for lookups (default: the home's).")
@pass_obj
def simulate(obj: _Obj, config_dir: Path, entry: str, caller_id: str, at: str | None,
             keys: str, stubs: tuple[str, ...], db: str | None) -> None:
    """Walk a call through the flows without a PBX, the way the dialplan runs it."""
    from callcenter.flows.simulate import (
        SimulationError,
        parse_keys,
        parse_lookup_stub,
        stubbed_lookups,
    )
    from callcenter.flows.simulate import simulate as run_simulation

    loaded = _load(obj, config_dir)
    config = loaded.config
    try:
        tokens = parse_keys(keys)
        now = _parse_at(at)
        stubbed = dict(parse_lookup_stub(text) for text in stubs)
    except SimulationError as exc:
        raise click.UsageError(str(exc)) from None
    unknown = sorted(set(stubbed) - set(config.lookups))
    if unknown:
        raise click.UsageError(f"--lookup {unknown[0]!r}: no such lookup "
                                 f"(known: {', '.join(sorted(config.lookups)) or 'none'})")

    async def go() -> Any:
        if stubbed and set(stubbed) >= set(config.lookups):
            lookup = stubbed_lookups(stubbed)  # fully offline: no database needed
            return await run_simulation(config, entry, keys=tokens, caller_id=caller_id,
                                        now=now, lookup=lookup)
        from callcenter.service import ServiceResources

        async with ServiceResources(config, obj.db_url(db)) as resources:
            lookup = stubbed_lookups(stubbed, resources.lookup)
            return await run_simulation(config, entry, keys=tokens, caller_id=caller_id,
                                        now=now, lookup=lookup)

    try:
        sim = asyncio.run(go())
    except SimulationError as exc:
        raise click.UsageError(str(exc)) from None
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(config.settings.timezone))
    click.echo(f"at {now.isoformat(timespec='seconds')} ({local:%a %Y-%m-%d %H:%M} "
               f"{config.settings.timezone}){'' if at else ', now: --at to choose'}")
    for event in sim.events:
        click.echo(str(event))
    click.echo(f"=> {sim.outcome}")
    if sim.outcome is not None and sim.outcome.kind == "queue":
        fallback = config.queues[sim.outcome.target].fallback
        click.echo(f"   (while the queue router '{config.settings.queue_app}' is not running, "
                   f"this queue falls back to {_describe(fallback)})")
    unused = [k for k in sim.unused_keys if k != "t"]
    if unused:
        click.echo(f"warning: keys not used, the call ended before them: {','.join(unused)}",
                   err=True)


def _describe(dest: Any) -> str:
    """``voicemail general``: a destination as a user wrote it."""
    data = dest.model_dump(exclude_defaults=True) or dest.model_dump()
    return ", ".join(f"{k} {v}" for k, v in data.items())


def _parse_at(at: str | None) -> dt.datetime:
    from callcenter.flows.simulate import SimulationError

    if at is None:
        return dt.datetime.now(dt.UTC)
    try:
        when = dt.datetime.fromisoformat(at)
    except ValueError:
        raise SimulationError(f"--at {at!r} is not a time: expected ISO 8601 with a UTC "
                              "offset, e.g. 2026-11-25T10:00:00-05:00 or 2026-11-25T15:00:00Z"
                              ) from None
    if when.tzinfo is None:
        raise SimulationError(f"--at {at!r} needs a UTC offset, e.g. {at}-05:00 or {at}Z")
    return when


# -- statistics --------------------------------------------------------------

@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--from", "start", metavar="ISO", help="Start (ISO 8601; local time of "
              "settings.timezone unless an offset is given). Default: today's midnight.")
@click.option("--to", "end", metavar="ISO", help="End, excluded (default: now).")
@click.option("--last", metavar="DURATION", help="The last 15m, 1h, 7d... (not with --from/--to).")
@click.option("--by", type=click.Choice(["queue", "agent", "interval"]), default="queue",
              show_default=True, help="One row per queue, agent or interval.")
@click.option("--interval", "interval", default="15m", show_default=True, metavar="DURATION",
              help="Interval length for --by interval.")
@click.option("--queue", default=None, help="Only this queue's calls.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--db", default=None, envvar="CALLCENTER_DB", help="Database URL "
              "(default: the home's, as 'callcenter serve' uses).")
@pass_obj
def stats(obj: _Obj, config_dir: Path, start: str | None, end: str | None, last: str | None,
          by: str, interval: str, queue: str | None, fmt: str, db: str | None) -> None:
    """Service level, ASA, AHT, abandon rate and occupancy for a time range, by queue,
    agent or interval, and who is waiting now (definitions: README, "Statistics")."""
    from zoneinfo import ZoneInfo

    from callcenter.stats import StatsError, WindowError, collect, render, window
    from callcenter.stats.window import interval as interval_length
    from callcenter.stats.window import parse_duration
    from callcenter.storage import default_sqlite_url

    config = _load(obj, config_dir).config
    now = dt.datetime.now(dt.UTC)
    try:
        begin, finish = window(start=start, end=end, last=last, now=now,
                               tz=ZoneInfo(config.settings.timezone))
        length = (interval_length(interval, begin, finish) if by == "interval"
                  else parse_duration("--interval", interval))
    except WindowError as exc:
        raise click.BadParameter(exc.why, param_hint=f"{exc.option} {exc.value!r}") from None
    if queue is not None and queue not in config.queues:
        raise click.BadParameter(f"unknown queue {queue!r} (known: {', '.join(config.queues)})",
                                 param_hint="--queue")
    # Not obj.db_url(): reading statistics must not create the home.
    url = db or default_sqlite_url(obj.home)
    try:
        report = asyncio.run(collect(url, config, start=begin, end=finish, by=by, now=now,
                                     interval=length, queue=queue))
    except (StatsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    rules = {name: q.service_level for name, q in config.queues.items()
             if queue is None or name == queue}
    click.echo(render(report, fmt, rules), nl=False)


# -- database ----------------------------------------------------------------

@main.group()
def db() -> None:
    """Database: migrations and demo data."""


@db.command("upgrade")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@pass_obj
def db_upgrade(obj: _Obj, url: str | None) -> None:
    """Migrate the database to the newest schema."""
    from callcenter.storage.migrate import current_revision, upgrade

    url = obj.db_url(url)
    asyncio.run(upgrade(url))
    click.echo(f"database at revision {asyncio.run(current_revision(url))}")


@db.command("seed-demo")
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@pass_obj
def db_seed(obj: _Obj, url: str | None) -> None:
    """Insert the demo accounts used by config/example (idempotent)."""
    click.echo(f"inserted {asyncio.run(_seed(obj.db_url(url)))} demo accounts")


async def _seed(url: str) -> int:
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade
    from callcenter.storage.repositories import seed_demo_accounts

    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return len(await seed_demo_accounts(session))
    finally:
        await engine.dispose()


@db.command("import-accounts")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig", errors="replace"))
@click.option("--db", "url", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.option("--update", is_flag=True,
              help="Overwrite accounts that exist already (default: report them, change nothing).")
@pass_obj
def db_import(obj: _Obj, csv_file: Any, url: str | None, update: bool) -> None:
    """Import accounts from CSV (account_number,name,phone,language,vip).

    Bad rows are reported by line and skipped; good rows are kept.
    """
    report = asyncio.run(_import(obj.db_url(url), csv_file, update))
    for error in report.errors:
        click.echo(f"{csv_file.name}: {error}", err=True)
    if report.existing:
        n = len(report.existing)
        click.echo(f"{_plural(n, 'account')} already existed and {'was' if n == 1 else 'were'} "
                   "left unchanged; --update overwrites them", err=True)
    summary = f"imported {_plural(len(report.accepted), 'account')}"
    if update:
        summary += f", updated {len(report.updated)}"
    click.echo(f"{summary}, {len(report.errors)} rejected")
    if report.errors:
        sys.exit(1)


async def _import(url: str, rows: Any, update: bool) -> Any:
    from callcenter.storage import make_engine, make_sessionmaker
    from callcenter.storage.migrate import upgrade
    from callcenter.storage.repositories import import_csv

    await upgrade(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await import_csv(session, rows, update=update)
    finally:
        await engine.dispose()


# -- agents ------------------------------------------------------------------

@main.group()
def agents() -> None:
    """Agents: live state and actions (through the running service), softphones."""


@agents.command("credentials")
@click.argument("name")
@click.option("--config", "config_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Check NAME against this config, and create the account's password "
                   "if 'apply' has not yet (apply it to load the account into Asterisk).")
@pass_obj
def agents_credentials(obj: _Obj, name: str, config_dir: Path | None) -> None:
    """Print what agent NAME's softphone needs: SIP server, user name, password.

    The password is a secret: this command prints it (that is its purpose); nothing
    else does. Anyone who has it can take NAME's calls.
    """
    from callcenter.asterisk.secrets import (
        SecretsError,
        agent_passwords,
        stored_agent_password,
    )

    extension = ""
    secrets_file = obj.instance.secrets_file
    try:
        if config_dir is not None:
            config = _load(obj, config_dir).config
            agent = config.agents.get(name)
            if agent is None:
                known = ", ".join(sorted(config.agents)) or "none"
                raise click.ClickException(f"no agent {name!r} in {config_dir} (agents: {known})")
            if not agent.softphone:
                raise click.ClickException(
                    f"agent {name} rings the device {agent.device}: it has no softphone "
                    "account of callcenter's (remove 'device:' to get one)")
            extension = agent.extension
            password: str | None = agent_passwords(secrets_file, [name])[name]
        else:
            password = stored_agent_password(secrets_file, name)
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    if password is None:
        raise click.ClickException(
            f"no softphone account for agent {name!r} in {secrets_file}: 'callcenter apply "
            "CONFIG_DIR' (or 'run') creates one for every agent without a device")
    if obj.instance.is_installed():
        s = obj.instance.settings
        server = f"{s.bind}:{s.sip_port}"
    else:
        server = f"(no Asterisk instance in {obj.home} yet: its address, SIP port 5060)"
    for line in _softphone_setup(name, server, password, extension):
        click.echo(line)


# Live state and actions: through the running service's HTTP API (its URL in the home's
# api.json, its token in secrets.json), so the service's router hears of every change.

def _api(obj: _Obj) -> Any:
    from callcenter.web.client import ApiClient, ApiClientError

    try:
        return ApiClient.for_home(obj.home)
    except ApiClientError as exc:
        raise click.ClickException(str(exc)) from None


def _ask(obj: _Obj, request: Any) -> Any:
    """Run one API request; its refusal (409 illegal transition, 404...) is the message."""
    from callcenter.web.client import ApiClientError

    try:
        return request(_api(obj))
    except ApiClientError as exc:
        raise click.ClickException(str(exc)) from None


@agents.command("list")
@pass_obj
def agents_list(obj: _Obj) -> None:
    """Every agent's live state: name, state, since, pause reason, call."""
    for line in _agents_table(_ask(obj, lambda api: api.agents())):
        click.echo(line)


def _since(iso: str | None) -> str:
    if not iso:
        return "-"
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _agent_reason(agent: dict[str, Any]) -> str:
    parts = [agent.get("pause_reason") or ""]
    if agent.get("pending_pause"):
        parts.append(f"pause pending: {agent['pending_pause']}")
    if agent.get("phone_lost") and agent.get("pause_reason") != "unregistered":
        parts.append("phone lost")
    return ", ".join(p for p in parts if p) or "-"


def _agents_table(agents: list[dict[str, Any]]) -> list[str]:
    """``callcenter agents list``: one aligned row per agent (times in local time)."""
    rows = [("NAME", "STATE", "SINCE", "REASON", "CALL")] + [
        (str(a["name"]), str(a["status"]), _since(a.get("since")), _agent_reason(a),
         str(a.get("call") or "-"))
        for a in agents]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)),
                       row[4]]).rstrip()
            for row in rows]


def _agent_line(agent: dict[str, Any]) -> str:
    reason = _agent_reason(agent)
    return f"{agent['name']}: {agent['status']}" + ("" if reason == "-" else f" ({reason})")


def _agent_action(action: str, summary: str) -> Any:
    @pass_obj
    def command(obj: _Obj, name: str) -> None:
        click.echo(_agent_line(_ask(obj, lambda api: api.act(name, action))))

    command.__doc__ = summary
    return agents.command(action)(click.argument("name")(command))


agents_login = _agent_action("login", "Log agent NAME in: ready for calls.")
agents_logout = _agent_action(
    "logout", "Log agent NAME out (refused while a caller is tied to the agent).")
agents_unpause = _agent_action(
    "unpause", "Agent NAME is ready again (or drops a pause asked for during a call).")
agents_end_wrapup = _agent_action("end-wrapup", "End agent NAME's wrap-up now.")


@agents.command("pause")
@click.argument("name")
@click.argument("reason")
@pass_obj
def agents_pause(obj: _Obj, name: str, reason: str) -> None:
    """Pause agent NAME with REASON, one of the config's pause_reasons (taken after the
    call when the agent is on one)."""
    click.echo(_agent_line(_ask(obj, lambda api: api.act(name, "pause", reason=reason))))


def _softphone_setup(name: str, server: str, password: str, extension: str) -> list[str]:
    """A new agent's first hour: the fields every softphone asks for, in its words."""
    rings = f"calls to extension {extension}" if extension else "the calls routed to you"
    return [
        f"Softphone account of agent {name}:",
        f"  SIP server / domain / registrar:  {server}  (UDP or TCP)",
        f"  user name:                        {name}",
        f"  authentication user:              {name}",
        f"  password:                         {password}",
        f"Once the phone shows 'registered', {rings} ring it.",
        "Keep the password to yourself: whoever has it takes your calls.",
    ]


# -- Asterisk ----------------------------------------------------------------

@main.group("api")
def api_group() -> None:
    """The HTTP API's users: their tokens."""


@api_group.command("token")
@click.argument("name")
@click.option("--config", "config_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Check NAME against this config's api_users, and create its token if "
                   "the service has not yet.")
@click.option("--rotate", is_flag=True,
              help="Replace the token: the old one is refused by a running service from "
                   "its next request.")
@pass_obj
def api_token_command(obj: _Obj, name: str, config_dir: Path | None, rotate: bool) -> None:
    """Print API user NAME's bearer token ('admin': the built-in admin's).

    The token is a secret: this command prints it (that is its purpose); nothing else
    does. Anyone who has it acts as NAME.
    """
    from callcenter.asterisk.secrets import SecretsError
    from callcenter.web.auth import UnknownUser, user_token

    users = None if config_dir is None else list(_load(obj, config_dir).config.api_users)
    try:
        click.echo(user_token(obj.instance.secrets_file, name, users=users, rotate=rotate))
    except (UnknownUser, SecretsError) as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def asterisk() -> None:
    """A real Asterisk 22 on 127.0.0.1, no Docker needed."""


class _PortRange(click.ParamType):
    """``START-END``: the UDP ports Asterisk may use for RTP (rtp.conf)."""

    name = "START-END"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", str(value))
        start, end = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if not m or not 1024 <= start < end <= 65535:
            self.fail(f"{value!r}: expected START-END with 1024 <= START < END <= 65535, "
                      "e.g. 10000-10999 (each call uses two ports)", param, ctx)
        return start, end


_PORT = click.IntRange(1, 65535)


@asterisk.command("install")
@click.option("--force", is_flag=True, help="Download and unpack again.")
@click.option("--sip-port", type=_PORT, default=None, help="SIP port, UDP and TCP (5060).")
@click.option("--http-port", type=_PORT, default=None, help="HTTP/ARI port (8088).")
@click.option("--ami-port", type=_PORT, default=None, help="AMI port (5038).")
@click.option("--rtp-ports", type=_PortRange(), default=None,
              help="UDP range for the calls' audio (10000-10999).")
@click.option("--bind", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--node", default=None,
              help="This node's name, Asterisk's systemname (default: <host>-<hash of the "
                   "home>); distinct per node when several share one database.")
@pass_obj
def asterisk_install(obj: _Obj, force: bool, sip_port: int | None, http_port: int | None,
                     ami_port: int | None, rtp_ports: tuple[int, int] | None,
                     bind: str | None, node: str | None) -> None:
    """Download Asterisk from Debian unstable, unpack it and configure an instance.

    Options given are stored with the instance (asterisk/instance.json); a later
    install keeps the ones not given.
    """
    try:
        installation = install(force=force, progress=_progress)
    except ProvisionError as exc:
        raise click.ClickException(str(exc)) from None
    inst = obj.instance
    base = inst.settings if inst.is_installed() else InstanceSettings()
    changes: dict[str, Any] = {"sip_port": sip_port, "http_port": http_port,
                               "ami_port": ami_port, "bind": bind, "node": node}
    if rtp_ports is not None:
        changes["rtp_start"], changes["rtp_end"] = rtp_ports
    try:
        inst.setup(installation, dataclasses.replace(
            base, **{k: v for k, v in changes.items() if v is not None}))
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    s = inst.settings
    click.echo(f"Asterisk {installation.version} ready in {inst.dir}")
    click.echo(f"  SIP {s.bind}:{s.sip_port}  ARI {inst.ari_url}  AMI {s.bind}:{s.ami_port}  "
               f"RTP {s.rtp_start}-{s.rtp_end}/udp  node {s.node}")
    click.echo(f"  credentials: {inst.home / 'secrets.json'} (mode 0600)")


def _progress(line: str) -> None:
    """Download progress goes to stderr, so stdout stays the result."""
    click.echo(line, err=True)


@asterisk.command("start")
@pass_obj
def asterisk_start(obj: _Obj) -> None:
    """Start Asterisk in the background and wait until fully booted."""
    try:
        took = obj.instance.start()
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Asterisk already running" if took == 0 else f"Asterisk started in {took:.1f} s")


@asterisk.command("stop")
@pass_obj
def asterisk_stop(obj: _Obj) -> None:
    """Stop Asterisk."""
    try:
        stopped = obj.instance.stop()
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Asterisk stopped" if stopped else "Asterisk was not running")


@asterisk.command("status")
@pass_obj
def asterisk_status(obj: _Obj) -> None:
    """Say whether Asterisk runs, and what it runs."""
    inst = obj.instance
    try:
        s = inst.settings
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    if not inst.is_running():
        click.echo(f"stopped (Asterisk {s.asterisk_version} in {inst.dir})")
        sys.exit(3)
    _, uptime = inst.cli("core show uptime seconds")
    _, channels = inst.cli("core show channels count")
    click.echo(f"running, pid {inst.pid}, Asterisk {s.asterisk_version}")
    click.echo(uptime.strip())
    click.echo(channels.strip())


@asterisk.command("cli")
@click.argument("command")
@pass_obj
def asterisk_cli(obj: _Obj, command: str) -> None:
    """Run one Asterisk CLI command, e.g. "core show channels"."""
    try:
        rc, out = obj.instance.cli(command, check=False)
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(out, nl=False)
    sys.exit(rc)


# -- trunks and the test carrier ------------------------------------------------

@main.group()
def trunks() -> None:
    """SIP trunks to providers (the config's trunks: section)."""


@trunks.command("password")
@click.argument("name")
@click.option("--config", "config_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Check that NAME is a trunk with auth in this config.")
@pass_obj
def trunks_password(obj: _Obj, name: str, config_dir: Path | None) -> None:
    """Store the password the provider gave for trunk NAME in the home's secrets.json.

    Read from the terminal without echo, or as one line from standard input, never from
    the command line (which other users and the shell history see).
    """
    from callcenter.asterisk.secrets import SecretsError, set_trunk_password
    from dialplan.trunks import TRUNK_PASSWORD, auth_trunks

    if config_dir is not None and name not in auth_trunks(_load(obj, config_dir).config):
        raise click.ClickException(f"{name!r} is no trunk with auth in {config_dir}")
    if sys.stdin.isatty():
        password = click.prompt(f"password of trunk {name}", hide_input=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not TRUNK_PASSWORD.fullmatch(password):
        raise click.ClickException(
            "the password must be 1 to 128 printable ASCII characters without blank, ';', "
            "'\\' or quotes (PJSIP's config could not hold it)")
    try:
        set_trunk_password(obj.instance.secrets_file, name, password)
    except (SecretsError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of trunk {name} stored in {obj.instance.secrets_file} "
               "(run 'callcenter apply' to load it)")


@main.group()
def carrier() -> None:
    """The test carrier: a second Asterisk playing the public network (README: "Trunks")."""


@carrier.command("run")
@click.option("--carrier-home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The carrier's own home (default: <home>/carrier).")
@click.option("--trunk", "trunk", default="carrier", show_default=True,
              help="The trunk's name in your config (its password is stored under it).")
@click.option("--did", "dids", multiple=True, metavar="NUMBER=ENTRY_POINT",
              help="A DID of yours and its entry point, for the printed YAML (repeatable).")
@click.option("--bind", default="127.0.0.2", show_default=True,
              help="The carrier's address (not your callers' 127.0.0.1).")
@click.option("--sip-port", type=_PORT, default=5060, show_default=True)
@click.option("--http-port", type=_PORT, default=8088, show_default=True)
@click.option("--ami-port", type=_PORT, default=5038, show_default=True)
@click.option("--rtp-ports", type=_PortRange(), default="12000-12999", show_default=True)
@pass_obj
def carrier_run(obj: _Obj, carrier_home: Path | None, trunk: str, dids: tuple[str, ...],
                bind: str, sip_port: int, http_port: int, ami_port: int,
                rtp_ports: tuple[int, int]) -> None:
    """Start the carrier, store its password as trunk TRUNK's in this home's secrets.json,
    print the trunk YAML to paste and the number plan; Ctrl-C stops it."""
    from callcenter.asterisk.secrets import SecretsError, set_trunk_password
    from callcenter.testing.carrier import NUMBER_PLAN, Carrier

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,47}", trunk):
        raise click.BadParameter("a trunk name: a lowercase letter, then lowercase letters, "
                                 "digits or _", param_hint="--trunk")
    did_map: dict[str, str] = {}
    for item in dids:
        number, sep, entry = item.partition("=")
        if not (sep and re.fullmatch(r"\+?[0-9]{3,20}", number)
                and re.fullmatch(r"[a-z][a-z0-9_]{0,47}", entry)):
            raise click.BadParameter(f"{item!r}: expected NUMBER=ENTRY_POINT, e.g. "
                                     "+15550109000=main", param_hint="--did")
        did_map[number] = entry
    try:
        installation = find_installation() or install(progress=_progress)
        the_carrier = Carrier(carrier_home or obj.home / "carrier")
        the_carrier.setup(installation, InstanceSettings(
            bind=bind, sip_port=sip_port, http_port=http_port, ami_port=ami_port,
            rtp_start=rtp_ports[0], rtp_end=rtp_ports[1], node="carrier"))
        set_trunk_password(obj.instance.secrets_file, trunk, the_carrier.password)
    except (ProvisionError, InstanceError, SecretsError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    # Blocked before the start, so a Ctrl-C during it stops the carrier instead of
    # leaving it running behind a traceback.
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        the_carrier.start()
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        s = the_carrier.instance.settings
        click.echo(f"carrier: Asterisk {s.asterisk_version} at sip:{s.bind}:{s.sip_port}, "
                   f"account {the_carrier.account}; its password is trunk_passwords.{trunk} "
                   f"in {obj.instance.secrets_file}")
        click.echo("paste into your config (e.g. a trunks.yaml), then 'callcenter apply':\n")
        click.echo(the_carrier.trunk_yaml(name=trunk, dids=did_map))
        click.echo("numbers (xxx: any three digits):")
        for number_class in NUMBER_PLAN:
            click.echo(f"  +1555010{number_class.digit}xxx  {number_class.description}")
        click.echo("outbound: Local/<number>@cc-trunk-" + trunk + "-out; Ctrl-C stops the carrier")
        signal.sigwait(signals)
    finally:
        the_carrier.stop()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    click.echo("carrier stopped")


@main.command("call")
@click.argument("number")
@click.option("--keys", default="", help="Keys to press, e.g. 1,2 or 1,1,100200# (a comma "
              "waits for the next prompt).")
@click.option("--caller-id", default="15550001111", show_default=True,
              help="The caller's number (VIP and blocked numbers are in entry.yaml).")
@click.option("--hold", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="Seconds to stay on after the last key before hanging up.")
@pass_obj
def call(obj: _Obj, number: str, keys: str, caller_id: str, hold: float) -> None:
    """Place a real SIP call (sipp) to NUMBER on the running instance and say where it
    went, as Asterisk reports it over AMI (route, destination, hangup cause).

    \b
    Example, with the demo accounts of 'callcenter db seed-demo':
        callcenter call 5551000 --keys 1,2                  # English, sales
        callcenter call 5551000 --keys 1,1,100200# --caller-id +15551230001
    """
    from callcenter.testing.trial import TrialError, keypresses, place_call

    if not re.fullmatch(r"[0-9A-Za-z*#+._-]{1,40}", number):
        raise click.BadParameter(f"{number!r}: expected digits (or a SIP user name)",
                                 param_hint="NUMBER")
    if not re.fullmatch(r"\+?[0-9A-Za-z._-]{1,40}", caller_id):
        raise click.BadParameter(f"{caller_id!r}: expected a number such as +15551230001",
                                 param_hint="--caller-id")
    try:
        presses = keypresses(keys)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--keys") from None
    inst = obj.instance
    try:
        if not inst.is_running():
            raise click.ClickException(
                f"Asterisk is not running in {obj.home}: start the center with "
                "'callcenter run CONFIG_DIR' (or 'callcenter asterisk start')")
        s = inst.settings
        click.echo(f"calling {number} at {s.bind}:{s.sip_port} from {caller_id}"
                   + (f", keys {keys}" if keys else ""))
        result = asyncio.run(place_call(inst, number, caller_id=caller_id, keys=presses,
                                        hold_s=hold))
    except (InstanceError, TrialError) as exc:
        raise click.ClickException(str(exc)) from None
    r = result.route
    click.echo(f"SIP: {result.final_response or 'no final response'}")
    click.echo("route: " + (" > ".join(r.route) or "(no flow entered)"))
    for i, where in enumerate(r.destinations):
        click.echo(f"{'destination' if i == 0 else 'then'}: {where}")
    for device in result.answered_by:
        click.echo(f"answered by: {device}")
    if not result.final_response:
        who = "the INVITE got no final response"
    elif not result.final_response.startswith("2"):
        who = "Asterisk rejected the call"
    elif result.remote_hangup:
        who = "Asterisk hung up"
    else:
        who = f"we hung up after {hold:g} s"
    click.echo(f"hangup: {who} (cause {r.cause} {r.cause_text})")


# -- the built-in test softphone --------------------------------------------

_AGENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


@main.command("phone")
@click.argument("name")
@click.option("--config", "config_dir", default=None,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Check NAME against this config (an agent with a generated softphone).")
@click.option("--login", is_flag=True,
              help="Log NAME in once registered (and out on exit), through the running "
                   "service's HTTP API: calls start reaching the phone at once.")
@pass_obj
def phone(obj: _Obj, name: str, config_dir: Path | None, login: bool) -> None:
    """Be agent NAME: register the built-in test softphone (baresip) with NAME's
    generated account on the running instance; it answers every call by itself and
    prints what happens, until Ctrl-C (or SIGTERM), which unregisters it.

    \b
    See a call reach an agent, with no softphone of your own:
        callcenter phone carmen                  # terminal 1: the operator's phone
        callcenter call 5551000 --keys 1,0       # terminal 2: English, operator
        callcenter phone carmen --login          # ...or as a queue agent:
        callcenter call 5551000 --keys 1,2       #   English, sales: the router rings carmen

    The password comes from the instance's secrets.json, never from the command line.
    """
    if not _AGENT_NAME.fullmatch(name):
        raise click.BadParameter(f"{name!r}: an agent name is a lowercase letter, then "
                                 "lowercase letters, digits or _", param_hint="NAME")
    password = _phone_password(obj, name, config_dir)
    inst = obj.instance
    try:
        if not inst.is_running():
            raise click.ClickException(
                f"Asterisk is not running in {obj.home}: start the center with "
                "'callcenter run CONFIG_DIR' (or 'callcenter asterisk start')")
        s = inst.settings
    except InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    host = _phone_host(s.bind)
    if shutil.which("baresip") is None:
        raise click.ClickException("baresip, the test softphone, is not installed: "
                                   "apt-get install baresip-core")
    api_login = _ApiLogin.for_home(obj.home) if login else None
    sys.exit(asyncio.run(_run_phone(name, password, host, s.sip_port, api_login)))


class _ApiLogin:
    """``--login``: the agent logs in and out through the service's HTTP API."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def for_home(cls, home: Path) -> _ApiLogin:
        from callcenter.web.client import ApiClient, ApiClientError

        try:
            return cls(ApiClient.for_home(home))
        except ApiClientError as exc:
            raise click.ClickException(f"--login: {exc}") from None

    async def login(self, agent: str) -> None:
        await self._act(agent, "login")

    async def logout(self, agent: str) -> None:
        await self._act(agent, "logout")

    async def _act(self, agent: str, action: str) -> None:
        from callcenter.web.client import ApiClientError, ApiRefused

        try:
            state = await asyncio.to_thread(self._client.act, agent, action)
        except ApiRefused as exc:  # e.g. logged in already: say so, keep the phone up
            click.echo(f"phone {agent}: {action} refused: {exc}")
            return
        except ApiClientError as exc:  # the service stopped first (a shared Ctrl-C)
            click.echo(f"phone {agent}: {action} failed: {exc}", err=True)
            return
        click.echo(f"phone {agent}: {action} done, agent {state.get('status', '?')}")


def _phone_password(obj: _Obj, name: str, config_dir: Path | None) -> str:
    """NAME's softphone password, or a clear error saying why NAME has none."""
    from callcenter.asterisk.secrets import AGENT_PASSWORDS, SecretsError, read_secrets

    secrets_file = obj.instance.secrets_file
    if config_dir is not None:
        config = _load(obj, config_dir).config
        agent = config.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(config.agents)) or "none"
            raise click.ClickException(f"no agent {name!r} in {config_dir} (agents: {known})")
        if not agent.softphone:
            raise click.ClickException(
                f"agent {name} rings the device {agent.device}, not a softphone account of "
                "callcenter's: register that device itself (remove 'device:' to get one)")
    try:
        stored = read_secrets(secrets_file).get(AGENT_PASSWORDS)
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    stored = stored if isinstance(stored, dict) else {}
    password = stored.get(name)
    if isinstance(password, str):
        return password
    if config_dir is not None:
        raise click.ClickException(
            f"agent {name} has no softphone account in {obj.home} yet: 'callcenter apply "
            f"{config_dir}' (or 'run') creates it and loads it into Asterisk")
    known = ", ".join(sorted(stored)) or "none"
    raise click.ClickException(
        f"no softphone account for agent {name!r} in {secrets_file} (accounts: {known}); "
        "an agent with a 'device' has none, and 'apply' creates one for every other "
        "agent (--config CONFIG_DIR checks NAME against the config)")


def _phone_host(bind: str) -> str:
    """The address the phone registers at, and binds itself: the instance's SIP
    address (loopback when Asterisk listens on every address)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        address = None
    if not isinstance(address, ipaddress.IPv4Address):
        raise click.ClickException(f"Asterisk's SIP address {bind!r} is not IPv4: the test "
                                   "softphone registers over IPv4 only")
    return "127.0.0.1" if address.is_unspecified else bind


async def _run_phone(name: str, password: str, host: str, sip_port: int,
                     login: _ApiLogin | None = None) -> int:
    """The phone until a stop signal (exit 0) or baresip's own end (exit 1)."""
    from callcenter.testing.demo_phone import serve_phone
    from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
    from callcenter.testing.softphone import (
        BaresipMissingError,
        Softphone,
        SoftphoneError,
    )

    registrar = f"{host}:{sip_port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    starting = True

    def on_signal() -> None:
        stop.set()
        if starting:  # still waiting for the registrar's first answer: give up now
            me.cancel()

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    phone = Softphone(name, password, registrar_port=sip_port, sip_port=free_udp_tcp_port(),
                      ctrl_port=free_port(), rtp_port=free_udp_range(4)[0],
                      require_registration=False, timeout=40.0, host=host)
    click.echo(f"phone {name}: registering at {registrar} (SIP on {host}:{phone.sip_port}); "
               "it answers every call; Ctrl-C stops it")
    try:
        async with phone:
            starting = False
            stopped = await serve_phone(phone, click.echo, stop, registrar=registrar,
                                        login=login)
            if not stopped:
                click.echo(f"baresip exited on its own: {phone.console()[-800:]}", err=True)
                return 1
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        me.uncancel()  # our own cancel, from on_signal: a stop, not an error
        click.echo(f"phone {name}: stopped before the registrar answered")
        return 0
    except BaresipMissingError as exc:
        raise click.ClickException(str(exc)) from None
    except SoftphoneError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    # baresip unregisters (REGISTER with Expires: 0) on the SIGTERM that stopped it.
    click.echo(f"phone {name}: unregistered, stopped")
    return 0


# -- FastAGI -----------------------------------------------------------------

@main.group()
def agi() -> None:
    """FastAGI server and classic AGI runner for agi_scripts/."""


@agi.command("serve")
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--db", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@pass_obj
def agi_serve(obj: _Obj, config_dir: Path, db: str | None) -> None:
    """Serve agi_scripts/ over FastAGI at settings.fastagi."""
    loaded = _load(obj, config_dir)
    _serve_until_signal(obj, loaded.config, db, http_api=False, instance=None)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _run_service(coro: Any) -> None:
    """Run a long-lived server on uvloop when installed (measured here: about a
    quarter less CPU per FastAGI call than the stock loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


def _serve_until_signal(obj: _Obj, config: Any, db: str | None, *, http_api: bool,
                        instance: AsteriskInstance | None, node: str | None = None) -> None:
    """Run the service (FastAGI, the HTTP API when asked, the components) until SIGINT,
    SIGTERM or SIGHUP; a service error ends the command with its message."""
    from callcenter.service import ServiceError

    try:
        _run_service(_serve(obj, config, db, http_api=http_api, instance=instance, node=node))
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None


async def _serve(obj: _Obj, config: Any, db: str | None, *, http_api: bool,
                 instance: AsteriskInstance | None, node: str | None) -> None:
    from callcenter.service import CallCenterService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A closed terminal (SIGHUP) or a service manager (SIGTERM) stops us as Ctrl-C does.
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with CallCenterService(config, home=obj.home, db_url=obj.db_url(db),
                                     instance=instance, node=node,
                                     http_api=http_api) as service:
            if service.has_ari:  # serve and run; agi serve has no instance
                from ari_apps.queue_router import QueueRouter

                router = QueueRouter(config, service.ari, service.sessions, node=service.node,
                                     clock=service.clock, listeners=service.event_listeners)
                service.watch_events(router.events)
                service.transfers = router.transfers  # the HTTP API's transfer routes
                service.add("queue router", router.run, on_agent_change=router.agent_changed,
                            on_agent_transition=router.agent_transition,
                            supervision=router.supervision)
                click.echo(f"Queue router: Stasis app {config.settings.queue_app} "
                           f"(node {service.node})")
                if instance is not None and any(
                        c.mode == "preview" for c in config.campaigns.values()):
                    _add_preview_dialer(service, config, instance)
            host, port = service.fastagi_address or ("", 0)
            click.echo(f"FastAGI listening on {host}:{port}")
            if service.api_url is not None:
                click.echo(f"HTTP API listening on {service.api_url} (token: api_token in "
                           f"{obj.instance.secrets_file}; try: {_program()} agents list)")
            await service.run(stop)
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _add_preview_dialer(service: Any, config: Any, instance: AsteriskInstance) -> None:
    """The preview campaigns' dialer (Stasis app ``cc-preview``, a websocket of its own)
    behind the HTTP API's ``POST /api/v1/campaigns/preview/{contact}/dial``."""
    from ari_apps.preview import PREVIEW_APP, PreviewDialer, run_with_events
    from callcenter.asterisk.ari.client import ARIClient

    credentials = instance.credentials
    ari = ARIClient(instance.ari_url, username=credentials.ari_user,
                    password=credentials.ari_password, app=PREVIEW_APP)
    dialer = PreviewDialer(config, ari, service.sessions, store=service.store,
                           clock=service.clock)

    async def run() -> None:
        async with ari:
            await run_with_events(dialer)

    service.preview = dialer
    service.add("preview dialer", run)
    click.echo(f"Preview dialer: Stasis app {PREVIEW_APP}")


@agi.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1)
@click.option("--db", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@pass_obj
def agi_run(obj: _Obj, config_dir: Path, script: str | None, script_args: tuple[str, ...],
            db: str | None) -> None:
    """Classic AGI over stdin/stdout, one process per call.

    From the dialplan:

    \b
        AGI(/path/to/callcenter,--home,H,agi,run,CONFIG_DIR,account_lookup,account,${X})

    SCRIPT_ARGS are accepted and ignored: the script reads its arguments from the
    AGI header (agi_arg_N), where Asterisk also puts them.
    """
    from callcenter.config.loader import load_config

    logging.getLogger().handlers[:] = [logging.StreamHandler(sys.stderr)]
    loaded = load_config(config_dir)
    sys.exit(asyncio.run(_run_classic(obj, loaded.config, script, db)))


async def _run_classic(obj: _Obj, config: Any, script: str | None, db: str | None) -> int:
    import agi_scripts
    from callcenter.asterisk.agi import AGIContext, run_stdio
    from callcenter.service import ServiceResources

    async with ServiceResources(config, obj.db_url(db)) as resources:
        ctx = AGIContext(config=config, db=resources.sessions, accounts=resources.accounts,
                         http=resources.http)
        return await run_stdio(agi_scripts.handlers(), ctx, script)


# -- the whole center --------------------------------------------------------

_NODE_OPTION = click.option(
    "--node", default=None, metavar="NAME",
    help="This server's name in the database (queued calls, agent changes); default: the "
         "host name. Give each server sharing one database its own.")


@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--db", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@_NODE_OPTION
@pass_obj
def serve(obj: _Obj, config_dir: Path, db: str | None, node: str | None) -> None:
    """Run the call center's services next to the home's running Asterisk: FastAGI
    (settings.fastagi) and the HTTP API (settings.http_api), until Ctrl-C, SIGTERM
    or SIGHUP.

    'callcenter run' = install and start Asterisk, apply, then this. The API's
    token is generated into the home's secrets.json; 'callcenter agents ...' finds
    the API through the home's api.json.
    """
    loaded = _load(obj, config_dir)
    inst = obj.instance
    if not inst.is_installed():
        raise click.ClickException(
            f"no Asterisk instance in {obj.home}: 'callcenter run {config_dir}' installs, "
            "starts and serves it (or point --home / CALLCENTER_HOME at an existing one)")
    try:
        check_free([_fastagi_port_use(loaded), _http_api_port_use(loaded)])
    except PortsBusyError as exc:
        raise click.ClickException(str(exc)) from None
    if not inst.is_running():
        click.echo(f"warning: Asterisk is not running in {obj.home}; start it with "
                   f"'{_program()} asterisk start' (calls need it)", err=True)
    # Until the service installs its own handlers, SIGTERM and SIGHUP unwind like Ctrl-C.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        _serve_until_signal(obj, loaded.config, db, http_api=True, instance=inst, node=node)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@main.command()
@click.argument("config_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--db", default=None, envvar="CALLCENTER_DB", help="Database URL.")
@click.option("--seed-demo/--no-seed-demo", default=True, help="Insert demo accounts.")
@click.option("--keep-asterisk", is_flag=True, help="Leave Asterisk running on exit.")
@_NODE_OPTION
@pass_obj
def run(obj: _Obj, config_dir: Path, db: str | None, seed_demo: bool,
        keep_asterisk: bool, node: str | None) -> None:
    """Install and start Asterisk, apply CONFIG_DIR, then serve (FastAGI, the HTTP
    API) until Ctrl-C: 'callcenter serve' with its Asterisk.

    Every port (SIP, HTTP/ARI, AMI, RTP, FastAGI, HTTP API) is checked before
    anything starts. On exit (Ctrl-C, SIGTERM, SIGHUP) the services stop, and
    Asterisk with them unless --keep-asterisk.
    """
    from callcenter.apply import ApplyError, apply_files

    inst = obj.instance
    loaded = _load(obj, config_dir)
    # Until the FastAGI server installs its own handlers, SIGTERM and SIGHUP unwind
    # like Ctrl-C, so the finally below stops an Asterisk we started.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    started = False
    try:
        try:
            check_free(_run_port_uses(inst, loaded))
            if not inst.is_installed():
                inst.setup(install(progress=_progress))
            if seed_demo:
                asyncio.run(_seed(obj.db_url(db)))
            started = inst.start() > 0
            result = apply_files(inst, _render(obj, loaded))
        except (ProvisionError, InstanceError, ApplyError, PortsBusyError) as exc:
            raise click.ClickException(str(exc)) from None
        s = inst.settings
        first = next(iter(loaded.config.entry_points.values())).numbers[0]
        numbers = ", ".join(n for ep in loaded.config.entry_points.values() for n in ep.numbers)
        click.echo(f"Asterisk running; dialplan generation {result.generation} loaded.")
        click.echo(f"Call it: a softphone sending SIP to {s.bind}:{s.sip_port} "
                   f"(sip:{first}@{s.bind}:{s.sip_port}; numbers: {numbers}),")
        click.echo(f"  or, from another terminal: {_program()} call {first} --keys 1,2   "
                   "(a real SIP call, with sipp)")
        softphones = [n for n, a in sorted(loaded.config.agents.items()) if a.softphone]
        if softphones:
            click.echo(f"Agents' softphones register at {s.bind}:{s.sip_port}; "
                       f"{_program()} agents credentials NAME prints what to enter "
                       f"(NAME: {', '.join(softphones)}).")
            click.echo(f"  No softphone at hand? {_program()} phone {softphones[-1]} --login "
                       "registers a built-in one that answers by itself; then "
                       f"{_program()} call {first} --keys 1,2 reaches it through the queue.")
        click.echo(f"Asterisk's log: {inst.log_dir / 'messages.log'}")
        click.echo("Ctrl-C stops the call center.")
        started = True
        _serve_until_signal(obj, loaded.config, db, http_api=True, instance=inst, node=node)
    except KeyboardInterrupt:
        pass
    finally:
        if started and not keep_asterisk and inst.stop():
            click.echo("Asterisk stopped")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _program() -> str:
    """How the user started us (``.venv/bin/callcenter``), to repeat in hints."""
    argv0 = sys.argv[0] if sys.argv else ""
    return argv0 if Path(argv0).name == "callcenter" else "callcenter"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_port_uses(inst: AsteriskInstance, loaded: Any) -> list[PortUse]:
    """Every port ``run`` will bind: Asterisk's (unless it runs already) and FastAGI's."""
    uses: list[PortUse] = []
    if not inst.is_installed():
        uses = inst.port_uses(InstanceSettings())
    elif not inst.is_running():
        uses = inst.port_uses()
    uses.append(_fastagi_port_use(loaded))
    uses.append(_http_api_port_use(loaded))
    return uses


def _fastagi_port_use(loaded: Any) -> PortUse:
    fa = loaded.config.settings.fastagi
    where = loaded.sources.locate(("settings", "fastagi", "port"))
    return PortUse("FastAGI", fa.host, fa.port, "tcp", f"settings.fastagi.port ({where})")


def _http_api_port_use(loaded: Any) -> PortUse:
    api = loaded.config.settings.http_api
    where = loaded.sources.locate(("settings", "http_api", "port"))
    return PortUse("HTTP API", api.host, api.port, "tcp", f"settings.http_api.port ({where})")


# -- campaign lists: contacts and do-not-call (callcenter/lists_cli.py), and the
# campaigns' dispositions, status and report (callcenter/campaigns_cli.py) ------

def _add_list_commands() -> None:
    from callcenter.campaigns_cli import campaigns
    from callcenter.lists_cli import contacts, dnc

    main.add_command(contacts)
    main.add_command(dnc)
    main.add_command(campaigns)


_add_list_commands()
