"""AGI protocol core with no I/O (sans-io).

Everything here works on bytes handed in by the caller, so the same code serves the
FastAGI TCP server, the classic stdin/stdout runner, and the unit tests, and none of
it can block or spin on a closed socket.

The AGI conversation, as Asterisk's res_agi.c speaks it:

1. Asterisk sends the request header: ``agi_<name>: <value>\\n`` lines (``agi_network``,
   ``agi_network_script``, ``agi_request``, ``agi_channel``, ``agi_uniqueid``,
   ``agi_callerid``, ..., ``agi_arg_1`` .. ``agi_arg_N``), ended by an empty line.
2. The script sends one command line, e.g. ``GET VARIABLE "CC_ACCOUNT"\\n``, and Asterisk
   answers with one response: ``200 result=1 (value)``, ``510 Invalid or unknown
   command``, ``511 Command Not Permitted on a dead channel or intercept routine``,
   ``520 Invalid command syntax.  Proper usage not available.`` or a multi-line
   ``520-...`` usage block ending with ``520 End of proper usage.``.
3. When the channel hangs up, Asterisk writes ``HANGUP\\n`` to a FastAGI socket (unless
   the channel variable ``AGISIGHUP`` is ``no``; a classic AGI process gets SIGHUP
   instead). From then on it keeps answering commands in "dead channel" mode until
   the script closes the connection.

Exceptions (all derive from :class:`AGIError`)::

    AGIError                 base of everything this package raises
    +-- ProtocolError        the peer broke the protocol (garbage, oversize header, ...)
    +-- AGIHangup            the channel hung up (HANGUP notice)
    |   +-- ConnectionClosed the stream ended (EOF), mid-message or between messages
    +-- AGICommandError      Asterisk refused a command (510, 511, 520, other 5xx)
    +-- AGITimeout           no answer from Asterisk in time (also a TimeoutError)
    +-- ScriptLoadError      an agi_scripts module does not honour the script contract
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

__all__ = [
    "MAX_COMMAND_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_LINES",
    "AGICommandError",
    "AGIError",
    "AGIHangup",
    "AGIRequest",
    "AGIResponse",
    "AGITimeout",
    "ConnectionClosed",
    "Event",
    "HangupNotice",
    "HeaderParser",
    "ProtocolError",
    "ResponseParser",
    "ScriptLoadError",
    "format_command",
    "quote_arg",
]

# Limits. Asterisk sends ~25 header lines plus one per argument (at most 128, res_agi's
# MAX_ARGS), so anything near these limits is not Asterisk.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_LINES = 200
# res_agi reads a command with fgets() into a 2048-byte buffer (AGI_BUF_LEN): a longer
# line is cut and its tail is run as a *second* command. So a command, newline
# included, must fit in 2047 bytes.
MAX_COMMAND_BYTES = 2047
# One response line. GET VARIABLE values are cut by Asterisk to ~1 KiB; 64 KiB is ample.
MAX_RESPONSE_LINE_BYTES = 64 * 1024
# Lines in one multi-line (``520-``) usage block.
MAX_BLOCK_LINES = 200

_ENCODING = "utf-8"


# --- exceptions -------------------------------------------------------------------


class AGIError(Exception):
    """Base class of every error raised by the AGI layer."""


class ProtocolError(AGIError):
    """The peer sent something that is not AGI (garbage, oversize header, bad line)."""


class AGIHangup(AGIError):
    """The channel hung up: Asterisk sent ``HANGUP`` or closed the stream.

    A script normally just lets this propagate: the dispatcher treats it as the
    ordinary end of a call, not as an error.
    """


class ConnectionClosed(AGIHangup):
    """The AGI stream ended (EOF). For a script this is the same as a hangup."""


class AGICommandError(AGIError):
    """Asterisk refused a command: 510 unknown command, 511 dead channel, 520 usage."""

    def __init__(self, code: int, message: str, command: str = "") -> None:
        self.code = code
        self.message = message
        self.command = command
        where = f" for {command}" if command else ""
        super().__init__(f"AGI {code}{where}: {message}")


class AGITimeout(AGIError, TimeoutError):
    """Asterisk did not answer in time; the connection can no longer be trusted."""


class ScriptLoadError(AGIError):
    """An ``agi_scripts`` module does not follow the script contract."""


# --- request header ---------------------------------------------------------------


@dataclass(frozen=True)
class AGIRequest:
    """The AGI request header: what Asterisk tells a script about the call.

    ``env`` maps every ``agi_*`` header name to its value, exactly as sent. It may hold
    caller data (caller id, arguments): do not log it whole.
    """

    env: Mapping[str, str]

    def __post_init__(self) -> None:
        # Freeze the mapping too, so a request can be shared without defensive copies.
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))

    @property
    def script(self) -> str:
        """Script name the dialplan asked for, e.g. ``account_lookup``.

        FastAGI: ``AGI(agi://127.0.0.1:4573/account_lookup?x=1,...)`` makes Asterisk send
        ``agi_network_script: account_lookup?x=1``; the query and any leading path are
        dropped. Classic AGI: ``agi_request`` is the program path, e.g.
        ``/var/lib/asterisk/agi-bin/account_lookup.py``; its base name without
        extension is used. Empty string when neither header names a script.
        """
        network_script = self.env.get("agi_network_script")
        if network_script:
            return _last_segment(network_script.split("?", 1)[0].split("#", 1)[0])
        request = self.env.get("agi_request", "")
        if (
            "://" in request
        ):  # agi://host/script or hagi://... without agi_network_script
            return _last_segment(urlsplit(request).path)
        name = _last_segment(request)
        return name.rsplit(".", 1)[0] if "." in name else name

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1`` .. ``agi_arg_N`` in order (Asterisk numbers them without gaps)."""
        values: list[str] = []
        while (value := self.env.get(f"agi_arg_{len(values) + 1}")) is not None:
            values.append(value)
        return tuple(values)

    @property
    def channel(self) -> str:
        """Channel name, e.g. ``PJSIP/1001-00000012``."""
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        """Channel unique id, the key that ties logs, CDR and CEL together."""
        return self.env.get("agi_uniqueid", "")

    @property
    def callerid(self) -> str | None:
        """Caller id number, or None when Asterisk reports it as ``unknown`` or absent."""
        value = self.env.get("agi_callerid", "")
        return None if value in ("", "unknown") else value

    @property
    def is_network(self) -> bool:
        """True for FastAGI (``agi_network: yes``), False for a classic AGI process."""
        return self.env.get("agi_network", "").lower() == "yes"


def _last_segment(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


class _LineBuffer:
    """Split a byte stream into lines; decode only complete lines.

    Decoding whole lines (never a raw TCP chunk) keeps a UTF-8 character that arrives
    split across two reads intact.
    """

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._max_line = max_line
        self.consumed = 0  # bytes of complete lines handed out, newlines included

    def feed(self, data: bytes) -> Iterator[str]:
        self._buf += data
        while (nl := self._buf.find(b"\n")) != -1:
            raw = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            self.consumed += nl + 1
            if len(raw) > self._max_line:
                raise ProtocolError(f"AGI line longer than {self._max_line} bytes")
            # Asterisk ends lines with a bare \n; tolerate \r\n from hand-made peers.
            yield raw.rstrip(b"\r").decode(_ENCODING, errors="replace")
        if len(self._buf) > self._max_line:
            raise ProtocolError(f"AGI line longer than {self._max_line} bytes")

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


class HeaderParser:
    """Feed it bytes until it returns the :class:`AGIRequest`.

    Bytes that arrive after the blank line (e.g. an early ``HANGUP``) are kept in
    :attr:`remainder` for the :class:`ResponseParser`.
    """

    def __init__(
        self, max_bytes: int = MAX_HEADER_BYTES, max_lines: int = MAX_HEADER_LINES
    ) -> None:
        self._lines = _LineBuffer(max_line=max_bytes)
        self._max_bytes = max_bytes
        self._max_lines = max_lines
        self._seen_bytes = 0  # only to tell "closed before" from "closed mid-header"
        self._env: dict[str, str] = {}
        self._count = 0
        self._request: AGIRequest | None = None
        self._remainder = b""

    @property
    def remainder(self) -> bytes:
        """Bytes received after the end of the header."""
        return self._remainder

    def feed(self, data: bytes) -> AGIRequest | None:
        """Consume ``data``; return the request once the blank line has been seen."""
        if self._request is not None:
            self._remainder += data
            return self._request
        self._seen_bytes += len(data)
        for line in self._lines.feed(data):
            if line == "":
                if not self._env:
                    raise ProtocolError("empty AGI header")
                self._request = AGIRequest(self._env)
                # The line buffer holds whatever followed the blank line; the generator
                # is abandoned here, so those bytes are exactly the unsplit rest.
                self._remainder = self._lines.pending
                return self._request
            self._count += 1
            if self._count > self._max_lines:
                raise ProtocolError(f"AGI header has more than {self._max_lines} lines")
            self._check_size(self._lines.consumed)
            self._env_line(line)
        self._check_size(self._lines.consumed + len(self._lines.pending))
        return None

    def _check_size(self, size: int) -> None:
        if size > self._max_bytes:
            raise ProtocolError(f"AGI header larger than {self._max_bytes} bytes")

    def feed_eof(self) -> None:
        """The stream ended before the header was complete."""
        if self._request is None:
            state = "mid-header" if self._seen_bytes else "before the header"
            raise ConnectionClosed(f"AGI peer closed the connection {state}")

    def _env_line(self, line: str) -> None:
        name, sep, value = line.partition(":")
        if not sep or not name.startswith("agi_") or " " in name:
            # Not "agi_name: value": a port scanner, an HTTP client, a wrong port.
            raise ProtocolError("not an AGI header line")
        # res_agi writes "agi_name: value": exactly one space after the colon.
        self._env[name] = value.removeprefix(" ")


# --- commands -----------------------------------------------------------------------

_COMMAND_NAME = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})


