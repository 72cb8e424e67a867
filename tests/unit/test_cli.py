"""The ``callcenter`` command line, run in-process with click's CliRunner.

Every invocation gets ``--home`` in a tmp dir (simulate migrates a SQLite
database there for lookups), so nothing is written into the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from callcenter.asterisk.instance import AsteriskInstance, InstanceSettings
from callcenter.asterisk.provision import AsteriskInstallation
from callcenter.cli import main
from callcenter.storage.migrate import head_revision
from callcenter.testing.ports import free_port, free_udp_range, free_udp_tcp_port
from tests.conftest import _example_copy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"
GOLDEN = REPO / "tests" / "golden" / "example"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)
    monkeypatch.delenv("CALLCENTER_DB", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)

    invoke.home = home  # type: ignore[attr-defined]
    return invoke


def test_validate_example(cli) -> None:
    result = cli("validate", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r".*example: OK — 1 entry point, 8 flows, 4 menus, 3 queues, 3 agents; "
        r"sounds (checked|not checked \(no Asterisk installed\))\n",
        result.stdout,
    ), result.stdout


def test_validate_broken(cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "entry.yaml").write_text(
        "entry_points:\n"
        "  main:\n"
        "    numbers: [\"100\"]\n"
        "    flow: nowhere\n"
    )
    (broken / "flows.yaml").write_text(
        "flows:\n"
        "  start:\n"
        "    steps:\n"
        "      - hangup: true\n"
        "    colour: red\n"
    )
    result = cli("validate", str(broken))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if re.match(r".+:\d+:\d+: ", line)]
    assert f"{broken / 'flows.yaml'}:5:5: flows.start: unknown key 'colour'" in result.stderr
    # a shape error no longer hides the cross-checks of what parsed: both in one round
    assert f"{broken / 'entry.yaml'}:4:11: entry_points.main.flow: unknown flow 'nowhere'" \
        in result.stderr
    assert len(errors) == 2, result.stderr
    assert result.stderr.rstrip().endswith(f"2 problems in {broken}")
    assert "OK" not in result.stdout


def test_validate_cross_check_errors(cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "entry.yaml").write_text(
        "entry_points:\n  main:\n    numbers: [\"100\"]\n    flow: nowhere\n")
    (broken / "flows.yaml").write_text("flows:\n  start:\n    steps:\n      - hangup: true\n")
    result = cli("validate", str(broken))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert f"{broken / 'entry.yaml'}:4:11: entry_points.main.flow: unknown flow 'nowhere' " \
        "(known: start)" in lines
    assert f"{broken / 'flows.yaml'}:3:5: flows.start: flow 'start' is unreachable from " \
        "every entry point" in lines
    assert lines[-1] == f"2 problems in {broken}"


def test_schema(cli) -> None:
    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "$defs" in schema
    assert "menus" in schema["properties"]
    assert "required" not in schema  # sections may be split across files
    assert schema["additionalProperties"] is False


def test_generate_matches_golden(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("generate", str(EXAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["extensions_callcenter.conf", "pjsip_callcenter.conf",
                     "pjsip_callcenter_auth.conf", "voicemail_callcenter.conf"]
    passwords = stored_passwords(cli.home)
    for name in names:
        text = (out / name).read_text()
        if name == "pjsip_callcenter_auth.conf":
            # The home's generated passwords, in the golden file's place of the fakes.
            for agent, password in passwords.items():
                text = text.replace(f"password={password}\n",
                                    f"password=fake-password-of-{agent}\n")
            assert (out / name).stat().st_mode & 0o777 == 0o600
        assert text == (GOLDEN / name).read_text(), name
        assert f"wrote {out / name}" in result.stdout
    leaked = any(pw in result.output for pw in passwords.values())
    assert not leaked, "generate printed a password"


def stored_passwords(home: Path) -> dict[str, str]:
    data = json.loads((home / "secrets.json").read_text())
    assert (home / "secrets.json").stat().st_mode & 0o777 == 0o600
    return data["agent_passwords"]


def test_generate_keeps_the_agents_passwords(cli, tmp_path: Path) -> None:
    """A softphone set up once keeps working: the next generation has the same password."""
    assert cli("generate", str(EXAMPLE), "--out", str(tmp_path / "a")).exit_code == 0
    first = stored_passwords(cli.home)
    assert sorted(first) == ["alice", "bob", "carmen"]
    assert len(set(first.values())) == 3
    assert cli("generate", str(EXAMPLE), "--out", str(tmp_path / "b")).exit_code == 0
    assert stored_passwords(cli.home) == first
    same = ((tmp_path / "a" / "pjsip_callcenter_auth.conf").read_bytes()
            == (tmp_path / "b" / "pjsip_callcenter_auth.conf").read_bytes())
    assert same


def test_agent_credentials(cli) -> None:
    """What a new agent types into a softphone: server, user and the generated password."""
    missing = cli("agents", "credentials", "alice")
    assert missing.exit_code == 1
    assert "no softphone account for agent 'alice'" in missing.output
    result = cli("agents", "credentials", "alice", "--config", str(EXAMPLE))
    assert result.exit_code == 0, "credentials failed"
    password = stored_passwords(cli.home)["alice"]
    lines = result.stdout.splitlines()
    shown = f"  password:                         {password}" in lines
    assert shown, "the password line is not the stored password"
    assert "  user name:                        alice" in lines
    assert "calls to extension 1001" in result.stdout
    # Once created, the home alone is enough (the same password).
    again = cli("agents", "credentials", "alice")
    same = again.exit_code == 0 and password in again.stdout
    assert same, "credentials without --config did not print the stored password"


def test_agent_credentials_unknown_or_device(cli, tmp_path: Path) -> None:
    unknown = cli("agents", "credentials", "zoe", "--config", str(EXAMPLE))
    assert unknown.exit_code == 1
    assert "no agent 'zoe'" in unknown.output and "alice, bob, carmen" in unknown.output
    config = tmp_path / "dev"
    config.mkdir()
    (config / "main.yaml").write_text(
        "entry_points: {e: {numbers: ['100'], flow: f}}\n"
        "flows: {f: {steps: [{transfer: {extension: '1001'}}]}}\n"
        "agents: {dora: {extension: '1001', device: PJSIP/1001}}\n")
    device = cli("agents", "credentials", "dora", "--config", str(config))
    assert device.exit_code == 1
    assert "rings the device PJSIP/1001" in device.output


def test_simulate(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,2",
                 "--at", "2026-11-25T10:00:00-05:00", "--caller-id", "15550001111")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "=> queue sales skills=sales priority=5 language=en" in lines
    assert any(line.startswith("schedule") and "(open)" in line for line in lines)
    assert (cli.home / "callcenter.sqlite3").exists()  # the home's DB, migrated


def test_simulate_lookup_uses_the_database(cli) -> None:
    # Empty database: account 100200 is not found.
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,1,100200#",
                 "--at", "2026-11-25T15:00:00Z")
    assert result.exit_code == 0, result.output
    assert "100200 -> not_found" in result.stdout
    assert "flow       unknown_account" in result.stdout
    assert "=> queue customer_service skills=billing priority=0 language=en" in \
        result.stdout.splitlines()


def test_simulate_after_hours(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line",
                 "--at", "2026-11-29T10:00:00-05:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "=> voicemail general"
    assert result.stdout.splitlines()[0] == \
        "at 2026-11-29T10:00:00-05:00 (Sun 2026-11-29 10:00 America/New_York)"


def test_simulate_at_needs_offset(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line",
                 "--at", "2026-11-25T10:00:00")
    assert result.exit_code == 2
    assert "--at '2026-11-25T10:00:00' needs a UTC offset" in result.stderr
    assert "Traceback" not in result.output


def test_simulate_bad_at(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--at", "tomorrow")
    assert result.exit_code == 2
    assert "--at 'tomorrow' is not a time: expected ISO 8601 with a UTC offset" in result.stderr
    assert "isoformat" not in result.stderr  # not Python's own message


def test_simulate_bad_keys(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,x")
    assert result.exit_code == 2
    assert "invalid key 'x'" in result.stderr


def test_simulate_unknown_entry(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "nope", "--at", "2026-11-25T15:00:00Z")
    assert result.exit_code == 2
    assert "unknown entry point 'nope' (known: main_line)" in result.stderr


def test_simulate_without_at_says_which_time(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,2")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith("at 20") and first.endswith("now: --at to choose"), first


def test_simulate_reports_unused_keys(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,2,5,6",
                 "--at", "2026-11-25T15:00:00Z")
    assert result.exit_code == 0, result.output
    assert "keys not used, the call ended before them: 5,6" in result.stderr


def test_simulate_says_queue_falls_back_without_router(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,2",
                 "--at", "2026-11-25T15:00:00Z")
    assert "while the queue router 'cc-queue' is not running, this queue falls back to " \
           "voicemail general" in result.stdout


def test_simulate_lookup_stub_sets_variables(cli) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--keys", "1,1,100200#",
                 "--at", "2026-11-25T15:00:00Z", "--lookup", "account=found:VIP=1,LANGUAGE=es")
    assert result.exit_code == 0, result.output
    assert "100200 -> found; CC_ACCOUNT_LANGUAGE=es, CC_ACCOUNT_VIP=1" in result.stdout
    assert not (cli.home / "callcenter.sqlite3").exists()  # every lookup stubbed: offline


@pytest.mark.parametrize("stub, message", [
    ("acc=found", "--lookup 'acc': no such lookup (known: account)"),
    ("account=maybe", "invalid lookup status 'maybe'"),
    ("account=found:COLOUR=red", "invalid lookup field 'COLOUR=red'"),
    ("account=not_found:VIP=1", "only a 'found' result has fields"),
])
def test_simulate_bad_lookup_stub(cli, stub: str, message: str) -> None:
    result = cli("simulate", str(EXAMPLE), "--entry", "main_line", "--lookup", stub)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def _cli_subprocess(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process: logging is configured as a user sees it (in-process,
    pytest's own log handlers make ``logging.basicConfig`` a no-op)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    return subprocess.run(
        [sys.executable, "-c", "from callcenter.cli import main; main()", "--home", str(home),
         *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO, env=env)


def test_verbose_shows_our_info_but_not_alembics(tmp_path: Path) -> None:
    one = _cli_subprocess(tmp_path / "home", "-v", "db", "upgrade")
    assert one.returncode == 0, one.stderr
    assert one.stdout == f"database at revision {head_revision()}\n"
    assert "alembic" not in one.stderr, one.stderr
    two = _cli_subprocess(tmp_path / "home2", "-vv", "db", "upgrade")
    assert two.returncode == 0, two.stderr
    assert "INFO alembic.runtime.migration: Running upgrade" in two.stderr, two.stderr


def test_agi_run_help_keeps_the_dialplan_line_whole(cli) -> None:
    result = cli("agi", "run", "--help")
    assert result.exit_code == 0
    assert ("      AGI(/path/to/callcenter,--home,H,agi,run,CONFIG_DIR,account_lookup,"
            "account,${X})\n") in result.stdout, result.stdout


def test_apply_without_an_instance_is_an_error(cli) -> None:
    result = cli("apply", str(EXAMPLE))
    assert result.exit_code == 1, result.output
    assert f"no Asterisk instance in {cli.home}" in result.stderr
    assert "callcenter asterisk install" in result.stderr and "--home" in result.stderr
    assert "Traceback" not in result.output
    assert not (cli.home / "asterisk").exists()


def _accounts(home: Path) -> dict[str, str]:
    """account_number -> name, read straight from the home's SQLite file."""
    with contextlib.closing(sqlite3.connect(home / "callcenter.sqlite3")) as db:
        return dict(db.execute("SELECT account_number, name FROM accounts"))


