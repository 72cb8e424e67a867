"""What an AGI script is handed: the call (:class:`AGICall`) and the services (:class:`AGIContext`).

Every script in ``agi_scripts`` is ``async def handle(call: AGICall, ctx: AGIContext)``.
The same :class:`AGICall` runs over a FastAGI TCP connection and over a classic AGI
process's stdin/stdout, so a script does not know or care which one it is on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from .protocol import (
    AGICommandError,
    AGIHangup,
    AGIRequest,
    AGIResponse,
    AGITimeout,
    ConnectionClosed,
    Event,
    HangupNotice,
    HeaderParser,
    ProtocolError,
    ResponseParser,
    format_command,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_READ_TIMEOUT",
    "AGICall",
    "AGIContext",
    "ByteReader",
    "ByteWriter",
    "read_request",
    "utc_now",
]

DEFAULT_READ_TIMEOUT: Final = 10.0
_READ_CHUNK = 64 * 1024
_HEADER_CHUNK = 4096


def utc_now() -> datetime:
    """Timezone-aware now; the default clock."""
    return datetime.now(UTC)


#: Characters that MSet or EXEC's variable substitution would interpret.
_MSET_UNSAFE = re.compile(r'[,"\\${}()\r\n]')


@dataclass(frozen=True)
class AGIContext:
    """Services shared by every AGI script, built once by the composition root.

    Tests build their own with a fake ``clock`` (``dataclasses.replace`` works).
    """

    config: Any
    """The loaded call-center configuration."""
    clock: Callable[[], datetime] = utc_now
    """Timezone-aware "now"; schedule checks must use this, never datetime.now()."""
    db: Any = None
    """An SQLAlchemy ``async_sessionmaker`` for writes, or None when no database is configured."""
    accounts: Any = None
    """A :class:`callcenter.storage.directory.AccountDirectory` for look-ups, or None."""
    http: aiohttp.ClientSession | None = None
    """Shared HTTP client session (CRM lookups), or None."""
    log: logging.Logger = field(
        default_factory=lambda: logging.getLogger("agi_scripts")
    )
    """Logger for scripts. Log channel and uniqueid, never caller data or secrets."""


class ByteReader(Protocol):
    """What AGICall reads from: an ``asyncio.StreamReader`` or anything like it."""

    async def read(self, n: int = -1) -> bytes: ...


class ByteWriter(Protocol):
    """What AGICall writes to: an ``asyncio.StreamWriter`` or anything like it."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def read_request(reader: ByteReader) -> tuple[AGIRequest, bytes]:
    """Read the AGI header; return it with any bytes that followed it.

    No timeout here: the caller bounds it. Raises ConnectionClosed on EOF (which is
    never read twice, so a closed peer cannot make this spin) and ProtocolError on
    garbage or an oversize header.
    """
    parser = HeaderParser()
    while True:
        data = await reader.read(_HEADER_CHUNK)
        if not data:
            parser.feed_eof()  # raises ConnectionClosed
        request = parser.feed(data)
        if request is not None:
            return request, parser.remainder


class _Unset:
    pass


_DEFAULT: Final = _Unset()


