"""Run an aiohttp application on a TCP address, and stop it (``callcenter serve``'s
HTTP API). The service owns it: start before "listening" is announced, stop on exit."""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

__all__ = ["ApiServer", "connect_url"]

log = logging.getLogger(__name__)


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
        # aiohttp's access log names method, path and status; never the Authorization
        # header (so never the token).
        self._runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout,
                                     handle_signals=False)

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
