"""``callcenter phone NAME``: the built-in test softphone, run as an agent's phone
until stopped, saying what happens to it one line at a time.

A new user sees a call reach an agent with nothing installed but baresip: the
phone registers as the agent (its generated account), answers every call by
itself, and prints ``registered``, ``registration failed: <status>``,
``incoming call from <caller>: answered``, ``call ended (<reason>)``. Stopping it
(Ctrl-C, SIGTERM, SIGHUP) unregisters it.

The words are decided by :class:`PhoneLines` (pure, from baresip's events); the
loop in :func:`serve_phone` only carries them out. Caller names and numbers
come from outside (a SIP From header): they are printed with control
characters escaped, so a caller cannot write to the user's terminal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcenter.testing.aio import cancel_and_wait
from callcenter.testing.softphone import Softphone

__all__ = ["AgentLogin", "PhoneLines", "printable", "serve_phone"]

#: How much of a caller-supplied text is printed.
_MAX_SHOWN = 120


def printable(text: str) -> str:
    """``text`` with control and other non-printable characters escaped (``\\x1b``),
    cut to a readable length: safe to print on a terminal."""
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                    else f"\\u{ord(c):04x}" for c in text[:_MAX_SHOWN])
    return shown + ("..." if len(text) > _MAX_SHOWN else "")


class AgentLogin(Protocol):
    """The planned ``--login``: log the agent in once the phone is registered, out
    before it unregisters. The HTTP API of ``callcenter serve`` will provide it; the
    phone only calls it."""

    async def login(self, agent: str) -> None: ...

    async def logout(self, agent: str) -> None: ...


@dataclass
class PhoneLines:
    """What a user reads for each baresip event (None: nothing worth a line)."""

    user: str
    registrar: str
    #: Whether the last registration answer was 200 OK (re-registrations every
    #: ``regint`` are not news; a change is).
    registered: bool | None = field(default=None)
    #: The registrar's last refusal, to say a retry failed the same way only once.
    failure: str = ""

    def line(self, event: Mapping[str, Any]) -> str | None:
        kind = event.get("type")
        if kind == "REGISTER_OK":
            if self.registered:
                return None
            self.registered, self.failure = True, ""
            return (f"registered: {self.user} at {self.registrar} "
                    f"({printable(str(event.get('param') or ''))})")
        if kind == "REGISTER_FAIL":
            status = printable(str(event.get("param") or "no answer"))
            if self.registered is False and status == self.failure:
                return None
            self.registered, self.failure = False, status
            return f"registration failed: {status}"
        if kind == "CALL_ESTABLISHED" and event.get("direction") == "incoming":
            return f"incoming call from {self._peer(event)}: answered"
        if kind == "CALL_ESTABLISHED":
            return f"call to {self._peer(event)}: answered"
        if kind == "CALL_CLOSED":
            return f"call ended ({printable(str(event.get('param') or 'no reason given'))})"
        return None

    @staticmethod
    def _peer(event: Mapping[str, Any]) -> str:
        uri = printable(str(event.get("peeruri") or "unknown"))
        name = printable(str(event.get("peerdisplayname") or ""))
        return f'"{name}" <{uri}>' if name else f"<{uri}>"


async def serve_phone(phone: Softphone, echo: Callable[[str], None], stop: asyncio.Event,
                      *, registrar: str, login: AgentLogin | None = None) -> bool:
    """Print the phone's events until ``stop`` is set (True) or baresip exits on its
    own (False). ``phone`` is entered already; its registration answer is the first
    line. With ``login``, the agent is logged in on the first registration and out
    when stopped."""
    lines = PhoneLines(phone.user, registrar)
    logged_in = False

    async def handle(event: Mapping[str, Any]) -> None:
        nonlocal logged_in
        if (text := lines.line(event)) is not None:
            echo(text)
        if login is not None and lines.registered and not logged_in:
            await login.login(phone.user)
            logged_in = True

    async def follow() -> None:
        if phone.registration:
            await handle(phone.registration)
        async for event in phone.events():
            await handle(event)

    follower = asyncio.create_task(follow(), name=f"phone-{phone.user}")
    stopper = asyncio.create_task(stop.wait(), name=f"phone-{phone.user}-stop")
    try:
        await asyncio.wait({follower, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(stopper)
        await cancel_and_wait(follower)
    if login is not None and logged_in:
        await login.logout(phone.user)
    return stop.is_set()
