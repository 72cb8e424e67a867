"""CallCenterService: the services' wiring shared by serve, run and agi serve.

Real pieces on free loopback ports (FastAGI, the HTTP API, a migrated SQLite file);
components are plain coroutines whose fate the tests observe through events."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from callcenter.asterisk.secrets import stored_api_token
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from callcenter.service import CallCenterService, ComponentFailed, ServiceError
from callcenter.storage import default_sqlite_url
from callcenter.testing.ports import free_port
from callcenter.web.endpoint import read_endpoint
from tests.conftest import _example_copy


@pytest.fixture
def config(tmp_path: Path) -> CallCenterConfig:
    return load_config(_example_copy(tmp_path / "example", free_port())).config


@pytest.fixture
async def service(config: CallCenterConfig, tmp_path: Path) -> AsyncIterator[CallCenterService]:
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 node="test") as running:
        yield running


def _refused(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


async def _get(url: str, token: str) -> dict:
    def fetch() -> dict:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return json.loads(response.read())
    return await asyncio.to_thread(fetch)


async def test_enter_opens_fastagi_and_the_api_and_exit_closes_both(
        config: CallCenterConfig, tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 node="test") as service:
        host, port = service.fastagi_address  # type: ignore[misc]
        assert port == config.settings.fastagi.port and not _refused(host, port)
        api = config.settings.http_api
        assert service.api_url == f"http://127.0.0.1:{api.port}"
        endpoint = read_endpoint(home)
        assert endpoint is not None and endpoint.url == service.api_url and endpoint.alive
        token = stored_api_token(home / "secrets.json")
        assert token is not None
        assert (home / "secrets.json").stat().st_mode & 0o777 == 0o600
        agents = (await _get(f"{service.api_url}/api/v1/agents", token))["agents"]
        assert [(a["name"], a["status"], a["version"]) for a in agents] == [
            ("alice", "logged_out", 0), ("bob", "logged_out", 0), ("carmen", "logged_out", 0)]
        # the configured agents have rows (ensure), so a router finds them
        assert [s.agent for s in await service.store.all()] == ["alice", "bob", "carmen"]
    assert _refused(host, port)
    assert _refused("127.0.0.1", api.port)
    assert read_endpoint(home) is None


async def test_stop_cancels_every_component_and_run_returns(service: CallCenterService) -> None:
    started, cancelled = asyncio.Event(), []

    async def worker(name: str) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    service.add("one", lambda: worker("one"))
    service.add("two", lambda: worker("two"))
    stop = asyncio.Event()
    runner = asyncio.create_task(service.run(stop))
    await started.wait()
    stop.set()
    async with asyncio.timeout(5):
        await runner
    assert sorted(cancelled) == ["one", "two"]


async def test_a_failing_component_stops_the_others_and_says_which(
        service: CallCenterService, caplog: pytest.LogCaptureFixture) -> None:
    cancelled = asyncio.Event()

    async def steady() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def broken() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("ARI refused the websocket")

    service.add("steady", steady)
    service.add("queue router", broken)
    with caplog.at_level(logging.ERROR, logger="callcenter.service"), \
            pytest.raises(ComponentFailed) as raised:
        async with asyncio.timeout(5):
            await service.run(asyncio.Event())
    assert str(raised.value) == ("queue router failed: ARI refused the websocket; "
                                 "the call center stops")
    assert raised.value.name == "queue router"
    assert cancelled.is_set()
    assert "queue router failed: ARI refused the websocket" in caplog.text


async def test_a_component_that_returns_stops_the_service(service: CallCenterService) -> None:
    async def quits() -> None:
        return None

    service.add("watchdog", quits)
    with pytest.raises(ComponentFailed, match="^watchdog stopped on its own; the call center "
                                              "stops$"):
        async with asyncio.timeout(5):
            await service.run(asyncio.Event())


async def test_agent_changes_through_the_api_reach_the_listeners(
        service: CallCenterService) -> None:
    heard: list[str] = []
    heard_alice = asyncio.Event()

    def listener(agent: str) -> None:
        heard.append(agent)
        heard_alice.set()

    def broken(agent: str) -> None:
        raise RuntimeError("a listener's bug")

    async def idle() -> None:
        await asyncio.Event().wait()

    service.add("broken", idle, on_agent_change=broken)
    service.add("router", idle, on_agent_change=listener)
    token = stored_api_token(service.home / "secrets.json")

    def login() -> dict:
        request = urllib.request.Request(f"{service.api_url}/api/v1/agents/alice/login",
                                         method="POST",
                                         headers={"Authorization": f"Bearer {token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return json.loads(response.read())

    assert (await asyncio.to_thread(login))["status"] == "available"
    await asyncio.wait_for(heard_alice.wait(), 5)
    assert heard == ["alice"]


async def test_a_busy_api_port_is_a_clear_error_and_nothing_stays_open(
        config: CallCenterConfig, tmp_path: Path) -> None:
    home = tmp_path / "home"
    api = config.settings.http_api
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", api.port))
        holder.listen()
        with pytest.raises(ServiceError) as raised:
            async with CallCenterService(config, home=home, db_url=default_sqlite_url(home)):
                pytest.fail("the service started on a busy port")
    assert str(raised.value) == (f"HTTP API cannot listen on 127.0.0.1:{api.port}: Address "
                                 "already in use; choose another port: settings.http_api.port")
    # FastAGI, started before, was stopped again
    assert _refused("127.0.0.1", config.settings.fastagi.port)
    assert read_endpoint(home) is None


async def test_ari_needs_an_instance(config: CallCenterConfig, tmp_path: Path) -> None:
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 fastagi=False, http_api=False) as service:
        assert service.fastagi_address is None and service.api_url is None
        with pytest.raises(ServiceError, match="no Asterisk instance"):
            service.ari  # noqa: B018
