"""asyncio FastAGI server: Asterisk's ``AGI(agi://127.0.0.1:4573/<script>,...)`` lands here.

Asterisk opens one TCP connection per ``AGI()`` call, sends the request header, then
waits for commands; the dialplan continues when we close the connection. So every
connection must end promptly, whatever happens:

* a bare connect-then-close, garbage, or a header that is too slow or too large is
  dropped (EOF is handled as an event, never re-read: no busy loop);
* an unknown script or a failing script sets ``CC_AGI_ERROR`` and closes (see
  :mod:`.registry`), a hangup just closes;
* one connection's trouble never touches another: each runs in its own task, owned
  by the server and cancelled and awaited by :meth:`FastAGIServer.stop`.

Logs: one debug line per connection; warnings for failures. Channel name, uniqueid
and script name only: never header values or channel variables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from .connection import FastAGIConnection
from .context import DEFAULT_READ_TIMEOUT, AGICall, AGIContext
from .protocol import ConnectionClosed, ProtocolError
from .registry import Handler, dispatch

__all__ = ["DEFAULT_PORT", "FastAGIServer"]

DEFAULT_PORT = 4573  # Asterisk's default for agi:// URLs without a port
_CLOSE_TIMEOUT = 1.0

log = logging.getLogger("callcenter.asterisk.agi")


class FastAGIServer:
    """Serve the scripts in ``handlers`` to Asterisk over FastAGI.

    ``port=0`` binds a free port (see :attr:`port`). Connections beyond
    ``max_connections`` are closed at once: Asterisk then sets ``AGISTATUS=FAILURE``
    and the dialplan goes on, which beats queueing calls behind a stuck script.
    ``script_timeout`` bounds one script run (None: no limit).
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        ctx: AGIContext,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        header_timeout: float = 5.0,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        script_timeout: float | None = 120.0,
        max_connections: int = 256,
    ) -> None:
        self._handlers = dict(handlers)
        self._ctx = ctx
        self._host = host
        self._requested_port = port
        self.header_timeout = header_timeout
        self.read_timeout = read_timeout
        self.script_timeout = script_timeout
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("FastAGIServer is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        """Connections currently being served."""
        return len(self._tasks)

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("FastAGIServer already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: FastAGIConnection(loop, self._on_connect), self._host,
            self._requested_port,
        )
        log.info(
            "FastAGI listening on %s:%d (%d scripts)",
            self._host,
            self.port,
            len(self._handlers),
        )

    async def stop(self) -> None:
        """Stop accepting, cancel the running connections and wait for them to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Each task closes its own socket in `finally`; gather only collects them. A
        # second round catches a connection accepted just before close(); after
        # close() no new ones arrive, so this ends.
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled; then stop cleanly."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _on_connect(self, conn: FastAGIConnection) -> None:
        # Called by the protocol on connect; the task serving it is ours, tracked in
        # self._tasks, cancelled and awaited by stop().
        if self._server is None:  # stopping: accepted just before close()
            conn.abort()
            return
        if len(self._tasks) >= self.max_connections:
            log.warning(
                "FastAGI connection refused: %d connections already active",
                len(self._tasks),
            )
            conn.abort()
            return
        task = asyncio.get_running_loop().create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: FastAGIConnection) -> None:
        started = time.monotonic()
        peer = conn.get_extra_info("peername")
        try:
            try:
                async with asyncio.timeout(self.header_timeout):
                    request, rest = await conn.header()
            except ConnectionClosed as exc:
                # Port checks and health probes connect and close: not worth a warning.
                log.debug("FastAGI %s: %s", peer, exc)
                return
            except TimeoutError:
                log.warning(
                    "FastAGI %s: no complete AGI header within %s s",
                    peer,
                    self.header_timeout,
                )
                return
            except ProtocolError as exc:
                log.warning("FastAGI %s: %s", peer, exc)
                return
            except ConnectionError as exc:
                log.debug("FastAGI %s: %s before the header", peer, type(exc).__name__)
                return
            call = AGICall(
                request, conn, conn, read_timeout=self.read_timeout, buffered=rest
            )
            ok = await dispatch(
                call, self._handlers, self._ctx, script_timeout=self.script_timeout
            )
            log.debug(
                "FastAGI %s channel=%s uniqueid=%s %s in %.1f ms",
                request.script,
                request.channel,
                request.uniqueid,
                "done" if ok else "failed",
                (time.monotonic() - started) * 1000,
            )
        except Exception:  # last line of defence: one bad call must not kill the server
            log.exception("FastAGI %s: unexpected error", peer)
        finally:
            await _close(conn)


async def _close(conn: FastAGIConnection) -> None:
    """Close the socket; Asterisk then continues the dialplan. Bounded in time."""
    conn.close()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await conn.wait_closed()
    except (TimeoutError, OSError):
        conn.abort()  # peer not reading what we wrote: drop it
