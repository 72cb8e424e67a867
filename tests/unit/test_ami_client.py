"""AMIClient framing and dispatch against a fake AMI server speaking recorded Asterisk 22 bytes.

The fake listens on 127.0.0.1:0 and answers each action from a script; the byte blocks
below were recorded from a real Asterisk 22.10.1 (``{id}`` stands for the ActionID the
client chose). The key case: a UTF-8 character split across two TCP writes, the second
sent only once the client has read the first, must arrive whole (panoramisk 1.4 drops it).

No sleeps: the fake says when it has read an action (:meth:`FakeAMI.received`), and a
marker event written together with a first half says when the client has read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Self

import pytest

from callcenter.asterisk.ami import (
    AMIActionError,
    AMIAuthenticationError,
    AMIClient,
    AMIConnectionError,
    AMIMessage,
    AMITimeoutError,
    parse_message,
)

GREETING = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = (
    "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n"
)
LOGIN_FAILED = (
    "Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n"
)
FULLY_BOOTED = (
    "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 769\r\nLastReload: 769\r\n"
    "Status: Fully Booted\r\n\r\n"
)
GOODBYE = (
    "Response: Goodbye\r\nActionID: {id}\r\nMessage: Thanks for all the fish.\r\n\r\n"
)
CORE_SHOW_VERSION = (
    "Response: Success\r\nActionID: {id}\r\nMessage: Command output follows\r\n"
    "Output: Asterisk 22.10.1+dfsg+~cs6.17.60671434-1 built by nobody @ buildd.debian.org on a"
    " unknown running Linux on 2026-07-20 21:35:32 UTC\r\n\r\n"
)
CORE_SHOW_CHANNELS = (
    "Response: Success\r\nActionID: {id}\r\nMessage: Command output follows\r\n"
    "Output: Channel                                                          Location      "
    "                   State   Application(Data)             \r\n"
    "Output: 0 active channels\r\nOutput: 0 active calls\r\nOutput: 9 calls processed\r\n\r\n"
)
NO_SUCH_COMMAND = (
    "Response: Error\r\nActionID: {id}\r\nMessage: Command output follows\r\n"
    "Output: No such command 'no such command' (type 'core show help no such' for other "
    "possible commands)\r\n\r\n"
)
CHANNELS_START = "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n"
CORE_SHOW_CHANNEL = (
    "Event: CoreShowChannel\r\nActionID: {id}\r\nChannel: Local/s@helper-hold-00000003;{leg}\r\n"
    "ChannelState: 6\r\nChannelStateDesc: Up\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\n"
    "Context: helper-hold\r\nExten: s\r\nPriority: 1\r\nUniqueid: 1795596132.7\r\n"
    "Linkedid: 1795596132.7\r\nApplication: Wait\r\nApplicationData: 3\r\nDuration: 00:00:01\r\n"
    "BridgeId: \r\n\r\n"
)
CHANNELS_COMPLETE = "Event: CoreShowChannelsComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 2\r\n\r\n"
ORIGINATE_QUEUED = "Response: Success\r\nActionID: {id}\r\nMessage: Originate successfully queued\r\n\r\n"
ORIGINATE_RESPONSE = (
    "Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {id}\r\nResponse: Success\r\n"
    "Channel: Local/s@helper-hold-00000003;1\r\nApplication: Wait\r\nData: 3\r\nReason: 4\r\n"
    "Uniqueid: 1795596132.7\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n"
)
NEWEXTEN = (
    "Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/s@helper-walk-00000004;2\r\n"
    "ChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: <unknown>\r\n"
    "CallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
    "Language: en\r\nAccountCode: \r\nContext: helper-walk\r\nExten: s\r\nPriority: 2\r\n"
    "Uniqueid: 1795596135.11\r\nLinkedid: 1795596135.10\r\nExtension: s\r\nApplication: Set\r\n"
    "AppData: GREETING=Grüße 日本語 ☎\r\n\r\n"
)
VARSET = (
    "Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: Local/s@helper-walk-00000004;2\r\n"
    "ChannelState: 4\r\nChannelStateDesc: Ring\r\nCallerIDNum: <unknown>\r\n"
    "CallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
    "Language: en\r\nAccountCode: \r\nContext: helper-walk\r\nExten: s\r\nPriority: 2\r\n"
    "Uniqueid: 1795596135.11\r\nLinkedid: 1795596135.10\r\nVariable: GREETING\r\n"
    "Value: Grüße 日本語 ☎\r\n\r\n"
)

CLOSE = object()  # script item: the fake drops the connection
Script = list[bytes | str | object]


def marker(n: int) -> str:
    """A complete event to write just before a partial message: once a subscriber has it,
    the client has read that write."""
    return f"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Mark{n}\r\n\r\n"


class FakeAMI:
    """A protocol-speaking AMI peer: greeting, then each action answered by ``responder``.

    A script item is bytes/str (written, then drained) or CLOSE.
    ``push`` sends unsolicited items (events) to the connected client.
    """

    def __init__(
        self, responder: Callable[[AMIMessage], Iterable[object]] | None = None
    ) -> None:
        self.responder = responder or (lambda action: ())
        self.actions: list[AMIMessage] = []
        self.secret = "s3cret"
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _play(
        self, writer: asyncio.StreamWriter, items: Iterable[object], action_id: str
    ) -> bool:
        for item in items:
            if item is CLOSE:
                writer.close()
                return False
            data = (
                item.replace("{id}", action_id).encode()
                if isinstance(item, str)
                else item
            )
            writer.write(data)
            await writer.drain()
        return True

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writer = writer
        writer.write(GREETING)
        await writer.drain()
        self._connected.set()
        try:
            while True:
                action = parse_message((await reader.readuntil(b"\r\n\r\n"))[:-4])
                async with self._arrived:
                    self.actions.append(action)
                    self._arrived.notify_all()
                aid = action["ActionID"]
                name = action["Action"]
                if name == "Login":
                    ok = action["Secret"] == self.secret
                    items: Iterable[object] = (
                        [LOGIN_OK, FULLY_BOOTED] if ok else [LOGIN_FAILED, CLOSE]
                    )
                elif name == "Logoff":
                    items = [GOODBYE, CLOSE]
                else:
                    items = self.responder(action)
                if not await self._play(writer, items, aid):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def received(self, name: str, timeout: float = 2.0) -> AMIMessage:
        """The last action ``name`` the fake has read, once it has."""
        def last() -> AMIMessage | None:
            return next((a for a in reversed(self.actions) if a["Action"] == name), None)

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: last() is not None)
        found = last()
        assert found is not None
        return found

    async def push(self, *items: object) -> None:
        await self._connected.wait()
        assert self._writer is not None
        await self._play(self._writer, items, "")


def client(fake: FakeAMI, **kwargs: object) -> AMIClient:
    return AMIClient(
        "127.0.0.1", fake.port, username="cc", secret=fake.secret, **kwargs
    )  # type: ignore[arg-type]


def responder(action: AMIMessage) -> Iterable[object]:
    """Answers as the recorded Asterisk 22 did."""
    name = action["Action"]
    if name == "Command":
        return {
            "core show version": [CORE_SHOW_VERSION],
            "core show channels": [CORE_SHOW_CHANNELS],
        }.get(action["Command"], [NO_SUCH_COMMAND])
    if name == "CoreShowChannels":
        # Asterisk interleaves unrelated events with the list; they must reach subscribers.
        return [
            CHANNELS_START,
            CORE_SHOW_CHANNEL.replace("{leg}", "1"),
            NEWEXTEN,
            CORE_SHOW_CHANNEL.replace("{leg}", "2"),
            CHANNELS_COMPLETE,
        ]
    if name == "Originate":
        return [ORIGINATE_QUEUED, ORIGINATE_RESPONSE]  # two writes, as Asterisk sends them
    if name == "Ping":
        return [
            "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1795596132.0\r\n\r\n"
        ]
    return []  # anything else: never answered


@pytest.fixture
async def fake() -> AsyncIterator[FakeAMI]:
    async with FakeAMI(responder) as server:
        yield server


_baseline: set[asyncio.Task[object]] = set()


@pytest.fixture(autouse=True)
async def _other_clients_tasks() -> None:
    """Reader tasks of clients other tests keep open (the integration suite's session
    AMI connection shares this event loop) are not this test's."""
    _baseline.clear()
    _baseline.update(t for t in asyncio.all_tasks() if t.get_name().startswith("ami-reader"))


