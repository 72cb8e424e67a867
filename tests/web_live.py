"""The HTTP API with its live parts (event stream hub, supervision hook) for unit tests:
as :func:`tests.web_api.running_api`, on aiohttp's test server and a real migrated SQLite
database, with the example config whose bob supervises sales (an agent with ``role:
supervisor``, as the feature codes need) and the API users of :mod:`tests.web_api`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.store import AgentStore
from callcenter.config.models import CallCenterConfig
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.stream import StreamHub
from callcenter.web.supervise import SuperviseHook, no_router
from tests.web_api import TOKENS, Clock, config_with_pause_reason


def live_config() -> CallCenterConfig:
    """The tests' API config, bob made a supervisor of sales (his phone takes snoops)."""
    config = config_with_pause_reason()
    agents = dict(config.agents)
    agents["bob"] = agents["bob"].model_copy(update={"role": "supervisor",
                                                     "supervises": ("sales",)})
    return config.model_copy(update={"agents": agents})


@dataclass
class LiveApi:
    client: TestClient
    store: AgentStore
    clock: Clock
    hub: StreamHub

    def as_user(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[user]}"}


@asynccontextmanager
async def live_api(config: CallCenterConfig, sessions: async_sessionmaker[AsyncSession], *,
                   supervise: SuperviseHook = no_router,
                   hub: StreamHub | None = None) -> AsyncIterator[LiveApi]:
    store = AgentStore(sessions, rules_from_config(config), node="test")
    clock = Clock()
    hub = hub or StreamHub()
    app = create_api_app(config=config, store=store, sessions=sessions, clock=clock,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS),
                         events=hub, supervise=supervise)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield LiveApi(client, store, clock, hub)


def assert_schema(answer: object, component: str) -> None:
    """*answer* is what the OpenAPI document's *component* says."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from callcenter.web.api import document

    uri = "urn:callcenter:openapi"
    registry = Registry().with_resource(uri, Resource.opaque(document()))
    Draft202012Validator({"$ref": f"{uri}#/components/schemas/{component}"},
                         registry=registry).validate(answer)
