"""A small asyncio AMI (Asterisk Manager Interface) client.

Why our own and not panoramisk (measured against panoramisk 1.4): it decodes every TCP read
on its own (``data.decode(encoding, 'ignore')`` in ``AMIProtocol.data_received``), so a
UTF-8 character split across two reads is silently dropped; it runs coroutine event
callbacks with ``ensure_future`` (fire-and-forget, exceptions only logged at GC), a plain
callback's exception kills the connection, and an action pending when the connection drops
never completes. Framing AMI is simple, so we do it here on bytes.

Protocol, as Asterisk 22 speaks it: on connect one greeting line
``Asterisk Call Manager/11.0.0``; then messages of ``Key: Value`` lines ending with an empty
line (``\\r\\n\\r\\n``). We split messages on bytes and decode each whole message, so a
multi-byte character can never be cut. A message with ``Event:`` is an event (even when it
also has ``Response:``, as OriginateResponse has); one with ``Response:`` answers the action
with the same ``ActionID``. List actions (CoreShowChannels, QueueStatus, ...) answer
``EventList: start``, then events with our ActionID, then one with ``EventList: Complete``.

Concurrency: one reader task per connection, created by :meth:`AMIClient.connect` and
cancelled and awaited by :meth:`AMIClient.close`. No reconnection: when the connection
drops, pending actions and subscriptions raise :class:`AMIConnectionError` and the owner
decides (reconnect, or fail loudly).
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Self

__all__ = [
    "AMIActionError",
    "AMIAuthenticationError",
    "AMIClient",
    "AMIConnectionError",
    "AMIError",
    "AMIMessage",
    "AMIResponse",
    "AMISubscription",
    "AMITimeoutError",
    "parse_message",
]

log = logging.getLogger(__name__)

_EOM = b"\r\n\r\n"
# A single Command output (e.g. 'dialplan show') can be large; the default 64 KiB is too small.
_READ_LIMIT = 16 * 1024 * 1024
_FieldValue = str | int | float | Sequence[str]


class AMIError(Exception):
    """Base of every error this client raises."""


class AMIConnectionError(AMIError):
    """Not connected, connection refused, or the connection dropped."""


class AMITimeoutError(AMIError, TimeoutError):
    """Asterisk did not answer within the timeout."""


class AMIActionError(AMIError):
    """Asterisk answered ``Response: Error`` (``response`` holds the full answer)."""

    def __init__(self, action: str, response: AMIMessage) -> None:
        self.action = action
        self.response = response
        super().__init__(f"AMI {action}: {response.get('Message', 'Error')}")


class AMIAuthenticationError(AMIActionError):
    """Login was refused (wrong username/secret, or ACL in manager.conf)."""


class AMIMessage(Mapping[str, str]):
    """One AMI message: ordered ``Key: Value`` pairs, immutable.

    Lookup is case-insensitive (Asterisk writes both ``Uniqueid`` and ``UniqueID`` across
    versions) and returns the first value; :meth:`getall` returns every value of a key that
    repeats (``Output``, ``ChanVariable``).
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Sequence[tuple[str, str]]) -> None:
        self._fields: tuple[tuple[str, str], ...] = tuple(fields)
        index: dict[str, str] = {}
        for key, value in self._fields:
            index.setdefault(key.lower(), value)
        self._index = index

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return self._fields

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._fields:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, key: str) -> list[str]:
        lowered = key.lower()
        return [value for k, value in self._fields if k.lower() == lowered]

    @property
    def event(self) -> str | None:
        """The event name (``Newexten``), or None for a response."""
        return self._index.get("event")

    def matches(self, **expected: str) -> bool:
        """Partial match, as the Asterisk testsuite's event matchers: every given key equal."""
        return all(self._index.get(k.lower()) == v for k, v in expected.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AMIMessage):
            return self._fields == other._fields
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}" for k, v in self._fields if k.lower() != "secret"
        )
        return f"AMIMessage({shown})"


class AMIResponse(AMIMessage):
    """The ``Response:`` message of an action, plus the events of a list action."""

    __slots__ = ("events",)

    def __init__(
        self, fields: Sequence[tuple[str, str]], events: Sequence[AMIMessage] = ()
    ) -> None:
        super().__init__(fields)
        self.events: tuple[AMIMessage, ...] = tuple(events)