def reader_tasks() -> set[asyncio.Task[object]]:
    """This test's client tasks (the fake server's connection handlers are not counted)."""
    return {t for t in asyncio.all_tasks()
            if t.get_name().startswith("ami-reader") and t not in _baseline}


# ----------------------------------------------------------------------------- framing


async def test_utf8_character_split_across_two_writes_arrives_whole(fake):
    raw = VARSET.encode()
    cut_u = raw.index("ü".encode()) + 1  # between the 2 bytes of ü
    cut_j = raw.index("日".encode()) + 2  # inside the 3 bytes of 日
    async with client(fake) as ami, ami.subscribe("VarSet", "UserEvent") as events:
        for n, cut in enumerate((cut_u, cut_j)):
            await fake.push(marker(n).encode() + raw[:cut])
            # The marker came in the same write as the first half: it has been read.
            assert (await events.get(timeout=2))["UserEvent"] == f"Mark{n}"
            await fake.push(raw[cut:])
            event = await events.get(timeout=2)
            assert (event.event, event["Variable"]) == ("VarSet", "GREETING")
            assert event["Value"] == "Grüße 日本語 ☎"


async def test_messages_fed_one_byte_at_a_time(fake):
    data = (NEWEXTEN + VARSET).encode()
    async with client(fake) as ami, ami.subscribe("*") as events:
        await fake.push(*[data[i : i + 1] for i in range(len(data))])
        first = await events.wait_for("Newexten", timeout=2)
        second = await events.wait_for("VarSet", timeout=2)
    assert first["AppData"] == "GREETING=Grüße 日本語 ☎"
    assert second["Value"] == "Grüße 日本語 ☎"


