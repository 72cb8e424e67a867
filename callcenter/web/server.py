"""Run an aiohttp application on a TCP address, and stop it (``callcenter serve``'s
HTTP API). The service owns it: start before "listening" is announced, stop on exit."""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["ApiServer", "RedactingAccessLogger", "connect_url", "redacted"]

log = logging.getLogger(__name__)

def redacted(request: web.BaseRequest) -> str:
    """The request's path and query as the access log shows them: the query is hidden
    when it holds a ``token`` parameter however spelt or encoded (the event stream takes
    the token there for browsers)."""
    if any(key.strip().lower() == "token" for key in request.query):
        return f"{request.rel_url.raw_path}?<query hidden: it holds a token>"
    return request.raw_path


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line without secrets: method, path and query with any token
    hidden, status, size, seconds (never a header: the Authorization header is not
    logged either)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse,
            time: float) -> None:
        self.logger.info('%s "%s %s" %s %s %.3fs', request.remote, request.method,
                         redacted(request), response.status,
                         response.body_length, time)


def connect_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server listening on *host*: a
    wildcard address (``0.0.0.0``, ``::``) is reached on loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


class ApiServer:
    """One aiohttp application listening on ``host:port`` (port 0: the kernel picks)."""

    def __init__(self, app: web.Application, *, host: str, port: int,
                 shutdown_timeout: float = 5.0) -> None:
        self.host = host
        self._port = port
        # The access log names method, path and status; never the Authorization header,
        # and a token in the query (the event stream's, for browsers) is hidden.
        self._runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout,
                                     handle_signals=False,
                                     access_log_class=RedactingAccessLogger)

    @property
    def port(self) -> int:
        """The port bound (the one chosen by the kernel for port 0)."""
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                return int(address[1])
        return self._port

    @property
    def url(self) -> str:
        return connect_url(self.host, self.port)

    async def start(self) -> None:
        """Bind and serve; ``OSError`` (address in use...) leaves nothing running."""
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self._port).start()
        except BaseException:
            await self._runner.cleanup()
            raise
        log.info("HTTP API listening on %s", self.url)

    async def stop(self) -> None:
        """Stop accepting, let requests in progress finish (a few seconds at most)."""
        await self._runner.cleanup()
