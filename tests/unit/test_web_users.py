"""API users: ``api_users`` in the YAML (validated, errors located), their tokens in the
home's secrets file (0600, generated once, kept, rotated), ``callcenter api token``, and
a running API that refuses a rotated token from its next request."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.store import AgentStore
from callcenter.asterisk.secrets import API_TOKEN, API_TOKENS, user_tokens
from callcenter.cli import main
from callcenter.storage.queued_calls import QueuedCallRepository
from callcenter.testing.ports import free_port
from callcenter.web import ApiServer, TokenBook, create_api_app, users_from_config
from callcenter.web.access import ApiUser
from tests.unit.test_checks import errors, find, lines, load, write
from tests.web_api import T0, USERS_YAML, Clock, config_with_pause_reason

# -- config --------------------------------------------------------------------------


def test_api_users_load_with_their_roles(tmp_path: Path) -> None:
    config = load(tmp_path, api="""\
        api_users:
          sue: {role: supervisor, queues: [sales]}
          alice_phone: {role: agent, agent: alice}
          ops: {role: admin}
        """).config
    users = users_from_config(config)
    assert users == {
        "admin": ApiUser("admin", "admin"),
        "sue": ApiUser("sue", "supervisor", None, frozenset({"sales"})),
        "alice_phone": ApiUser("alice_phone", "agent", "alice"),
        "ops": ApiUser("ops", "admin"),
    }


def test_no_api_users_leaves_the_built_in_admin(tmp_path: Path) -> None:
    assert list(users_from_config(load(tmp_path).config)) == ["admin"]


@pytest.mark.parametrize(("user", "path", "message", "where"), [
    ("sue: {role: supervisor, queues: [sales, suport]}", "api_users.sue.queues[1]",
     "unknown queue 'suport' (known: sales)", (2, 43)),
    ("al: {role: agent, agent: alicia}", "api_users.al.agent",
     "unknown agent 'alicia' (known: alice)", (2, 28)),
    ("al: {role: agent}", "api_users.al",
     "an agent user needs 'agent': the agent it acts as", (2, 7)),
    ("sue: {role: supervisor}", "api_users.sue",
     "a supervisor needs 'queues': the queues it supervises", (2, 8)),
    ("ops: {role: admin, queues: [sales]}", "api_users.ops",
     "'queues' is for role supervisor only (this user is a admin)", (2, 8)),
    ("sue: {role: supervisor, queues: [sales], agent: alice}", "api_users.sue",
     "'agent' is for role agent only (this user is a supervisor)", (2, 8)),
    ("ops: {role: root}", "api_users.ops.role", "root", (2, 15)),
    ("ops: {role: admin, token: abc}", "api_users.ops",
     "unknown key 'token' (allowed: agent, queues, role)", (2, 22)),
    ("admin: {role: admin}", "api_users",
     "'admin' is the built-in admin of the HTTP API", (2, 3)),
    ("Bad-Name: {role: admin}", "api_users", "invalid key 'Bad-Name'", (2, 3)),
])
def test_a_bad_api_user_is_a_located_error(tmp_path: Path, user: str, path: str,
                                           message: str, where: tuple[int, int]) -> None:
    errs = errors(tmp_path, api=f"api_users:\n  {user}\n")
    error = find(errs, path)
    assert message in error.message, lines(errs)
    assert (error.line, error.column) == where, lines(errs)
    assert Path(error.file).name == "api.yaml"


# -- secrets ---------------------------------------------------------------------


def test_user_tokens_are_generated_once_kept_and_the_file_stays_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = user_tokens(path, ["sue", "sam"])
    assert first["sue"] != first["sam"] and len(first["sue"]) >= 40
    again = user_tokens(path, ["sam", "sue", "zed"])
    assert again == first | {"zed": again["zed"]}
    assert user_tokens(path, ["zed"]) == {"zed": again["zed"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())[API_TOKENS]["sue"] == first["sue"]


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--home", str(home), "api", "token", *args])
    return result.exit_code, result.stdout, result.stderr


def test_api_token_prints_generates_and_rotates(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "cfg").mkdir()
    # BASE has one queue, sales.
    config_dir = write(tmp_path / "cfg", api=USERS_YAML.replace("tech_support", "sales"))
    code, out, err = _cli(home, "sue")
    assert code == 1 and "no token for API user 'sue'" in err
    code, out, err = _cli(home, "sue", "--config", str(config_dir))
    assert code == 0, err
    sue = out.strip()
    secrets = json.loads((home / "secrets.json").read_text())
    assert secrets[API_TOKENS]["sue"] == sue
    assert _cli(home, "sue")[1].strip() == sue
    code, out, _ = _cli(home, "sue", "--rotate")
    assert code == 0 and out.strip() != sue
    assert json.loads((home / "secrets.json").read_text())[API_TOKENS]["sue"] == out.strip()
    code, out, err = _cli(home, "zoe", "--config", str(config_dir))
    assert code == 1
    assert "no API user 'zoe' in the config (api_users: admin, alice_phone, boss, sam, sue)" in err
    code, admin, _ = _cli(home, "admin")
    assert admin.strip() == json.loads((home / "secrets.json").read_text())[API_TOKEN]
    code, rotated, _ = _cli(home, "admin", "--rotate")
    assert rotated.strip() != admin.strip()
    assert json.loads((home / "secrets.json").read_text())[API_TOKEN] == rotated.strip()
    assert stat.S_IMODE((home / "secrets.json").stat().st_mode) == 0o600


def test_an_unreadable_secrets_file_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "secrets.json").write_text("{not json")
    code, _, err = _cli(home, "admin")
    assert code == 1
    assert "cannot read the secrets file" in err and "Traceback" not in err


# -- a running API reads the file again ------------------------------------------


async def _status(url: str, token: str) -> int:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(
            f"{url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status


async def test_a_rotated_token_is_refused_by_the_running_api(
        tmp_path: Path, sessions: async_sessionmaker[AsyncSession]) -> None:
    config = config_with_pause_reason()
    home = tmp_path / "home"
    path = home / "secrets.json"
    tokens = TokenBook.from_secrets(path, users_from_config(config))
    stored = json.loads(path.read_text())
    assert set(stored[API_TOKENS]) == {"sue", "sam", "alice_phone", "boss"}
    store = AgentStore(sessions, rules_from_config(config), node="test")
    app = create_api_app(config=config, store=store, sessions=sessions, tokens=tokens,
                         clock=Clock(T0))
    server = ApiServer(app, host="127.0.0.1", port=free_port())
    await server.start()
    try:
        old = stored[API_TOKENS]["sue"]
        assert await _status(server.url, old) == 200
        assert await _status(server.url, stored[API_TOKEN]) == 200
        code, out, err = await asyncio.to_thread(_cli, home, "sue", "--rotate")
        assert code == 0, err
        assert await _status(server.url, old) == 401
        assert await _status(server.url, out.strip()) == 200
        assert await _status(server.url, stored[API_TOKENS]["sam"]) == 200
    finally:
        await server.stop()


async def test_the_service_generates_every_users_token_and_answers_it(tmp_path: Path) -> None:
    """``CallCenterService`` wires the API to the home's secrets: every api_users entry
    gets a token there at start, each answers as its user, and without an Asterisk a
    hang-up is a 503, not a 500."""
    from callcenter.config.loader import load_config
    from callcenter.config.models import ApiUser as ApiUserConfig
    from callcenter.service import CallCenterService
    from callcenter.storage import default_sqlite_url
    from tests.conftest import _example_copy

    config = load_config(_example_copy(tmp_path / "example", free_port())).config
    config = config.model_copy(update={"api_users": {
        "sue": ApiUserConfig(role="supervisor", queues=("sales",))}})
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 node="test", fastagi=False) as service:
        secrets = json.loads((home / "secrets.json").read_text())
        assert stat.S_IMODE((home / "secrets.json").stat().st_mode) == 0o600
        assert set(secrets[API_TOKENS]) == {"sue"}
        import aiohttp

        async with aiohttp.ClientSession() as http:
            for token, name in [(secrets[API_TOKENS]["sue"], "sue"),
                                (secrets[API_TOKEN], "admin")]:
                async with http.get(f"{service.api_url}/api/v1/me",
                                    headers={"Authorization": f"Bearer {token}"}) as response:
                    assert (await response.json())["name"] == name
            admin = {"Authorization": f"Bearer {secrets[API_TOKEN]}"}
            async with http.post(f"{service.api_url}/api/v1/calls/c-1/hangup",
                                 headers=admin) as response:
                assert response.status == 404  # no such call: checked before asking the PBX
            async with service.sessions.begin() as session:
                await QueuedCallRepository(session).enter_by_id("c-1", "sales", entered_at=T0)
            async with http.post(f"{service.api_url}/api/v1/calls/c-1/hangup",
                                 headers=admin) as response:
                assert response.status == 503
                assert "no Asterisk connection" in (await response.json())["error"]
            async with http.get(f"{service.api_url}/openapi.json") as response:
                assert (await response.json())["openapi"] == "3.1.0"
