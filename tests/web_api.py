"""Helpers shared by the HTTP API tests: the example config with a pause reason and API
users of every role, and the API on a real migrated SQLite database.

Users (the example: alice and carmen serve sales and customer_service, bob tech_support):
the built-in ``admin`` (:data:`TOKEN`), ``sue`` supervising sales, ``sam`` supervising
tech_support, ``alice_phone`` the agent alice."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.store import AgentStore
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from callcenter.web import TokenBook, create_api_app, users_from_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example"
TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
#: A pause reason of the tests' own (the example may define others).
REASON = "api_test_break"
PAUSE_YAML = f'pause_reasons:\n  {REASON}: {{code: "97", description: A test break}}\n'
USERS_YAML = """\
api_users:
  sue: {role: supervisor, queues: [sales]}
  sam: {role: supervisor, queues: [tech_support]}
  alice_phone: {role: agent, agent: alice}
  boss: {role: admin}
"""
#: Every user's token (``admin``: the built-in admin's).
TOKENS = {"admin": TOKEN, "sue": "sue-token-0123456789abcdefghijklmnopqrstuvw",
          "sam": "sam-token-0123456789abcdefghijklmnopqrstuvw",
          "alice_phone": "alice-token-0123456789abcdefghijklmnopqrstu",
          "boss": "boss-token-0123456789abcdefghijklmnopqrstuv"}
T0 = dt.datetime(2026, 11, 30, 21, 0, tzinfo=dt.UTC)


def config_with_pause_reason(config_dir: Path = EXAMPLE) -> CallCenterConfig:
    """The example's config plus the tests' pause reason and API users."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "example"
        shutil.copytree(config_dir, copy)
        (copy / "api_test_pause.yaml").write_text(PAUSE_YAML)
        (copy / "api_test_users.yaml").write_text(USERS_YAML)
        return load_config(copy).config


class Clock:
    """The API's "now"; tests move it."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Api:
    client: TestClient
    store: AgentStore
    clock: Clock
    changed: list[str] = field(default_factory=list)

    def headers(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def as_user(self, user: str) -> dict[str, str]:
        return self.headers(TOKENS[user])


@asynccontextmanager
async def running_api(config: CallCenterConfig, sessions: async_sessionmaker[AsyncSession],
                      *, hook: Callable[[str], None] | None = None,
                      hang_up: Callable[[str], Awaitable[bool]] | None = None,
                      preview: Callable[[], Any] | None = None,
                      handoff: Callable[[], Any] | None = None,
                      ) -> AsyncIterator[Api]:
    """The API on a free loopback port, its hook recording the agents it was told about
    (then calling *hook*); *hang_up*: the service's hang-up (none: no Asterisk);
    *preview*: returns the preview dialer (none: no dialer); *handoff*: returns the warm
    transfer's PBX side (none: no PBX)."""
    store = AgentStore(sessions, rules_from_config(config), node="test")
    clock = Clock()
    changed: list[str] = []

    def on_agent_change(agent: str) -> None:
        changed.append(agent)
        if hook is not None:
            hook(agent)

    tokens = TokenBook.fixed(users_from_config(config), TOKENS)
    app = create_api_app(config=config, store=store, sessions=sessions, tokens=tokens,
                         clock=clock, on_agent_change=on_agent_change,
                         **({"hang_up": hang_up} if hang_up is not None else {}),
                         **({"preview": preview} if preview is not None else {}),
                         **({"handoff": handoff} if handoff is not None else {}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Api(client, store, clock, changed)