def test_import_accounts_one_new(cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "one.csv"
    csv_file.write_text("account_number,name\n900001,Katherine Johnson\n")
    result = cli("db", "import-accounts", str(csv_file))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 1 account, 0 rejected\n"
    assert _accounts(cli.home) == {"900001": "Katherine Johnson"}


def test_import_accounts_reports_existing_and_updates_only_when_asked(cli, tmp_path: Path) -> None:
    assert cli("db", "seed-demo").exit_code == 0
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text("account_number,name\n100200,Ada King\n900001,Katherine Johnson\n")

    result = cli("db", "import-accounts", str(csv_file))
    assert result.exit_code == 1, result.output
    assert (f"{csv_file}: line 2: column 'account_number': account '100200' already exists"
            in result.stderr.splitlines())
    assert "1 account already existed and was left unchanged; --update overwrites them" \
        in result.stderr
    assert result.stdout == "imported 1 account, 1 rejected\n"
    stored = _accounts(cli.home)
    assert stored["100200"] == "Ada Lovelace" and stored["900001"] == "Katherine Johnson"
    assert len(stored) == 4  # three demo accounts + one new, nothing duplicated

    csv_file.write_text("account_number,name\n100200,Ada King\n900001,K. Johnson\n")
    result = cli("db", "import-accounts", "--update", str(csv_file))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 0 accounts, updated 2, 0 rejected\n"
    stored = _accounts(cli.home)
    assert stored["100200"] == "Ada King" and stored["900001"] == "K. Johnson"
    assert len(stored) == 4


def test_import_accounts_reports_an_unclosed_quote_with_its_line(cli, tmp_path: Path) -> None:
    csv_file = tmp_path / "quote.csv"
    csv_file.write_text('account_number,name\n900001,Katherine Johnson\n'
                        '900002,"Dorothy Vaughan\n900003,Mary Jackson\n')
    result = cli("db", "import-accounts", str(csv_file))
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"{csv_file}: line 3: unclosed quote: the quoted field that starts here runs to the "
        "end of the file (lines 3-4 not imported)"]
    assert result.stdout == "imported 1 account, 1 rejected\n"
    assert _accounts(cli.home) == {"900001": "Katherine Johnson"}


