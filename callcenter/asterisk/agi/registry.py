"""Find AGI scripts and run the one a request names, so that a call never falls off the dialplan.

Contract of a script (one module per script in the ``agi_scripts`` package, named
exactly as the dialplan calls it: ``AGI(agi://127.0.0.1:4573/account_lookup,...)``
runs ``agi_scripts/account_lookup.py``):

* a module docstring giving its dialplan contract (how it is reached, the channel
  variables it reads and sets, every way it exits);
* ``async def handle(call: AGICall, ctx: AGIContext) -> None``.

Modules whose name starts with ``_`` are helpers, not scripts.

Every failure ends the same way for the dialplan: the AGI returns, and the channel
variable ``CC_AGI_ERROR`` says why (``unknown script``, ``script error: <Type>``,
``script timeout``), so the dialplan can branch to its fallback. A hangup is not a
failure. The dialplan should clear ``CC_AGI_ERROR`` before a second AGI on the
same channel if it tests it afterwards.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Final, TypeAlias

from ..variables import AGI_ERROR
from .context import AGICall, AGIContext
from .protocol import AGIError, AGIHangup, ScriptLoadError

__all__ = ["CC_AGI_ERROR", "Handler", "discover", "dispatch"]

# Channel variable set when a script could not do its job (named once, in variables.py).
CC_AGI_ERROR: Final = AGI_ERROR

Handler: TypeAlias = Callable[[AGICall, AGIContext], Awaitable[None]]

log = logging.getLogger("callcenter.asterisk.agi")


def discover(package: str | ModuleType = "agi_scripts") -> dict[str, Handler]:
    """Import every script module of ``package``; return ``{script name: handle}``.

    Fails loudly at start-up (ImportError from the module itself, or
    :class:`ScriptLoadError`) rather than at the first call that needs the script.
    """
    pkg = importlib.import_module(package) if isinstance(package, str) else package
    if not hasattr(pkg, "__path__"):
        raise ScriptLoadError(f"{pkg.__name__} is a module, not a package of scripts")
    handlers: dict[str, Handler] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        handle = getattr(module, "handle", None)
        if not inspect.iscoroutinefunction(handle):
            raise ScriptLoadError(
                f"{module.__name__}: an AGI script must define "
                "'async def handle(call: AGICall, ctx: AGIContext) -> None'"
            )
        if not (module.__doc__ or "").strip():
            raise ScriptLoadError(
                f"{module.__name__}: an AGI script needs a module docstring with its "
                "dialplan contract"
            )
        handlers[info.name] = handle
    return handlers


async def dispatch(
    call: AGICall,
    handlers: Mapping[str, Handler],
    ctx: AGIContext,
    *,
    script: str | None = None,
    script_timeout: float | None = None,
) -> bool:
    """Run the handler for ``script`` (default: the one the request names).

    Returns True when the script ran to its end or the caller hung up, False when it
    could not run (unknown script, exception, timeout); then ``CC_AGI_ERROR`` has been
    set if the channel is still there. Never raises for script errors;
    ``CancelledError`` propagates.
    """
    name = call.request.script if script is None else script
    where = f"channel={call.request.channel} uniqueid={call.request.uniqueid}"
    handler = handlers.get(name)
    if handler is None:
        log.warning("AGI unknown script %r %s", name[:64], where)
        await _report(call, "unknown script")
        return False
    timer = asyncio.timeout(script_timeout)
    try:
        async with timer:
            await handler(call, ctx)
    except AGIHangup:
        log.debug("AGI %s: caller hung up %s", name, where)
        return True
    except TimeoutError as exc:
        if not timer.expired():
            # The script's own wait timed out (AGITimeout, an HTTP call, ...).
            kind = type(exc).__name__
            log.warning("AGI %s failed with %s %s", name, kind, where, exc_info=True)
            await _report(call, f"script error: {kind}")
        else:
            # Our limit cancelled the script, possibly mid-command: _report() only
            # speaks if the stream is still in step.
            log.warning("AGI %s ran longer than %s s %s", name, script_timeout, where)
            await _report(call, "script timeout")
        return False
    except Exception as exc:  # a script bug must not take the call off the dialplan
        # Only the type goes to the channel; the traceback goes to our log.
        log.warning(
            "AGI %s failed with %s %s", name, type(exc).__name__, where, exc_info=True
        )
        await _report(call, f"script error: {type(exc).__name__}")
        return False
    return True


async def _report(call: AGICall, reason: str) -> None:
    """Set CC_AGI_ERROR if the channel is still there and the stream still in step."""
    if not call.usable:
        return
    try:
        await call.set_variable(CC_AGI_ERROR, reason)
    except (AGIError, OSError) as exc:
        log.debug("AGI could not set %s: %s", CC_AGI_ERROR, type(exc).__name__)