def quote_arg(value: str | int) -> str:
    """Quote one command argument the way res_agi's ``parse_args()`` reads it back.

    Inside double quotes spaces are literal, and ``\\`` escapes the next character, so
    ``"`` and ``\\`` are escaped. CR, LF and NUL cannot be sent at all (a newline ends
    the command and would start a second, caller-controlled one), so they become
    spaces. ``""`` is a valid empty argument.
    """
    text = str(value).translate(_LINE_BREAKS)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(name: str, *args: str | int) -> bytes:
    """Build one AGI command line, e.g. ``format_command("GET VARIABLE", "X")``.

    Every argument is quoted (see :func:`quote_arg`), so a value taken from the caller
    (caller id, DTMF, a SIP header) is always one argument and never a new command.
    Raises ValueError for a malformed command name or a line longer than Asterisk's
    command buffer (:data:`MAX_COMMAND_BYTES`), which it would split in two.
    """
    if not _COMMAND_NAME.fullmatch(name):
        raise ValueError(f"not an AGI command name: {name!r}")
    parts = [name.upper(), *(quote_arg(arg) for arg in args)]
    line = (" ".join(parts) + "\n").encode(_ENCODING)
    if len(line) > MAX_COMMAND_BYTES:
        raise ValueError(
            f"AGI command {name.upper()} is {len(line)} bytes; Asterisk reads at most "
            f"{MAX_COMMAND_BYTES}"
        )
    return line