def parse_message(raw: bytes) -> AMIMessage:
    """Decode one whole message (bytes up to and without the blank line).

    Decoding happens only here, on a complete message, so UTF-8 split across TCP reads is
    reassembled first. Invalid UTF-8 (not split, really invalid) becomes U+FFFD rather than
    an exception that would kill the reader. Lines without ``:`` are skipped.
    """
    text = raw.decode("utf-8", errors="replace")
    fields: list[tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        key, sep, value = line.partition(":")
        if not sep or not key:
            continue
        fields.append((key.strip(), value.removeprefix(" ")))
    return AMIMessage(fields)


def _format_action(
    name: str, action_id: str, fields: Mapping[str, _FieldValue]
) -> bytes:
    """Serialise an action; refuse CR/LF in a value, which would inject AMI headers."""
    lines = [f"Action: {name}", f"ActionID: {action_id}"]
    for key, value in fields.items():
        values = [value] if isinstance(value, (str, int, float)) else list(value)
        for item in values:
            text = str(item)
            if "\r" in text or "\n" in text or "\r" in key or "\n" in key or ":" in key:
                raise ValueError(
                    f"AMI field {key!r} has a line break or bad key: {text!r}"
                )
            lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class _Pending:
    """An action waiting for its answer (and, for list actions, its events)."""

    __slots__ = ("events", "future", "name", "response")

    def __init__(self, name: str, future: asyncio.Future[AMIResponse]) -> None:
        self.name = name
        self.future = future
        self.response: AMIMessage | None = None
        self.events: list[AMIMessage] = []


class _Closed:
    """Queue sentinel: the connection is gone."""

    def __init__(self, error: AMIConnectionError) -> None:
        self.error = error


class AMISubscription:
    """Events whose name matches one of ``patterns`` (fnmatch, e.g. ``Newexten``, ``Queue*``).

    Subscribe *before* the action that causes the events. Use as a (sync or async) context
    manager, which unsubscribes; read with :meth:`get`/:meth:`wait_for` or ``async for``.
    When the connection drops, :meth:`get` raises :class:`AMIConnectionError` after the
    queued events (and ``async for`` ends).
    """

    def __init__(
        self, client: AMIClient, patterns: Sequence[str], maxsize: int
    ) -> None:
        self._client = client
        self._regexes = [
            re.compile(fnmatch.translate(p), re.IGNORECASE) for p in patterns
        ]
        self._queue: asyncio.Queue[AMIMessage | _Closed] = asyncio.Queue(maxsize)
        self._failure: _Closed | None = None
        self.dropped = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        self._client._subscriptions.discard(self)

    def _wants(self, name: str) -> bool:
        return any(r.match(name) for r in self._regexes)

    def _put(self, item: AMIMessage | _Closed) -> None:
        if isinstance(item, _Closed):
            self._failure = item
            # make room so the sentinel always gets in: a consumer must learn of the drop
            if self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(item)
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # Never block the reader (action answers share it); count and warn instead.
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("AMI subscription full, %d event(s) dropped", self.dropped)

    async def get(self, timeout: float | None = None) -> AMIMessage:
        """Next matching event; AMITimeoutError after ``timeout`` seconds (None = wait)."""
        if self._queue.empty() and self._failure is not None:
            raise self._failure.error
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            raise AMITimeoutError(f"no AMI event within {timeout:g}s") from None
        if isinstance(item, _Closed):
            raise item.error
        return item

    async def wait_for(self, event: str, timeout: float, **expected: str) -> AMIMessage:
        """Skip events until one named ``event`` whose fields include ``expected``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AMITimeoutError(f"no AMI {event} {expected} within {timeout:g}s")
            message = await self.get(remaining)
            if (
                message.event is not None
                and message.event.lower() == event.lower()
                and message.matches(**expected)
            ):
                return message

    def __aiter__(self) -> AMISubscription:
        return self

    async def __anext__(self) -> AMIMessage:
        try:
            return await self.get()
        except AMIConnectionError:
            raise StopAsyncIteration from None


class AMIClient:
    """One AMI connection: ``async with AMIClient(username=..., secret=...) as ami:``.

    ``events`` is the Login ``Events`` value: ``on`` for all, ``off`` for none, or a list
    of classes (``call,dialplan,user``) as in manager.conf ``read=``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5038,
        *,
        username: str,
        secret: str,
        events: str = "on",
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self._events = events
        self.timeout = timeout
        self.version: str | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[str, _Pending] = {}
        self._subscriptions: set[AMISubscription] = set()
        self._ids = itertools.count(1)
        self._lost: AMIConnectionError | None = None

    def __repr__(self) -> str:
        return f"AMIClient({self.host!r}, {self.port}, username={self.username!r})"

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._reader_task is not None and not self._reader_task.done()

    async def connect(self) -> None:
        """Connect, read the greeting, start the reader, log in; all within ``timeout``.

        Also reconnects after a drop (subscriptions made before it have ended: subscribe
        again).
        """
        if self.connected:
            raise RuntimeError("AMIClient is already connected")
        if self._reader_task is not None:
            # Reconnecting after a drop: reap the old reader task and socket first.
            await self.close()
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, limit=_READ_LIMIT
                )
                greeting = await self._reader.readline()
        except TimeoutError:
            await self._close_transport()
            raise AMITimeoutError(
                f"AMI {self.host}:{self.port}: no greeting within {self.timeout:g}s"
            ) from None
        except OSError as exc:
            await self._close_transport()
            raise AMIConnectionError(f"AMI {self.host}:{self.port}: {exc}") from exc
        text = greeting.decode("utf-8", errors="replace").strip()
        if not text.startswith("Asterisk Call Manager/"):
            await self._close_transport()
            raise AMIConnectionError(
                f"AMI {self.host}:{self.port}: unexpected greeting {text!r}"
            )
        self.version = text.partition("/")[2]
        self._lost = None
        self._reader_task = asyncio.create_task(
            self._read_loop(), name=f"ami-reader-{self.host}:{self.port}"
        )
        try:
            await self.action(
                "Login",
                Username=self.username,
                Secret=self._secret,
                Events=self._events,
            )
        except AMIActionError as exc:
            await self.close()
            raise AMIAuthenticationError("Login", exc.response) from None
        except BaseException:
            await self.close()
            raise
        log.info(
            "AMI connected to %s:%d (protocol %s)", self.host, self.port, self.version
        )

    async def close(self) -> None:
        """Log off (briefly, best effort), stop the reader task and close the socket."""
        task, self._reader_task = self._reader_task, None
        if task is not None and not task.done() and self._writer is not None:
            try:
                # Logoff answers "Response: Goodbye" then Asterisk closes its side.
                self._writer.write(_format_action("Logoff", "logoff", {}))
                async with asyncio.timeout(1.0):
                    await self._writer.drain()
            except (OSError, TimeoutError):
                pass  # the socket is going away anyway
        try:
            if task is not None:
                task.cancel()
                try:
                    await task  # re-raises a reader bug, so it is not lost
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # we are being cancelled ourselves: let it propagate
        finally:
            self._lost = self._lost or AMIConnectionError("AMI connection closed")
            self._fail_all(AMIConnectionError("AMI connection closed"))
            await self._close_transport()

    async def _close_transport(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
            except (OSError, TimeoutError):
                pass

    # ------------------------------------------------------------------ actions

    async def action(
        self, name: str, /, *, timeout: float | None = None, **fields: _FieldValue
    ) -> AMIResponse:
        """Send an action and wait for its answer (and the events of a list action).

        ``fields`` become ``Key: Value`` lines; a list value repeats the key (``Variable``).
        Lower-case ``timeout`` is our wait in seconds; AMI's own header is ``Timeout=``
        (e.g. Originate's ring time in ms; a non-Async Originate answers only after the
        call is answered, so give it a ``timeout`` longer than that).
        Raises AMIActionError on ``Response: Error``, AMITimeoutError after ``timeout``
        (default: the client's), AMIConnectionError if the connection is or goes down.
        """
        if self._writer is None or not self.connected:
            raise self._lost or AMIConnectionError("AMI is not connected")
        action_id = str(next(self._ids))
        data = _format_action(name, action_id, fields)
        future: asyncio.Future[AMIResponse] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = _Pending(name, future)
        wait = self.timeout if timeout is None else timeout
        try:
            self._writer.write(data)
            async with asyncio.timeout(wait):
                await self._writer.drain()
                return await future
        except TimeoutError:
            raise AMITimeoutError(f"AMI {name}: no answer within {wait:g}s") from None
        except OSError as exc:
            raise AMIConnectionError(f"AMI {name}: {exc}") from exc
        finally:
            self._pending.pop(action_id, None)

    async def command(self, cli: str, *, timeout: float | None = None) -> str:
        """Run a CLI command (``core show version``) via Action: Command; its output text.

        Asterisk 22 sends each output line as an ``Output:`` header; an unknown command
        answers ``Response: Error`` (raised as AMIActionError, output in ``.response``).
        """
        response = await self.action("Command", Command=cli, timeout=timeout)
        return "\n".join(response.getall("Output"))

    # ------------------------------------------------------------------ events

    def subscribe(self, *patterns: str, maxsize: int = 10_000) -> AMISubscription:
        """Collect events whose name matches a pattern (``*`` for all) from now on."""
        subscription = AMISubscription(self, patterns or ("*",), maxsize)
        if self._lost is not None:
            subscription._put(_Closed(self._lost))
        self._subscriptions.add(subscription)
        return subscription

    def events(self, *patterns: str, maxsize: int = 10_000) -> AMISubscription:
        """Same as :meth:`subscribe`, named for ``async for event in ami.events("Hangup")``."""
        return self.subscribe(*patterns, maxsize=maxsize)

    # ------------------------------------------------------------------ reader

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while True:
                raw = await reader.readuntil(_EOM)
                self._dispatch(parse_message(raw[: -len(_EOM)]))
        except asyncio.IncompleteReadError:
            self._connection_lost(
                AMIConnectionError("AMI connection closed by Asterisk")
            )
        except asyncio.LimitOverrunError as exc:
            self._connection_lost(
                AMIConnectionError(f"AMI message larger than {_READ_LIMIT} bytes")
            )
            log.error("AMI: %s", exc)
        except OSError as exc:
            self._connection_lost(AMIConnectionError(f"AMI connection lost: {exc}"))
        except (
            Exception
        ) as exc:  # (CancelledError is a BaseException: close() owns that path)
            # A bug in dispatch: fail every waiter so nobody hangs, then surface it via close().
            self._connection_lost(AMIConnectionError(f"AMI reader failed: {exc!r}"))
            raise

    def _dispatch(self, message: AMIMessage) -> None:
        action_id = message.get("ActionID")
        pending = self._pending.get(action_id) if action_id is not None else None
        if message.event is None:
            if pending is None or pending.response is not None:
                log.debug("AMI answer for no pending action: %r", message)
                return
            if message.get("Response", "").lower() == "error":
                self._settle(pending, error=AMIActionError(pending.name, message))
            elif message.get("EventList", "").lower() == "start":
                pending.response = message  # events follow, then EventList: Complete
            else:
                self._settle(pending, response=AMIResponse(message.fields))
            return
        if pending is not None and pending.response is not None:
            # An event of a list action we are collecting.
            if message.get("EventList", "").lower() == "complete":
                self._settle(
                    pending,
                    response=AMIResponse(pending.response.fields, pending.events),
                )
            else:
                pending.events.append(message)
            return
        for subscription in list(self._subscriptions):
            if subscription._wants(message.event):
                subscription._put(message)

    @staticmethod
    def _settle(
        pending: _Pending,
        *,
        response: AMIResponse | None = None,
        error: AMIError | None = None,
    ) -> None:
        if pending.future.done():  # the waiter timed out or was cancelled
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            assert response is not None
            pending.future.set_result(response)

    def _connection_lost(self, error: AMIConnectionError) -> None:
        log.warning("%s", error)
        self._lost = error
        self._fail_all(error)

    def _fail_all(self, error: AMIConnectionError) -> None:
        for pending in list(self._pending.values()):
            self._settle(pending, error=error)
        self._pending.clear()
        for subscription in list(self._subscriptions):
            subscription._put(_Closed(error))