@pytest.fixture
def idle_instance(cli, tmp_path: Path) -> AsteriskInstance:
    """An instance on free ports whose Asterisk tree is never run (the port check
    comes first), with 10 RTP ports reserved for this process (other xdist workers')."""
    instance = AsteriskInstance(cli.home)
    rtp = free_udp_range(10, low=31000, high=32700)
    instance.setup(AsteriskInstallation("22.0.0", tmp_path / "no-tree"), InstanceSettings(
        sip_port=free_udp_tcp_port(), http_port=free_port(), ami_port=free_port(),
        rtp_start=rtp[0], rtp_end=rtp[1]))
    return instance


def test_run_names_every_busy_port_before_starting_anything(
        cli, idle_instance: AsteriskInstance, tmp_path: Path) -> None:
    s = idle_instance.settings
    fastagi = free_port()
    config = _example_copy(tmp_path / "example", fastagi)
    with contextlib.ExitStack() as held:
        def hold(kind: int, port: int) -> None:
            sock = held.enter_context(socket.socket(socket.AF_INET, kind))
            sock.bind(("127.0.0.1", port))
            if kind == socket.SOCK_STREAM:
                sock.listen()
        hold(socket.SOCK_DGRAM, s.sip_port)
        hold(socket.SOCK_DGRAM, s.rtp_start + 4)
        hold(socket.SOCK_STREAM, fastagi)
        result = cli("run", str(config))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    me = f"held by pid {os.getpid()} {Path('/proc/self/comm').read_text().strip()}"
    assert result.stderr.splitlines() == [
        "Error: ports in use by another process (nothing was started):",
        f"  SIP 127.0.0.1:{s.sip_port}/udp ({me}); choose another: callcenter asterisk "
        "install --sip-port N",
        f"  RTP 127.0.0.1:{s.rtp_start}-{s.rtp_end}/udp: 1 port taken ({s.rtp_start + 4}) "
        f"({me}); choose another: "
        "callcenter asterisk install --rtp-ports START-END",
        f"  FastAGI 127.0.0.1:{fastagi}/tcp ({me}); choose another: settings.fastagi.port "
        f"({config / 'settings.yaml'}:7:11)",
    ]
    assert not (idle_instance.run_dir / "asterisk.pid").exists()