# --- responses ----------------------------------------------------------------------


@dataclass(frozen=True)
class AGIResponse:
    """One final answer from Asterisk to one command.

    ``200 result=1 (value) endpos=1234`` gives ``code=200, result="1", data="value",
    extra={"endpos": "1234"}``. ``result`` is ``""`` when the line has none (``510 ...``)
    or when Asterisk sent ``result=`` (GET DATA timeout with no digits). ``text`` is
    the free text: the error message of a 5xx line, the whole usage text of a 520
    block, trailing words of a 200 line. ``data`` may carry a channel variable's
    value, so it is kept out of ``repr()`` (and therefore out of logs).
    """

    code: int
    result: str = ""
    data: str | None = field(default=None, repr=False)
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    text: str = ""

    @property
    def ok(self) -> bool:
        """True for a 200 response (the command ran; ``result`` says how it went)."""
        return self.code == 200

    @property
    def digit(self) -> str | None:
        """DTMF digit for STREAM FILE / WAIT FOR DIGIT style results, else None.

        Those commands answer ``result=<ASCII code of the digit>``, ``0`` for no digit
        and ``-1`` for failure or hangup.
        """
        try:
            char = chr(int(self.result))
        except (ValueError, OverflowError):
            return None
        return char if char in _DTMF else None


@dataclass(frozen=True)
class HangupNotice:
    """Asterisk's out-of-band ``HANGUP`` line: the channel is gone, not an answer."""


