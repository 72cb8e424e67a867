"""``callcenter agents list|login|logout|pause|unpause|end-wrapup`` against a real
running API: the aiohttp app served in-process on a free loopback port, announced in
the home (api.json + the token in secrets.json) the way ``callcenter serve`` does."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.state import AgentStatus, Answer, Hangup, Login, Reserve
from callcenter.agents.store import AgentStore
from callcenter.asterisk.secrets import api_token, ensure_secrets
from callcenter.cli import main
from callcenter.testing.ports import free_port
from callcenter.web import ApiServer, create_api_app
from callcenter.web.endpoint import write_endpoint
from tests.web_api import REASON, Clock, config_with_pause_reason

T0 = dt.datetime(2026, 11, 30, 21, 0, 5, tzinfo=dt.UTC)


@dataclass
class Service:
    home: Path
    store: AgentStore
    changed: list[str]

    async def cli(self, *args: str) -> Result:
        """The command, run in a thread: the API answers in this test's event loop."""
        def invoke() -> Result:
            return CliRunner().invoke(main, ["--home", str(self.home), *args],
                                      catch_exceptions=False)
        return await asyncio.to_thread(invoke)


@pytest.fixture(scope="module")
def config():
    return config_with_pause_reason()


@pytest.fixture
async def service(config, sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    monkeypatch.delenv("CALLCENTER_HOME", raising=False)
    home = tmp_path / "home"
    store = AgentStore(sessions, rules_from_config(config), node="test")
    changed: list[str] = []
    app = create_api_app(config=config, store=store, sessions=sessions, clock=Clock(T0),
                         token=api_token(home / "secrets.json"), on_agent_change=changed.append)
    server = ApiServer(app, host="127.0.0.1", port=free_port())
    await server.start()
    write_endpoint(home, server.url)
    try:
        yield Service(home, store, changed)
    finally:
        await server.stop()


def _local(when: dt.datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


async def test_list_prints_every_agent_as_a_table(service: Service) -> None:
    await service.store.apply("bob", Login(), T0)
    await service.store.apply("bob", Reserve("1701234567.42"), T0)
    await service.store.apply("bob", Answer("1701234567.42"), T0)
    await service.store.apply("carmen", Login(), T0)
    result = await service.cli("agents", "list")
    assert result.exit_code == 0, result.output
    since = _local(T0)
    assert result.stdout.splitlines() == [
        "NAME    STATE       SINCE                REASON  CALL",
        f"alice   logged_out  {since}  -       -",
        f"bob     on_call     {since}  -       1701234567.42",
        f"carmen  available   {since}  -       -",
    ]


async def test_actions_change_the_agent_through_the_api(service: Service) -> None:
    result = await service.cli("agents", "login", "alice")
    assert (result.exit_code, result.stdout) == (0, "alice: available\n"), result.output
    result = await service.cli("agents", "pause", "alice", REASON)
    assert (result.exit_code, result.stdout) == (0, f"alice: paused ({REASON})\n")
    listed = (await service.cli("agents", "list")).stdout.splitlines()
    assert re.fullmatch(rf"alice +paused +\S+ \S+ +{REASON} +-", listed[1]), listed
    result = await service.cli("agents", "unpause", "alice")
    assert result.stdout == "alice: available\n"
    result = await service.cli("agents", "logout", "alice")
    assert result.stdout == "alice: logged_out\n"
    assert service.changed == ["alice"] * 4
    assert (await service.store.get("alice", T0)).status is AgentStatus.LOGGED_OUT


async def test_end_wrapup_and_a_pause_pending_during_a_call(service: Service) -> None:
    store = service.store
    await store.apply("bob", Login(), T0)
    await store.apply("bob", Reserve("c1"), T0)
    await store.apply("bob", Answer("c1"), T0)
    result = await service.cli("agents", "pause", "bob", REASON)
    assert result.stdout == f"bob: on_call (pause pending: {REASON})\n"
    await store.apply("bob", Hangup("c1", dt.timedelta(minutes=2)), T0)
    result = await service.cli("agents", "end-wrapup", "bob")
    assert (result.exit_code, result.stdout) == (0, f"bob: paused ({REASON})\n")


#: Every reason the API accepts: the example's, the tests' own, the router's no_answer.
KNOWN_REASONS = ", ".join(sorted({REASON, "no_answer", *config_with_pause_reason().pause_reasons}))


@pytest.mark.parametrize(("args", "message"), [
    (("logout", "bob"), "Error: agent 'bob': logout is not allowed while logged_out"),
    (("login", "zoe"), "Error: no agent 'zoe' (agents: alice, bob, carmen)"),
    (("pause", "alice", "siesta"),
     f"Error: reason: unknown pause reason 'siesta' (known: {KNOWN_REASONS})"),
    (("unpause", "a/../../x"), "Error: no agent 'a/../../x' (agents: alice, bob, carmen)"),
])
async def test_a_refusal_is_the_apis_message_and_exit_1(
        service: Service, args: tuple[str, ...], message: str) -> None:
    result = await service.cli("agents", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output
    assert service.changed == []


async def test_a_wrong_token_is_reported(service: Service) -> None:
    secrets = service.home / "secrets.json"
    ensure_secrets(secrets, {})
    data = json.loads(secrets.read_text())
    data["api_token"] = "x" * 43
    secrets.write_text(json.dumps(data))
    result = await service.cli("agents", "list")
    assert result.exit_code == 1
    assert "Error: missing or wrong token" in result.stderr


def _not_running(result: Result, home: Path) -> None:
    assert result.exit_code == 1, result.output
    assert "is `callcenter run` or `callcenter serve` running?" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [("list",), ("login", "alice"), ("pause", "alice", "x")])
def test_no_service_is_a_clear_error(tmp_path: Path, command: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), "agents", *command])
    _not_running(result, home)
    assert f"no callcenter service is running in {home}" in result.stderr


def test_a_dead_service_left_api_json_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_token(home / "secrets.json")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    write_endpoint(home, f"http://127.0.0.1:{free_port()}", pid=int(gone.stdout))
    result = CliRunner().invoke(main, ["--home", str(home), "agents", "list"])
    _not_running(result, home)


def test_a_service_that_stopped_answering(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_token(home / "secrets.json")
    port = free_port()  # nobody listens there
    write_endpoint(home, f"http://127.0.0.1:{port}", pid=os.getpid())
    result = CliRunner().invoke(main, ["--home", str(home), "agents", "list"])
    _not_running(result, home)
    assert f"the callcenter API at http://127.0.0.1:{port} does not answer" in result.stderr
