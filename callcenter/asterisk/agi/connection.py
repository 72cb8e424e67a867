"""One FastAGI TCP connection as an asyncio Protocol: the header costs one wake-up.

Asterisk writes the AGI header one line per ``send()``: some 25 TCP segments per
``AGI()`` call. Through an ``asyncio.StreamReader`` every segment wakes the coroutine
reading the header, and those wake-ups were most of the FastAGI server's CPU per
call (measured with a header sent line by line: 1.17 ms per dip through
StreamReader). Here ``data_received`` feeds the sans-io :class:`HeaderParser`
directly and the serving coroutine wakes once, with the whole header.

After the header the connection is a plain byte stream with the two methods
:class:`AGICall` needs (``read``; ``write`` + ``drain``), with flow control both
ways, and EOF reported once (``read`` returns ``b""``), never re-read in a loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from .protocol import AGIRequest, ConnectionClosed, HeaderParser, ProtocolError

__all__ = ["FastAGIConnection"]

#: Unread bytes after which we stop reading from the socket until AGICall catches up.
_READ_HIGH_WATER = 64 * 1024


class FastAGIConnection(asyncio.Protocol):
    """The server side of one FastAGI connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 on_made: Callable[[FastAGIConnection], None]) -> None:
        self._loop = loop
        self._on_made = on_made
        self._parser = HeaderParser()
        self._header: asyncio.Future[tuple[AGIRequest, bytes]] = loop.create_future()
        self._buffer = bytearray()
        self._eof = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if not self._header.done():
            try:
                request = self._parser.feed(data)
            except ProtocolError as exc:
                self._fail_header(exc)
                self._abort()
                return
            if request is not None:
                self._header.set_result((request, self._parser.remainder))
            return
        self._buffer.extend(data)
        if len(self._buffer) > _READ_HIGH_WATER and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._end_of_stream()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_of_stream()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("connection lost"))
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- what the server and AGICall use ---------------------------------------

    async def header(self) -> tuple[AGIRequest, bytes]:
        """The parsed AGI header and the bytes that followed it.

        Raises ConnectionClosed (EOF first) or ProtocolError (garbage, too large).
        """
        return await asyncio.shield(self._header)

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all buffered with -1); ``b""`` once at end of stream."""
        while not self._buffer and not self._eof:
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._reading_paused and len(self._buffer) <= _READ_HIGH_WATER // 2:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection closed")
        if self._writing_paused:
            self._drain_waiter = self._loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default if self.transport is None else self.transport.get_extra_info(name,
                                                                                    default)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # -- internals --------------------------------------------------------------

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _wake_reader(self) -> None:
        if self._read_waiter is not None and not self._read_waiter.done():
            self._read_waiter.set_result(None)

    def _end_of_stream(self) -> None:
        self._eof = True
        if not self._header.done():
            try:
                self._parser.feed_eof()  # raises: the header is incomplete
            except (ConnectionClosed, ProtocolError) as exc:
                self._fail_header(exc)
            else:  # pragma: no cover - feed_eof always raises before a header
                self._fail_header(ConnectionClosed("end of stream"))
        self._wake_reader()

    def _fail_header(self, exc: Exception) -> None:
        self._header.set_exception(exc)
        # Marked as retrieved: a connection dropped while the server stops has nobody
        # left to await it, and that is no error worth a log line.
        self._header.exception()