class AGICall:
    """One AGI conversation with Asterisk, over any asyncio reader/writer pair.

    Commands are strictly one at a time: write a line, read exactly one final answer.
    If that ever goes wrong (timeout, cancellation mid-read, garbage) the call is
    marked broken, because a late answer would otherwise be taken as the answer to
    the next command.
    """

    def __init__(
        self,
        request: AGIRequest,
        reader: ByteReader,
        writer: ByteWriter,
        *,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        buffered: bytes = b"",
        args: tuple[str, ...] | None = None,
    ) -> None:
        """``buffered``: bytes read past the header; ``args`` overrides ``request.args``."""
        self.request = request
        self.read_timeout = read_timeout
        self._reader = reader
        self._writer = writer
        self._args = request.args if args is None else args
        self._parser = ResponseParser()
        self._events: list[Event] = []
        self._hung_up = False
        self._broken: str | None = None
        self._busy = False
        try:
            # Usually empty; an early "HANGUP" can follow the header in the same read.
            self._events = self._parser.feed(buffered)
        except ProtocolError as exc:
            self._broken = str(exc)
        self._take_hangup_notices()

    # --- state -----------------------------------------------------------------------

    @property
    def args(self) -> tuple[str, ...]:
        """Script arguments from the dialplan, e.g. ``AGI(agi://.../account_lookup,${EXTEN})``."""
        return self._args

    @property
    def hung_up(self) -> bool:
        """True once Asterisk has said ``HANGUP``, closed the stream, or sent 511."""
        return self._hung_up

    @property
    def usable(self) -> bool:
        """True while another command can be sent and its answer trusted."""
        return not self._hung_up and self._broken is None and not self._busy

    def notify_hangup(self) -> None:
        """Mark the channel as hung up (classic AGI: called from the SIGHUP handler)."""
        self._hung_up = True

    # --- the one primitive -------------------------------------------------------------

    async def command(
        self, name: str, *args: str | int, timeout: float | None | _Unset = _DEFAULT
    ) -> AGIResponse:
        """Send one AGI command and return Asterisk's ``200`` answer.

        ``timeout`` (seconds, None for no limit) defaults to :attr:`read_timeout`; pass
        more for commands that wait on the caller (STREAM FILE, GET DATA, EXEC Wait).
        Raises :class:`AGIHangup` if the channel hung up (a ``HANGUP`` notice before the
        answer, or EOF), :class:`AGICommandError` for 510/511/520 and other 5xx,
        :class:`AGITimeout` if no answer came in time.
        """
        if self._hung_up:
            raise AGIHangup(f"channel hung up; {name} not sent")
        if self._broken is not None:
            raise ProtocolError(
                f"AGI connection unusable ({self._broken}); {name} not sent"
            )
        if self._busy:
            # Either two commands at once on one call, or an earlier command was
            # cancelled before its answer arrived; both leave the stream out of step.
            raise ProtocolError(
                f"another AGI command is running or was cut off; {name} not sent"
            )
        line = format_command(name, *args)
        limit = self.read_timeout if isinstance(timeout, _Unset) else timeout
        self._busy = True
        # If anything below raises or is cancelled before the answer is read, _busy
        # stays True and usable is False: the stream is out of step.
        try:
            async with asyncio.timeout(limit):
                self._writer.write(line)
                await self._writer.drain()
                response, hangup_seen = await self._read_final()
        except TimeoutError:
            self._broken = f"no answer to {name} within {limit} s"
            raise AGITimeout(
                f"Asterisk did not answer {name} within {limit} s"
            ) from None
        except ConnectionClosed:
            self._hung_up = True
            self._broken = "connection closed"
            raise
        except ConnectionError as exc:  # reset / broken pipe while writing
            self._hung_up = True
            self._broken = "connection lost"
            raise ConnectionClosed(f"AGI connection lost during {name}") from exc
        except ProtocolError as exc:
            self._broken = str(exc)
            raise
        self._busy = False
        self._take_hangup_notices()
        if hangup_seen:
            # Asterisk still answered the command (in dead-channel mode), so the stream
            # is in step; the script is told the caller is gone.
            raise AGIHangup(f"channel hung up during {name}")
        if response.code == 511:
            self._hung_up = True  # "Command Not Permitted on a dead channel"
        if response.code >= 500:
            raise AGICommandError(response.code, response.text, name)
        return response

    def _take_hangup_notices(self) -> None:
        """Note a HANGUP already received, so the next command is not even sent."""
        while self._events and isinstance(self._events[0], HangupNotice):
            self._events.pop(0)
            self._hung_up = True

    async def _read_final(self) -> tuple[AGIResponse, bool]:
        """Read events until the final answer; report whether HANGUP came first."""
        hangup_seen = False
        while True:
            while self._events:
                event = self._events.pop(0)
                if isinstance(event, HangupNotice):
                    # Out of band: the answer to our command is still coming.
                    self._hung_up = hangup_seen = True
                elif event.code == 100:
                    continue  # "100 result=0 Trying...": interim, wait for the final
                else:
                    return event, hangup_seen
            data = await self._reader.read(_READ_CHUNK)
            if not data:
                self._parser.feed_eof()  # always raises ConnectionClosed
            self._events.extend(self._parser.feed(data))

    # --- conveniences --------------------------------------------------------------------

    async def get_variable(self, name: str) -> str | None:
        """Value of channel variable ``name``, or None if it is not set.

        Asterisk answers ``200 result=1 (value)``, or ``200 result=0`` when unset.
        """
        response = await self.command("GET VARIABLE", name)
        return response.data if response.result == "1" else None

    async def set_variable(self, name: str, value: str | int) -> None:
        """Set channel variable ``name`` (visible to the dialplan after AGI returns)."""
        await self.command("SET VARIABLE", name, value)

    async def verbose(self, message: str, level: int = 1) -> None:
        """Write ``message`` to the Asterisk console/log at verbosity ``level``."""
        await self.command("VERBOSE", message, level)

    async def answer(self) -> AGIResponse:
        """Answer the channel (``result=0`` ok, ``-1`` failure)."""
        return await self.command("ANSWER")

    async def stream_file(
        self,
        filename: str,
        escape_digits: str = "",
        offset: int | None = None,
        *,
        timeout: float | None = 60.0,
    ) -> AGIResponse:
        """Play a sound file (no extension, e.g. ``queue-thankyou``).

        ``response.digit`` is the escape digit pressed, if any; ``result=-1`` means the
        file could not be played or the channel hung up; ``extra["endpos"]`` is the
        sample offset reached. ``timeout`` must cover the whole prompt.
        """
        args: list[str | int] = [filename, escape_digits]
        if offset is not None:
            args.append(offset)
        return await self.command("STREAM FILE", *args, timeout=timeout)

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        """Set several channel variables, in one round trip when that is safe.

        ``EXEC MSet(a=1,b=2)`` sets them all with one command (a look-up that sets five
        variables costs a fifth of the round trips). MSet splits on commas and Asterisk
        substitutes ``${...}`` in EXEC arguments, so any value holding one of
        ``, " \\ $ { } ( )`` or a line break is set with its own ``SET VARIABLE``
        instead: correctness never depends on the caller's data.
        """
        plain = {k: v for k, v in variables.items() if not _MSET_UNSAFE.search(v)}
        for name, value in variables.items():
            if name not in plain:
                await self.set_variable(name, value)
        if len(plain) == 1:
            (name, value), = plain.items()
            await self.set_variable(name, value)
        elif plain:
            await self.exec_app("MSet", *(f"{k}={v}" for k, v in plain.items()))

    async def exec_app(
        self, application: str, *app_args: str, timeout: float | None = 60.0
    ) -> AGIResponse:
        """Run a dialplan application, e.g. ``exec_app("Playback", "beep")``.

        Application arguments are joined with ``,`` as in the dialplan.
        """
        return await self.command(
            "EXEC", application, ",".join(app_args), timeout=timeout
        )

    async def hangup(self) -> None:
        """Hang up the channel. Asterisk then also sends ``HANGUP``; that is expected."""
        if self._hung_up:
            return
        try:
            await self.command("HANGUP")
        except AGIHangup:
            pass  # the HANGUP notice overtook the answer: exactly what we asked for
        except AGICommandError as exc:
            if exc.code != 511:  # 511: the channel was already dead
                raise
        self._hung_up = True
