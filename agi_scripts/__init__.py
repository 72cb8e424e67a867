"""AGI scripts: one module per script, named exactly as the dialplan calls it.

``AGI(agi://127.0.0.1:4573/account_lookup,${CALLERID(num)})`` runs
``agi_scripts/account_lookup.py``. Each module has:

* a module docstring with its dialplan contract: how the dialplan reaches it, the
  channel variables it reads and sets, and every way it exits;
* ``async def handle(call: AGICall, ctx: AGIContext) -> None``
  (``from callcenter.asterisk.agi import AGICall, AGIContext``).

A script may let :class:`~callcenter.asterisk.agi.AGIHangup` propagate; any other
exception is logged with the channel and uniqueid, and ``CC_AGI_ERROR`` is set for
the dialplan's fallback. Modules whose name starts with ``_`` are shared helpers and
are not served. :func:`handlers` finds the scripts (see
:func:`callcenter.asterisk.agi.discover`).
"""

from __future__ import annotations

from callcenter.asterisk.agi.registry import Handler, discover

__all__ = ["handlers"]


def handlers() -> dict[str, Handler]:
    """Every script in this package, by the name the dialplan uses."""
    return discover(__name__)