def test_run_with_only_fastagi_busy_is_a_clear_error(
        cli, idle_instance: AsteriskInstance, tmp_path: Path) -> None:
    fastagi = free_port()
    config = _example_copy(tmp_path / "example", fastagi)
    with socket.socket() as other:
        other.bind(("127.0.0.1", fastagi))
        other.listen()
        result = cli("run", str(config))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"FastAGI 127.0.0.1:{fastagi}/tcp (held by pid {os.getpid()} " in result.stderr
    assert "; choose another: settings.fastagi.port" in result.stderr
    assert "Asterisk" not in result.stdout


def test_call_needs_a_running_asterisk(cli, idle_instance: AsteriskInstance) -> None:
    result = cli("call", "5551000", "--keys", "1,2")
    assert result.exit_code == 1, result.output
    assert f"Asterisk is not running in {cli.home}" in result.stderr
    assert "callcenter run CONFIG_DIR" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("5551000;x",), "'5551000;x': expected digits"),
    (("5551000", "--caller-id", "1\r\nX-Injected: 1"), "expected a number such as"),
    (("5551000", "--keys", "1,t"), "invalid keys 't'"),
])
def test_call_rejects_bad_input_before_dialling(cli, args: tuple[str, ...], message: str) -> None:
    result = cli("call", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_agi_serve_on_a_busy_port_is_a_clear_error(cli, tmp_path: Path) -> None:
    fastagi = free_port()
    config = _example_copy(tmp_path / "example", fastagi)
    with socket.socket() as other:
        other.bind(("127.0.0.1", fastagi))
        other.listen()
        result = cli("agi", "serve", str(config))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"Error: FastAGI cannot listen on 127.0.0.1:{fastagi}: Address already in use; " \
        "choose another port: settings.fastagi.port" in result.stderr
