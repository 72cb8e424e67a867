"""Classic AGI: run one script as a process that speaks AGI over stdin/stdout.

FastAGI (:mod:`.server`) is the production path; this runner exists for set-ups
that cannot reach a FastAGI server and for debugging a script by hand. Asterisk
starts the program for every call (``AGI(/var/lib/asterisk/agi-bin/account_lookup,...)``
or ``AGI(callcenter,agi,run,account_lookup,...)``), writes the header to its stdin,
reads commands from its stdout, and sends SIGHUP when the channel hangs up (unless
``AGISIGHUP=no``). Exposed by the CLI as ``callcenter agi run SCRIPT``, which calls
:func:`main`.

The script is the one named on the command line, or else the base name of
``agi_request``. Its ``call.args`` are the ``agi_arg_N`` values that follow the
script's own name, so ``AGI(callcenter,agi,run,account_lookup,42)`` gives the same
``("42",)`` as ``AGI(agi://127.0.0.1/account_lookup,42)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO

from .context import DEFAULT_READ_TIMEOUT, AGICall, AGIContext, read_request
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
) -> bool:
    """Serve one classic AGI call over ``stdin``/``stdout`` (pipes; default: the process's).

    Returns True when the script ran (or the caller hung up), False otherwise.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), stdin or sys.stdin.buffer
    )
    write_transport, write_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, stdout or sys.stdout.buffer
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, reader, loop)
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
            log.warning("AGI runner: no usable AGI header on stdin (%s)", type(exc).__name__)
            return False
        name = script or request.script
        call = AGICall(request, reader, writer, read_timeout=read_timeout, buffered=rest,
                       args=_script_args(request, script))
        if hangup_before_call:
            call.notify_hangup()
        ok = await dispatch(call, handlers, ctx, script=name, script_timeout=script_timeout)
        log.debug("AGI runner %s channel=%s uniqueid=%s %s", name, request.channel,
                  request.uniqueid, "done" if ok else "failed")
        return ok
    finally:
        if sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        writer.close()
        read_transport.close()
        await asyncio.sleep(0)  # let the pipe transports run connection_lost()


def _script_args(request: AGIRequest, script: str | None) -> tuple[str, ...]:
    """The arguments meant for the script: those after its own name, if present."""
    args = request.args
    if script is not None and script in args:
        return args[args.index(script) + 1:]
    return args


def _install_sighup(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
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

    Before anything runs, file descriptor 1 is kept for the AGI stream and fd 1 is
    pointed at stderr: a stray ``print()`` in a script would otherwise reach Asterisk
    as a command. Exit status 0: script ran; 1: it could not (AGISTATUS=FAILURE).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 0
    script = args[0] if args else None
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    if handlers is None:
        handlers = discover("agi_scripts")
    if ctx is None:
        ctx = AGIContext(config=None)
    with protocol_out:
        ok = asyncio.run(run_stdio(handlers, ctx, script, stdout=protocol_out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
