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

from .context import DEFAULT_READ_TIMEOUT, AGICall, AGIContext, read_request, utc_now
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
from .runner import main, run_stdio
from .server import DEFAULT_PORT, FastAGIServer

__all__ = [
    "AGICall",
    "AGICommandError",
    "AGIContext",
    "AGIError",
    "AGIHangup",
    "AGIRequest",
    "AGIResponse",
    "AGITimeout",
    "CC_AGI_ERROR",
    "ConnectionClosed",
    "DEFAULT_PORT",
    "DEFAULT_READ_TIMEOUT",
    "FastAGIServer",
    "HangupNotice",
    "Handler",
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
