"""Classic AGI: run one script as a process that speaks AGI over stdin/stdout.

FastAGI (:mod:`.server`) is the production path; this runner exists for set-ups
that cannot reach a FastAGI server and for debugging a script by hand. Asterisk
starts the program for every call (``AGI(/var/lib/asterisk/agi-bin/account_lookup,...)``
or ``AGI(callcenter,agi,run,/etc/callcenter,account_lookup,...)``), writes the header
to its stdin, reads commands from its stdout, and sends SIGHUP when the channel hangs
up (unless ``AGISIGHUP=no``). The CLI's ``callcenter agi run CONFIG_DIR [SCRIPT]``
calls :func:`run_stdio`; :func:`main` is the same without the CLI.

The script is the one named on the command line, or else the base name of
``agi_request``. Asterisk passes every word after the program as ``agi_arg_N``, so
the script's ``call.args`` are the ones after its own name:
``AGI(callcenter,agi,run,/etc/callcenter,account_lookup,42)`` gives the same
``("42",)`` as ``AGI(agi://127.0.0.1/account_lookup,42)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import BinaryIO

from .context import (
    DEFAULT_READ_TIMEOUT,
    AGICall,
    AGIContext,
    ByteReader,
    ByteWriter,
    read_request,
)
from .protocol import AGIError, AGIRequest
from .registry import Handler, discover, dispatch

__all__ = ["main", "run_stdio"]

log = logging.getLogger("callcenter.asterisk.agi")


async def run_stdio(
    handlers: Mapping[str, Handler],
    ctx: AGIContext,
    script: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    header_timeout: float = 5.0,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    script_timeout: float | None = None,
) -> int:
    """Serve one classic AGI call over ``stdin``/``stdout``; return the exit status.

    0: the script ran (or the caller hung up); 1: it could not (no header, unknown
    script, exception), which Asterisk reports as ``AGISTATUS=FAILURE``.

    With the default ``stdout`` (the process's own), fd 1 is first set aside for the
    AGI stream and pointed at stderr: a stray ``print()`` in a script would otherwise
    reach Asterisk as a command.
    """
    loop = asyncio.get_running_loop()
    owned = stdout is None
    stdout = _take_stdout() if stdout is None else stdout
    reader, writer, close = await _open_stdio(stdin or sys.stdin.buffer, stdout)
    call: AGICall | None = None
    hangup_before_call = False

    def on_sighup() -> None:
        # Asterisk's hangup signal for classic AGI; the FastAGI equivalent is "HANGUP".
        nonlocal hangup_before_call
        if call is None:
            hangup_before_call = True
        else:
            call.notify_hangup()

    sighup = _install_sighup(loop, on_sighup)
    try:
        try:
            async with asyncio.timeout(header_timeout):
                request, rest = await read_request(reader)
        except (AGIError, TimeoutError, ConnectionError) as exc:
            log.warning(
                "AGI runner: no usable AGI header on stdin (%s)", type(exc).__name__
            )
            return 1
        name = script or request.script
        call = AGICall(
            request,
            reader,
            writer,
            read_timeout=read_timeout,
            buffered=rest,
            args=_script_args(request, script),
        )
        if hangup_before_call:
            call.notify_hangup()
        ok = await dispatch(
            call, handlers, ctx, script=name, script_timeout=script_timeout
        )
        log.debug(
            "AGI runner %s channel=%s uniqueid=%s %s",
            name,
            request.channel,
            request.uniqueid,
            "done" if ok else "failed",
        )
        return 0 if ok else 1
    finally:
        if sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        await close()
        if owned:
            stdout.close()


async def _open_stdio(
    stdin: BinaryIO, stdout: BinaryIO
) -> tuple[ByteReader, ByteWriter, Callable[[], Awaitable[None]]]:
    """asyncio streams over the AGI pipes; plain files when run by hand with redirections.

    Asterisk gives a classic AGI pipes, which asyncio reads without blocking. A person
    replaying a transcript (``callcenter agi run x < session.txt > out.txt``) gives
    regular files, which pipe transports refuse; those are finite and never block.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transports: list[asyncio.BaseTransport] = []
    if _is_stream(stdin):
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), stdin
        )
        transports.append(read_transport)
    else:
        reader.feed_data(stdin.read())
        reader.feed_eof()
    writer: ByteWriter
    if _is_stream(stdout):
        write_transport, write_protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, stdout
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, reader, loop)
        transports.append(write_transport)
    else:
        writer = _FileWriter(stdout)

    async def close() -> None:
        for transport in transports:
            transport.close()
        if not isinstance(writer, asyncio.StreamWriter):
            stdout.flush()
        await asyncio.sleep(0)  # let the pipe transports run connection_lost()

    return reader, writer, close


def _is_stream(file: BinaryIO) -> bool:
    mode = os.fstat(file.fileno()).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


class _FileWriter:
    """ByteWriter over a regular file (writes to a local file do not block)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)

    async def drain(self) -> None:
        self._file.flush()


def _take_stdout() -> BinaryIO:
    """Keep fd 1 for AGI; send everything else written to stdout to stderr."""
    sys.stdout.flush()
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return protocol_out


def _script_args(request: AGIRequest, script: str | None) -> tuple[str, ...]:
    """The arguments meant for the script: those after its own name, if present."""
    args = request.args
    if script is not None and script in args:
        return args[args.index(script) + 1 :]
    return args


def _install_sighup(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> bool:
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):
        return False  # not the main thread, or no signals on this platform
    return True


def main(
    argv: Sequence[str] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    ctx: AGIContext | None = None,
) -> int:
    """Entry point for ``callcenter agi run [SCRIPT]``; returns the exit status.

    ``argv`` is ``[SCRIPT]`` or empty. The CLI passes the real ``handlers`` and ``ctx``;
    without them (``python -m callcenter.asterisk.agi.runner``) the ``agi_scripts``
    package is discovered and the context has no config, db or http.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0
    script = args[0] if args else None
    if not logging.getLogger().handlers:
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.WARNING,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    if handlers is None:
        handlers = discover("agi_scripts")
    if ctx is None:
        ctx = AGIContext(config=None)
    return asyncio.run(run_stdio(handlers, ctx, script))


if __name__ == "__main__":
    sys.exit(main())
