"""The HTTP API's recording routes on a real migrated SQLite database and a recordings
directory on disk: a call's recordings for whoever may see the call (admin all, a
supervisor its queues', an agent its own), the file itself, never through a symlink,
and 404s that say why; every JSON answer valid against the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.agents.rules import rules_from_config
from callcenter.agents.store import AgentStore
from callcenter.storage.models import QueuedCall, Recording
from callcenter.web import TokenBook, create_api_app, users_from_config
from callcenter.web.api import document
from tests.web_api import T0, TOKENS, config_with_pause_reason

DOC_URI = "urn:callcenter:openapi"


def write_wav(path: Path, seconds: float) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(bytes(range(256)) * int(seconds * 62.5))
    return path.read_bytes()


async def add_call(sessions: async_sessionmaker[AsyncSession], channel: str, queue: str,
                   agent: str, path: str | None) -> int:
    async with sessions.begin() as session:
        call = QueuedCall(channel_id=channel, queue=queue, entered_at=T0, agent=agent,
                          answered_at=T0 + dt.timedelta(seconds=3),
                          ended_at=T0 + dt.timedelta(seconds=10))
        session.add(call)
        await session.flush()
        row = Recording(queued_call_id=call.id, queue=queue, agent=agent,
                        name=f"{queue}/{channel}-o1", format="wav",
                        started_at=T0 + dt.timedelta(seconds=3),
                        ended_at=T0 + dt.timedelta(seconds=10), path=path,
                        duration=7.0 if path else None, size=1 if path else None)
        session.add(row)
        await session.flush()
        return row.id


class Client:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def get(self, user: str, path: str) -> tuple[int, dict | bytes, str]:
        async with self.client.get(path, headers={
                "Authorization": f"Bearer {TOKENS[user]}"}) as response:
            if response.content_type == "application/json":
                return response.status, await response.json(), response.content_type
            return response.status, await response.read(), response.content_type


@pytest.fixture
async def api(tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
              ) -> AsyncIterator[tuple[Client, dict[str, int], dict[str, bytes]]]:
    config = config_with_pause_reason()
    root = tmp_path / "recording"
    audio = {"sales": write_wav(root / "sales" / "c-1-o1.wav", 0.5),
             "tech": write_wav(root / "tech_support" / "c-2-o1.wav", 0.25)}
    outside = write_wav(tmp_path / "outside.wav", 0.1)
    assert outside
    (root / "sales" / "c-4-o1.wav").symlink_to(tmp_path / "outside.wav")
    ids = {"sales": await add_call(sessions, "c-1", "sales", "alice", "sales/c-1-o1.wav"),
           "tech": await add_call(sessions, "c-2", "tech_support", "bob",
                                  "tech_support/c-2-o1.wav"),
           "live": await add_call(sessions, "c-3", "sales", "carmen", None),
           "link": await add_call(sessions, "c-4", "sales", "alice", "sales/c-4-o1.wav"),
           "gone": await add_call(sessions, "c-5", "sales", "alice", "sales/c-5-o1.wav")}
    app = create_api_app(config=config, store=AgentStore(sessions, rules_from_config(config)),
                         sessions=sessions, clock=lambda: T0, recordings=root,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Client(client), ids, audio


def valid(answer: object, schema: str) -> None:
    registry = Registry().with_resource(DOC_URI, Resource.opaque(document()))
    Draft202012Validator({"$ref": f"{DOC_URI}#/components/schemas/{schema}"},
                         registry=registry).validate(answer)


@pytest.mark.parametrize(("user", "channel", "status"), [
    ("admin", "c-1", 200), ("admin", "c-2", 200),
    ("sue", "c-1", 200), ("sue", "c-2", 403),          # supervisor of sales only
    ("sam", "c-2", 200), ("sam", "c-1", 403),          # supervisor of tech_support only
    ("alice_phone", "c-1", 200), ("alice_phone", "c-3", 403),  # her call; carmen's
    ("alice_phone", "c-2", 403),
    ("admin", "c-none", 404), ("sue", "%2E%2E", 404),
])
async def test_a_calls_recordings_are_for_who_may_see_the_call(
        api: tuple[Client, dict[str, int], dict[str, bytes]], user: str, channel: str,
        status: int) -> None:
    client, _, _ = api
    got, answer, kind = await client.get(user, f"/api/v1/calls/{channel}/recordings")
    assert (got, kind) == (status, "application/json"), answer
    valid(answer, "RecordingList" if status == 200 else "Error")
    if status == 200:
        assert isinstance(answer, dict)
        [recording] = answer["recordings"]
        assert recording["audio"] == f"/api/v1/recordings/{recording['id']}/audio"
        assert recording["duration"] == 7.0 and recording["format"] == "wav"


async def test_a_recording_in_progress_is_listed_without_a_file(
        api: tuple[Client, dict[str, int], dict[str, bytes]]) -> None:
    client, ids, _ = api
    _, answer, _ = await client.get("admin", "/api/v1/calls/c-3/recordings")
    assert isinstance(answer, dict)
    assert [(r["id"], r["path"], r["audio"]) for r in answer["recordings"]] == [
        (ids["live"], None, None)]


@pytest.mark.parametrize(("user", "which", "status"), [
    ("admin", "sales", 200), ("admin", "tech", 200), ("sue", "sales", 200),
    ("sue", "tech", 403), ("alice_phone", "sales", 200), ("alice_phone", "tech", 403),
])
async def test_the_file_is_served_to_who_may_see_the_call(
        api: tuple[Client, dict[str, int], dict[str, bytes]], user: str, which: str,
        status: int) -> None:
    client, ids, audio = api
    got, body, kind = await client.get(user, f"/api/v1/recordings/{ids[which]}/audio")
    assert got == status
    if status == 200:
        assert (kind, body) == ("audio/wav", audio[which])
    else:
        valid(body, "Error")


@pytest.mark.parametrize("which", ["live", "link", "gone", "0", "x", "-1", "1.0", "9" * 40])
async def test_no_file_no_symlink_no_such_recording_is_a_404(
        api: tuple[Client, dict[str, int], dict[str, bytes]], which: str) -> None:
    client, ids, _ = api
    ref = ids.get(which, which)
    got, body, kind = await client.get("admin", f"/api/v1/recordings/{ref}/audio")
    assert (got, kind) == (404, "application/json"), body
    valid(body, "Error")
    assert isinstance(body, dict) and "recording" in body["error"]


async def test_without_a_recordings_directory_files_are_not_served(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    config = config_with_pause_reason()
    recording = await add_call(sessions, "c-9", "sales", "alice", "sales/c-9-o1.wav")
    app = create_api_app(config=config, store=AgentStore(sessions, rules_from_config(config)),
                         sessions=sessions, clock=lambda: T0,
                         tokens=TokenBook.fixed(users_from_config(config), TOKENS))
    async with TestClient(TestServer(app, host="127.0.0.1")) as raw:
        got, body, _ = await Client(raw).get("admin", f"/api/v1/recordings/{recording}/audio")
    assert got == 404 and isinstance(body, dict)
    assert "no recordings directory" in body["error"]


def test_the_audio_route_is_documented_as_a_file() -> None:
    operation = document()["paths"]["/api/v1/recordings/{recording}/audio"]["get"]
    assert operation["responses"]["200"]["content"] == {
        "audio/*": {"schema": {"type": "string", "contentMediaType": "audio/*"}}}
