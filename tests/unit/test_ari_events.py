"""ARI events: typed parsing of payloads recorded from a real Asterisk 22.10, and the events
websocket / REST error mapping of ARIClient against a protocol-speaking fake ARI (aiohttp).

The RECORDED payloads are verbatim websocket frames captured from Asterisk 22.10.1 (Local
channel ``Local/s@helper-stasis`` whose ;2 half runs ``Stasis(test-app,arg1,arg 2)``; then
ARI answer, set variable, DTMF, bridge add/remove, play sound:hello-world, hangup).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Self

import aiohttp
import pytest
from aiohttp import web

from callcenter.asterisk.ari import (
    ARIAuthError,
    ARIClient,
    ARIConnectionError,
    ARIError,
    ARINotFound,
    BridgeCreated,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelVarset,
    ContactStatusChange,
    DeviceStateChanged,
    Dial,
    Endpoint,
    EndpointStateChange,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
    parse_event_json,
)

RECORDED: dict[str, str] = {
    "StasisStart": '{"type":"StasisStart","timestamp":"2026-11-25T08:30:10.335+0000","args":["arg1","arg 2"],"channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Ring","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelStateChange": '{"type":"ChannelStateChange","timestamp":"2026-11-25T08:30:11.338+0000","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelVarset": '{"variable":"CC_QUEUE","value":"sales","type":"ChannelVarset","timestamp":"2026-11-25T08:30:11.339+0000","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelDtmfReceived": '{"type":"ChannelDtmfReceived","timestamp":"2026-11-25T08:30:11.540+0000","digit":"5","duration_ms":100,"channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelEnteredBridge": '{"type":"ChannelEnteredBridge","timestamp":"2026-11-25T08:30:11.843+0000","bridge":{"id":"757fd15c-17a5-4f0a-9db6-5cc8911e1014","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"","channels":["1795595410.1"],"creationtime":"2026-11-25T08:30:11.842+0000","video_mode":"talker"},"channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelLeftBridge": '{"type":"ChannelLeftBridge","timestamp":"2026-11-25T08:30:12.144+0000","bridge":{"id":"757fd15c-17a5-4f0a-9db6-5cc8911e1014","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"stasis","creator":"Stasis","name":"","channels":[],"creationtime":"2026-11-25T08:30:11.842+0000","video_mode":"talker"},"channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "PlaybackStarted": '{"type":"PlaybackStarted","timestamp":"2026-11-25T08:30:12.145+0000","playback":{"id":"118becce-97a9-40dd-b001-775a98f12883","media_uri":"sound:hello-world","target_uri":"channel:1795595410.1","language":"en","state":"playing"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "PlaybackFinished": '{"type":"PlaybackFinished","timestamp":"2026-11-25T08:30:13.567+0000","playback":{"id":"118becce-97a9-40dd-b001-775a98f12883","media_uri":"sound:hello-world","target_uri":"channel:1795595410.1","language":"en","state":"done"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelHangupRequest": '{"cause":32,"soft":true,"type":"ChannelHangupRequest","timestamp":"2026-11-25T08:30:13.749+0000","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "StasisEnd": '{"type":"StasisEnd","timestamp":"2026-11-25T08:30:13.749+0000","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"Stasis","app_data":"test-app,arg1,arg 2"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelDestroyed": '{"type":"ChannelDestroyed","timestamp":"2026-11-25T08:30:13.749+0000","cause":16,"cause_txt":"Normal Clearing","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Up","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":2,"app_name":"","app_data":""},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
    "ChannelDialplan": '{"type":"ChannelDialplan","timestamp":"2026-11-25T08:30:10.334+0000","dialplan_app":"NoOp","dialplan_app_data":"into stasis","channel":{"id":"1795595410.1","name":"Local/s@helper-stasis-00000000;2","state":"Ring","protocol_id":"","caller":{"name":"Zoë Agent","number":"1001"},"connected":{"name":"Zoë Agent","number":"1001"},"accountcode":"","dialplan":{"context":"helper-stasis","exten":"s","priority":1,"app_name":"NoOp","app_data":"into stasis"},"creationtime":"2026-11-25T08:30:10.334+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"test-app"}',
}

EXPECTED_CLASS = {
    "StasisStart": StasisStart,
    "ChannelStateChange": ChannelStateChange,
    "ChannelVarset": ChannelVarset,
    "ChannelDtmfReceived": ChannelDtmfReceived,
    "ChannelEnteredBridge": ChannelEnteredBridge,
    "ChannelLeftBridge": ChannelLeftBridge,
    "PlaybackStarted": PlaybackStarted,
    "PlaybackFinished": PlaybackFinished,
    "ChannelHangupRequest": ChannelHangupRequest,
    "StasisEnd": StasisEnd,
    "ChannelDestroyed": ChannelDestroyed,
    "ChannelDialplan": UnknownEvent,  # real, but not modelled
}


def recorded(name: str) -> dict:
    return json.loads(RECORDED[name])


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_recorded_payload_parses_to_its_class_without_warning(name, caplog):
    with caplog.at_level(logging.WARNING):
        event = parse_event_json(RECORDED[name])
    assert type(event) is EXPECTED_CLASS[name]
    assert event.type == name
    assert event.application == "test-app"
    assert event.asterisk_id == "02:fc:00:00:00:01"
    assert event.timestamp is not None and event.timestamp.utcoffset() == timedelta(0)
    assert caplog.records == []


def test_stasis_start_carries_dialplan_args_and_channel():
    event = parse_event(recorded("StasisStart"))
    assert isinstance(event, StasisStart)
    # Stasis(test-app,arg1,arg 2): args in order, the space kept
    assert event.args == ("arg1", "arg 2")
    assert event.replace_channel is None
    channel = event.channel
    assert channel.id == "1795595410.1"
    assert channel.name == "Local/s@helper-stasis-00000000;2"
    assert channel.state == "Ring"
    assert channel.caller.name == "Zoë Agent" and channel.caller.number == "1001"
    assert (
        channel.dialplan.context,
        channel.dialplan.exten,
        channel.dialplan.priority,
    ) == (
        "helper-stasis",
        "s",
        2,
    )
    assert channel.dialplan.app_name == "Stasis"
    assert channel.language == "en"


def test_event_specific_fields():
    dtmf = parse_event(recorded("ChannelDtmfReceived"))
    assert isinstance(dtmf, ChannelDtmfReceived)
    assert (dtmf.digit, dtmf.duration_ms) == ("5", 100)

    varset = parse_event(recorded("ChannelVarset"))
    assert isinstance(varset, ChannelVarset)
    assert (varset.variable, varset.value) == ("CC_QUEUE", "sales")
    assert varset.channel is not None and varset.channel.id == "1795595410.1"

    entered = parse_event(recorded("ChannelEnteredBridge"))
    assert isinstance(entered, ChannelEnteredBridge)
    assert entered.bridge.bridge_type == "mixing"
    assert entered.bridge.channels == ("1795595410.1",)
    left = parse_event(recorded("ChannelLeftBridge"))
    assert isinstance(left, ChannelLeftBridge) and left.bridge.channels == ()

    finished = parse_event(recorded("PlaybackFinished"))
    assert isinstance(finished, PlaybackFinished)
    assert finished.playback.media_uri == "sound:hello-world"
    assert finished.playback.state == "done"
    assert finished.playback.target_uri == "channel:1795595410.1"

    hangup = parse_event(recorded("ChannelHangupRequest"))
    assert isinstance(hangup, ChannelHangupRequest)
    assert hangup.soft is True and hangup.cause == 32

    destroyed = parse_event(recorded("ChannelDestroyed"))
    assert isinstance(destroyed, ChannelDestroyed)
    assert (destroyed.cause, destroyed.cause_txt) == (16, "Normal Clearing")


def test_global_varset_has_no_channel():
    data = recorded("ChannelVarset")
    del data["channel"]
    event = parse_event(data)
    assert isinstance(event, ChannelVarset) and event.channel is None


def test_unknown_type_keeps_raw_without_warning(caplog):
    with caplog.at_level(logging.WARNING):
        event = parse_event(recorded("ChannelDialplan"))
    assert isinstance(event, UnknownEvent)
    assert event.type == "ChannelDialplan"
    assert event.raw["dialplan_app"] == "NoOp"
    assert caplog.records == []


def test_unknown_fields_are_ignored():
    data = recorded("StasisStart")
    data["field_from_asterisk_99"] = {"x": 1}
    data["channel"]["tenantid"] = "t1"
    data["channel"]["dialplan"]["new"] = True
    event = parse_event(data)
    assert isinstance(event, StasisStart) and event.args == ("arg1", "arg 2")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("channel"), id="missing channel"),
        pytest.param(lambda d: d["channel"].pop("id"), id="missing channel.id"),
        pytest.param(lambda d: d.__setitem__("channel", 5), id="channel not an object"),
        pytest.param(lambda d: d.__setitem__("args", "arg1"), id="args not a list"),
        pytest.param(
            lambda d: d["channel"]["dialplan"].__setitem__("priority", "2"),
            id="priority str",
        ),
    ],
)
def test_bad_shape_becomes_unknown_event_with_warning(mutate, caplog):
    data = recorded("StasisStart")
    mutate(data)
    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.ari.events"):
        event = parse_event(data)
    assert isinstance(event, UnknownEvent)
    assert event.type == "StasisStart" and event.raw is data
    assert "StasisStart" in caplog.text


def test_bad_timestamp_does_not_lose_the_event():
    data = recorded("StasisEnd")
    data["timestamp"] = "yesterday"
    event = parse_event(data)
    assert isinstance(event, StasisEnd) and event.timestamp is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"StasisStart"', b"\xff\xfe"])
def test_text_that_is_not_a_json_object_is_skipped_with_warning(text, caplog):
    with caplog.at_level(logging.WARNING, logger="callcenter.asterisk.ari.events"):
        assert parse_event_json(text) is None
    assert len(caplog.records) == 1


def test_missing_type_is_unknown():
    event = parse_event({"application": "test-app"})
    assert isinstance(event, UnknownEvent) and event.type == ""


def test_events_are_frozen():
    event = parse_event(recorded("StasisStart"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.args = ()  # type: ignore[misc]


# ----------------------------------------------------------------------------- fake ARI


class FakeARI:
    """Speaks enough ARI over HTTP + websocket: each websocket connection gets the next
    script of frames; a script ending in None keeps the socket open, else it is closed."""

    def __init__(self, scripts: list[list[str | None]]) -> None:
        self.scripts = scripts
        self.ws_requests: list[web.Request] = []
        self.requests: list[tuple[str, str, dict, object]] = []
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_route("*", "/ari/{tail:.*}", self.rest)
        self.runner = web.AppRunner(app)
        self.base_url = ""

    async def __aenter__(self) -> Self:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.ws_requests.append(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        script = self.scripts.pop(0) if self.scripts else [None]
        for frame in script:
            if frame is None:
                async for _ in ws:  # stay open until the client closes
                    pass
                return ws
            await ws.send_str(frame)
        await ws.close()
        return ws

    async def rest(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            (request.method, request.raw_path, dict(request.query), body)
        )
        if request.method == "POST" and request.path == "/ari/channels":
            return web.json_response(json.loads(RECORDED["StasisStart"])["channel"])
        if request.path == "/ari/asterisk/info":
            return web.Response(
                status=401, text='{"message": "Authentication required"}'
            )
        return web.json_response({"message": "Channel not found"}, status=404)


@pytest.fixture
async def fake_ari() -> AsyncIterator[FakeARI]:
    scripts = [
        [
            RECORDED["StasisStart"],
            "{not json",
            RECORDED["ChannelDialplan"],
            RECORDED["StasisEnd"],
        ],
        [RECORDED["ChannelDestroyed"], None],
    ]
    async with FakeARI(scripts) as server:
        yield server


def client_for(server: FakeARI) -> ARIClient:
    return ARIClient(
        server.base_url,
        username="cc",
        password="s3cret-pw",
        app=["cc-queue", "cc-dialer"],
    )


async def test_event_stream_yields_typed_events_then_raises_on_disconnect(fake_ari):
    async with client_for(fake_ari) as ari:
        received: list[Event] = []
        with pytest.raises(ARIConnectionError):
            async with asyncio.timeout(5):
                async with ari.events() as events:
                    async for event in events:
                        received.append(event)
    # bad JSON frame skipped; unmodelled type delivered as UnknownEvent; order kept
    assert [type(e) for e in received] == [StasisStart, UnknownEvent, StasisEnd]
    request = fake_ari.ws_requests[0]
    assert request.query["app"] == "cc-queue,cc-dialer"
    assert request.query["subscribeAll"] == "false"
    assert request.headers["Authorization"].startswith("Basic ")
    assert "s3cret-pw" not in str(request.url)


async def test_run_event_loop_reconnects_and_resyncs(fake_ari):
    received: list[str] = []
    connected = 0
    done = asyncio.Event()

    async def on_connected() -> None:
        nonlocal connected
        connected += 1

    async def handler(event: Event) -> None:
        received.append(event.type)
        if isinstance(event, ChannelDestroyed):
            done.set()

    async with client_for(fake_ari) as ari, asyncio.TaskGroup() as tg:
        loop_task = tg.create_task(
            ari.run_event_loop(handler, reconnect_delay=0.01, on_connected=on_connected)
        )
        async with asyncio.timeout(5):
            await done.wait()
        loop_task.cancel()
    assert received == [
        "StasisStart",
        "ChannelDialplan",
        "StasisEnd",
        "ChannelDestroyed",
    ]
    assert connected == 2


async def test_rest_errors_map_to_the_hierarchy_and_ids_are_encoded(fake_ari):
    async with client_for(fake_ari) as ari:
        with pytest.raises(ARINotFound) as caught:
            await ari.channels.get("a/b?c#d")
        assert caught.value.status == 404
        assert caught.value.message == "Channel not found"
        assert caught.value.path == "/channels/a%2Fb%3Fc%23d"
        assert fake_ari.requests[-1][1] == "/ari/channels/a%2Fb%3Fc%23d"

        with pytest.raises(ARIError) as caught:
            await ari.asterisk_info()
        # 401/403 have their own type: no retry can fix credentials.
        assert type(caught.value) is ARIAuthError and caught.value.status == 401
        assert "s3cret-pw" not in str(caught.value) and "s3cret-pw" not in repr(ari)


async def test_originate_sends_args_and_variables(fake_ari):
    async with client_for(fake_ari) as ari:
        channel = await ari.channels.originate(
            "Local/s@helper-stasis",
            app_args=["sales", "vip"],
            caller_id='"Zoë" <1001>',
            variables={"CALLERID(name)": "Zoë"},
            timeout=20,
        )
        assert channel.id == "1795595410.1"
        method, path, query, body = fake_ari.requests[-1]
        assert (method, path.split("?")[0]) == ("POST", "/ari/channels")
        assert query["app"] == "cc-queue"  # the client's first app by default
        assert query["appArgs"] == "sales,vip"
        assert query["timeout"] == "20"
        assert body == {"variables": {"CALLERID(name)": "Zoë"}}
        with pytest.raises(ValueError):
            await ari.channels.originate("Local/s@x", app_args=["a,b"])
        with pytest.raises(ValueError):
            await ari.channels.originate(
                "Local/s@x", app="cc-queue", context="from-queue"
            )


async def test_connection_refused_is_ari_connection_error():
    async with aiohttp.ClientSession() as session:
        ari = ARIClient(
            "http://127.0.0.1:1", username="u", password="p", app="a", session=session
        )
        with pytest.raises(ARIConnectionError):
            await ari.asterisk_info()
        with pytest.raises(ARIConnectionError):
            await ari.events().connect()
        await ari.close()
        assert not session.closed  # caller-owned session is left open


# ------------------------------------------------------------- events the router needs
# Shapes of Asterisk 22's ARI models (events.json); Dial, BridgeDestroyed,
# EndpointStateChange and DeviceStateChanged are also parsed from the real Asterisk in
# tests/integration/test_ari_rest.py.

CHANNEL = json.loads(RECORDED["StasisStart"])["channel"]
BRIDGE = json.loads(RECORDED["ChannelEnteredBridge"])["bridge"]
ENDPOINT = {"technology": "PJSIP", "resource": "carmen", "state": "online",
            "channel_ids": ["1795595410.7"]}


def test_router_events_parse_to_typed_objects(caplog):
    with caplog.at_level(logging.WARNING):
        dial = parse_event({"type": "Dial", "peer": CHANNEL | {"id": "offer-1"},
                            "caller": CHANNEL, "dialstatus": "RINGING",
                            "dialstring": "carmen"})
        created = parse_event({"type": "BridgeCreated", "bridge": BRIDGE})
        destroyed = parse_event({"type": "BridgeDestroyed", "bridge": BRIDGE})
        endpoint = parse_event({"type": "EndpointStateChange", "endpoint": ENDPOINT})
        contact = parse_event({"type": "ContactStatusChange", "endpoint": ENDPOINT,
                               "contact_info": {"uri": "sip:carmen@127.0.0.1:5070",
                                                "contact_status": "Reachable",
                                                "aor": "carmen", "roundtrip_usec": "412"}})
        device = parse_event({"type": "DeviceStateChanged",
                              "device_state": {"name": "PJSIP/carmen", "state": "INUSE"}})
    assert caplog.records == []
    assert isinstance(dial, Dial) and dial.peer.id == "offer-1"
    assert dial.caller is not None and dial.caller.id == CHANNEL["id"]
    assert (dial.dialstatus, dial.dialstring, dial.forward) == ("RINGING", "carmen", "")
    assert isinstance(created, BridgeCreated) and created.bridge.id == BRIDGE["id"]
    assert isinstance(destroyed, BridgeDestroyed) and destroyed.bridge.bridge_type == "mixing"
    assert isinstance(endpoint, EndpointStateChange)
    assert endpoint.endpoint == Endpoint("PJSIP", "carmen", "online", ("1795595410.7",))
    assert isinstance(contact, ContactStatusChange)
    assert contact.contact_info.contact_status == "Reachable"
    assert contact.contact_info.aor == "carmen" and contact.contact_info.roundtrip_usec == "412"
    assert isinstance(device, DeviceStateChanged)
    assert device.device_state.state == "INUSE"


@pytest.mark.parametrize("data", [
    {"type": "Dial", "dialstatus": "ANSWER"},  # no peer
    {"type": "Dial", "peer": CHANNEL, "dialstatus": 5},
    {"type": "BridgeDestroyed", "bridge": "b-1"},
    {"type": "ContactStatusChange", "endpoint": ENDPOINT, "contact_info": {"uri": "x"}},
    {"type": "DeviceStateChanged", "device_state": {"name": "PJSIP/carmen"}},
])
def test_router_events_with_bad_shape_become_unknown(data, caplog):
    with caplog.at_level(logging.WARNING):
        event = parse_event(data)
    assert isinstance(event, UnknownEvent) and event.type == data["type"]
    assert "unexpected shape" in caplog.text