async def test_a_read_may_end_at_any_byte(fake):
    # Every position of the message, the terminator's included, as the end of a read:
    # the first part goes with a marker event, the rest once the client dispatched it.
    data = VARSET.encode()
    async with client(fake) as ami, ami.subscribe("VarSet", "UserEvent") as events:
        for cut in range(1, len(data)):
            await fake.push(marker(cut).encode() + data[:cut])
            assert (await events.get(timeout=2))["UserEvent"] == f"Mark{cut}"
            await fake.push(data[cut:])
            event = await events.get(timeout=2)
            assert (event.event, event["Value"]) == ("VarSet", "Grüße 日本語 ☎"), cut


def test_parse_message_fields():
    message = parse_message(
        b"Event: UserEvent\r\nAccountCode: \r\nUserEvent: HelperTest\r\n"
        b"Greeting: a: b\r\nChanVariable: A=1\r\nchanvariable: B=2\r\nno colon line\n"
        b"Bad: \xff"
    )
    assert message.event == "UserEvent"
    assert message["AccountCode"] == ""
    assert message["greeting"] == "a: b"  # only the first ': ' separates
    assert message.getall("ChanVariable") == ["A=1", "B=2"]
    assert (
        message["Bad"] == "\ufffd"
    )  # invalid UTF-8 (not split): replaced, no exception
    assert "no colon line" not in message
    assert message.matches(UserEvent="HelperTest") and not message.matches(
        UserEvent="x"
    )


# ----------------------------------------------------------------------------- actions


async def test_login_sends_credentials_and_reads_greeting(fake):
    async with client(fake, events="call,dialplan") as ami:
        assert ami.version == "11.0.0"
        pong = await ami.action("Ping")
        assert pong["Ping"] == "Pong"
    login = fake.actions[0]
    assert (login["Action"], login["Username"], login["Secret"], login["Events"]) == (
        "Login",
        "cc",
        "s3cret",
        "call,dialplan",
    )
    assert fake.actions[-1]["Action"] == "Logoff"
    assert "s3cret" not in repr(login)


async def test_wrong_secret_raises_authentication_error(fake):
    fake.secret = "other"
    with pytest.raises(AMIAuthenticationError) as caught:
        async with AMIClient("127.0.0.1", fake.port, username="cc", secret="s3cret"):
            pass
    assert caught.value.response["Message"] == "Authentication failed"
    assert reader_tasks() == set()


