"""AGI layer: a sans-io protocol core, an asyncio FastAGI server and a classic stdin runner.

Why our own: pyst2's FastAGI does not import on Python 3 (``SocketServer``), and
panoramisk 1.4's FastAGI server busy-loops, blocking its event loop, when a client
closes before the end of the header.

Modules::

    protocol  parse the header and responses, format commands; no I/O
    context   AGICall (one conversation over an asyncio reader/writer) and AGIContext
    registry  discover agi_scripts modules; dispatch a request, CC_AGI_ERROR on failure
    server    FastAGIServer: AGI(agi://127.0.0.1:4573/<script>,...)
    runner    run_stdio()/main(): AGI(<program>,...) as a process per call

A script (``agi_scripts/<name>.py``)::

    async def handle(call: AGICall, ctx: AGIContext) -> None:
        account = await call.get_variable("CC_ACCOUNT")
        await call.set_variable("CC_ACCOUNT_TIER", "gold")
"""

from .context import (
    DEFAULT_READ_TIMEOUT,
    AGICall,
    AGIContext,
    ByteReader,
    ByteWriter,
    read_request,
    utc_now,
)
from .protocol import (
    AGICommandError,
    AGIError,
    AGIHangup,
    AGIRequest,
    AGIResponse,
    AGITimeout,
    ConnectionClosed,
    HangupNotice,
    HeaderParser,
    ProtocolError,
    ResponseParser,
    ScriptLoadError,
    format_command,
    quote_arg,
)
from .registry import CC_AGI_ERROR, Handler, discover, dispatch
from .server import DEFAULT_PORT, FastAGIServer


def __getattr__(name: str) -> object:
    # The runner is imported on first use, so `python -m callcenter.asterisk.agi.runner`
    # does not find it already imported (runpy warns about that on every call).
    if name in ("main", "run_stdio"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CC_AGI_ERROR",
    "DEFAULT_PORT",
    "DEFAULT_READ_TIMEOUT",
    "AGICall",
    "AGICommandError",
    "AGIContext",
    "AGIError",
    "AGIHangup",
    "AGIRequest",
    "AGIResponse",
    "AGITimeout",
    "ByteReader",
    "ByteWriter",
    "ConnectionClosed",
    "FastAGIServer",
    "Handler",
    "HangupNotice",
    "HeaderParser",
    "ProtocolError",
    "ResponseParser",
    "ScriptLoadError",
    "discover",
    "dispatch",
    "format_command",
    "main",
    "quote_arg",
    "read_request",
    "run_stdio",
    "utc_now",
]
