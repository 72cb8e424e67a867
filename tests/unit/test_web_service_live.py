"""The live API as ``callcenter serve`` wires it (a real :class:`CallCenterService`, no
Asterisk): the stream hub is one of the service's event listeners and its events reach a
websocket; the router's supervision added with the component serves listen (before it,
a 503); ``/metrics`` is for admins and supervisors, not agents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from callcenter import events as ev
from callcenter.asterisk.secrets import stored_api_token, stored_user_token
from callcenter.config.loader import load_config
from callcenter.service import CallCenterService
from callcenter.storage import default_sqlite_url
from callcenter.testing.ports import free_port
from tests.conftest import _example_copy
from tests.unit.test_web_supervise import FakeSupervision
from tests.web_api import T0, USERS_YAML


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[CallCenterService]:
    example = _example_copy(tmp_path / "example", free_port())
    (example / "api_test_users.yaml").write_text(USERS_YAML)
    config = load_config(example).config
    home = tmp_path / "home"
    async with CallCenterService(config, home=home, db_url=default_sqlite_url(home),
                                 node="test") as running:
        yield running


def _token(service: CallCenterService, user: str) -> dict[str, str]:
    path = service.home / "secrets.json"
    token = stored_api_token(path) if user == "admin" else stored_user_token(path, user)
    assert token
    return {"Authorization": f"Bearer {token}"}


async def test_the_service_feeds_its_event_stream(service: CallCenterService) -> None:
    assert service.stream in service.event_listeners
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{service.api_url}/api/v1/events", headers=_token(service, "sue")) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
        await service.stream.handle(ev.CallerEntered(
            at=T0, queue="sales", call="c-1", caller_number="1", caller_name="", position=1))
        message = await ws.receive_json(timeout=5)
        assert (message["type"], message["call"]) == ("CallerEntered", "c-1")


async def test_listen_goes_to_the_supervision_added_with_the_router(
        service: CallCenterService) -> None:
    url = f"{service.api_url}/api/v1/agents/carmen/listen"
    async with aiohttp.ClientSession(headers=_token(service, "sue")) as http:
        async with http.post(url, json={"supervisor": "bob"}) as response:
            assert response.status == 503, await response.text()
        supervision = FakeSupervision()

        async def router() -> None:
            """Stands in for the queue router's run()."""

        service.add("queue router", router, supervision=supervision)
        async with http.post(url, json={"supervisor": "bob"}) as response:
            assert response.status == 200, await response.text()
        assert supervision.asked == [("bob", "carmen", "listen")]


@pytest.mark.parametrize(("user", "status"), [
    ("admin", 200), ("sue", 200), ("alice_phone", 403)])
async def test_metrics_are_for_admins_and_supervisors(service: CallCenterService, user: str,
                                                      status: int) -> None:
    async with aiohttp.ClientSession() as http, http.get(
            f"{service.api_url}/metrics", headers=_token(service, user)) as response:
        assert response.status == status, await response.text()
        if status == 403:
            assert (await response.json())["error"] == (
                "user 'alice_phone' (agent) may not read the metrics")