async def test_list_action_collects_its_events_and_leaves_others_to_subscribers(fake):
    async with client(fake) as ami, ami.subscribe("Newexten") as newexten:
        response = await ami.action("CoreShowChannels")
        assert response["Message"] == "Channels will follow"
        assert [e["Channel"] for e in response.events] == [
            "Local/s@helper-hold-00000003;1",
            "Local/s@helper-hold-00000003;2",
        ]
        interleaved = await newexten.get(timeout=1)
        assert interleaved["Application"] == "Set"


async def test_command_returns_output_lines(fake):
    async with client(fake) as ami:
        assert (await ami.command("core show version")).startswith("Asterisk 22.10.1")
        lines = (await ami.command("core show channels")).split("\n")
        assert lines[1:] == ["0 active channels", "0 active calls", "9 calls processed"]
        with pytest.raises(AMIActionError) as caught:
            await ami.command("no such command")
        assert caught.value.response.getall("Output")[0].startswith("No such command")


async def test_event_with_response_header_and_our_action_id_goes_to_subscribers(fake):
    # OriginateResponse carries 'Response:' and the Originate's ActionID, after the answer.
    async with client(fake) as ami, ami.subscribe("OriginateResponse") as responses:
        queued = await ami.action(
            "Originate",
            Channel="Local/s@helper-hold",
            Application="Wait",
            Data="3",
            Async="true",
        )
        assert queued["Message"] == "Originate successfully queued"
        event = await responses.get(timeout=2)
        assert event["ActionID"] == queued["ActionID"]
        assert event["Reason"] == "4"


async def test_list_values_repeat_the_header_and_line_breaks_are_refused(fake):
    async with client(fake) as ami:
        with pytest.raises(AMITimeoutError):
            await ami.action("Setvar", Variable=["A=1", "B=2"], timeout=0.1)
        assert (await fake.received("Setvar")).getall("Variable") == ["A=1", "B=2"]
        with pytest.raises(ValueError):
            await ami.action("Originate", Channel="Local/s@x\r\nAction: Hangup")


async def test_timeout_then_late_answer_is_ignored(fake):
    async with client(fake) as ami:
        with pytest.raises(AMITimeoutError):
            await ami.action("Status", timeout=0.1)
        assert isinstance(AMITimeoutError("x"), TimeoutError)
        late = (await fake.received("Status"))["ActionID"]
        await fake.push(f"Response: Success\r\nActionID: {late}\r\n\r\n")
        assert (await ami.action("Ping"))["Ping"] == "Pong"  # still in sync


# ----------------------------------------------------------------------------- lifecycle


async def test_connection_drop_fails_pending_actions_and_subscriptions(fake):
    ami = client(fake)
    await ami.connect()
    try:
        subscription = ami.subscribe("*")
        pending = asyncio.ensure_future(ami.action("Status", timeout=5))
        await fake.received("Status")  # sent and waiting for its answer
        await fake.push(NEWEXTEN, CLOSE)
        with pytest.raises(AMIConnectionError):
            await pending
        assert (await subscription.get(timeout=1)).event == "Newexten"  # queued first
        with pytest.raises(AMIConnectionError):
            await subscription.get(timeout=1)
        assert [e async for e in subscription] == []  # async for just ends
        with pytest.raises(AMIConnectionError):
            await ami.action("Ping")
        await ami.connect()  # the owner decides to reconnect
        assert (await ami.action("Ping"))["Ping"] == "Pong"
    finally:
        await ami.close()
    assert reader_tasks() == set()


async def test_close_cancels_the_reader_task(fake):
    async with client(fake) as ami:
        assert ami.connected
        assert len(reader_tasks()) == 1
    assert not ami.connected
    assert reader_tasks() == set()


async def test_connection_refused():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(AMIConnectionError):
        await AMIClient("127.0.0.1", port, username="u", secret="s").connect()


async def test_silent_peer_times_out_on_greeting():
    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(AMITimeoutError):
            await AMIClient(
                "127.0.0.1", port, username="u", secret="s", timeout=0.2
            ).connect()
    finally:
        server.close()
        await server.wait_closed()