Event = AGIResponse | HangupNotice

_STATUS_LINE = re.compile(r"(?P<code>[1-5]\d\d)(?:(?P<sep>[ -])(?P<rest>.*))?")
# "(data)" then key=value pairs. Greedy .* backtracks to the last ")" that is followed
# only by key=value tokens, so a value such as "Alice (home)" survives.
_DATA_THEN_PAIRS = re.compile(r"\((?P<data>.*)\)(?P<tail>(?:\s+[\w-]+=\S*)*)\s*")
_END_OF_USAGE = "End of proper usage."
_DTMF = frozenset("0123456789*#ABCD")


class ResponseParser:
    """Feed it bytes; it yields :class:`AGIResponse` and :class:`HangupNotice` events.

    ``100 ...`` interim lines (``100 result=0 Trying...``) are yielded as responses
    with ``code=100``; the caller keeps waiting for the final one.
    """

    def __init__(self, max_line: int = MAX_RESPONSE_LINE_BYTES) -> None:
        self._lines = _LineBuffer(max_line=max_line)
        # Open multi-line block: its code, first line text, usage lines so far.
        self._block: tuple[int, str, list[str]] | None = None

    @property
    def idle(self) -> bool:
        """True when no partial line or open usage block is buffered."""
        return self._block is None and not self._lines.pending

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the complete events it finished, in order."""
        events: list[Event] = []
        for line in self._lines.feed(data):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def feed_eof(self) -> None:
        """The stream ended: always raises :class:`ConnectionClosed`.

        There is no clean end of stream for a command that is still waiting for an
        answer, so EOF is always an exception; the message says whether it cut a
        response in half.
        """
        where = "between responses" if self.idle else "mid-response"
        raise ConnectionClosed(f"AGI peer closed the connection {where}")

    def _line(self, line: str) -> Event | None:
        if self._block is not None:
            return self._block_line(line)
        if line == "HANGUP":
            return HangupNotice()
        if line == "":
            return None  # stray blank line: nothing to answer
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            raise ProtocolError("unexpected line from Asterisk (not an AGI response)")
        code = int(match["code"])
        rest = match["rest"] or ""
        if match["sep"] == "-":
            # "520-Invalid command syntax.  Proper usage follows:" opens a block that
            # ends with "520 End of proper usage.".
            self._block = (code, rest, [])
            return None
        return _parse_status(code, rest.strip())

    def _block_line(self, line: str) -> Event | None:
        assert self._block is not None
        code, first, usage = self._block
        end = f"{code} {_END_OF_USAGE}"
        closing = line.startswith(f"{code} ")
        if not closing and line.endswith(end):
            # Older res_agi printed the usage without a trailing newline, gluing the
            # closing line onto the last usage line.
            usage.append(line[: -len(end)])
            closing = True
        elif not closing:
            usage.append(line)
            if len(usage) > MAX_BLOCK_LINES:
                raise ProtocolError(
                    f"AGI {code} block longer than {MAX_BLOCK_LINES} lines"
                )
            return None
        self._block = None
        text = "\n".join([first, *usage]).rstrip("\n")
        return AGIResponse(code=code, text=text)


def _parse_status(code: int, rest: str) -> AGIResponse:
    """Parse the part after the code: ``result=<r> [(<data>)] [k=v ...] [words]``."""
    if not rest.startswith("result="):
        return AGIResponse(code=code, text=rest)
    result, _, tail = rest[len("result=") :].partition(" ")
    if result.startswith("("):  # "200 result= (timeout)": empty result, then data
        result, tail = "", f"{result} {tail}".strip()
    tail = tail.strip()
    data: str | None = None
    if tail.startswith("("):
        match = _DATA_THEN_PAIRS.fullmatch(tail)
        if match is not None:
            data, tail = match["data"], match["tail"]
        else:
            close = tail.rfind(")")
            data, tail = (
                (tail[1:close], tail[close + 1 :]) if close > 0 else (tail[1:], "")
            )
    extra: dict[str, str] = {}
    words: list[str] = []
    for token in tail.split():
        key, eq, value = token.partition("=")
        if eq and key:
            extra[key] = value
        else:
            words.append(token)
    return AGIResponse(
        code=code, result=result, data=data, extra=extra, text=" ".join(words)
    )
