"""Look an account up by entered digits or caller ID (database or HTTP).

Dialplan contract::

    same => n,Set(CC_LOOKUP_STATUS=)
    same => n,AGI(agi://127.0.0.1:4573/account_lookup,account,${FILTER(0-9*#,${ACCOUNT})})
    same => n,GotoIf($["${CC_LOOKUP_STATUS}" = "not_found"]?...)

Reads: ``agi_arg_1`` (lookup name from ``lookups:``), ``agi_arg_2`` (the key,
already FILTERed to digits by the dialplan and filtered again here).
Sets: ``CC_LOOKUP_STATUS`` = found | not_found | error; when found also
``CC_ACCOUNT_ID``, ``CC_ACCOUNT_NAME``, ``CC_ACCOUNT_LANGUAGE``, ``CC_ACCOUNT_VIP``.
Exits: always sets ``CC_LOOKUP_STATUS``; a dead database or HTTP backend is
``error``, never an exception.
"""

from __future__ import annotations

from callcenter.asterisk import variables as V
from callcenter.asterisk.agi import AGICall, AGIContext
from callcenter.flows.callflow import LOOKUP_VARIABLES
from callcenter.flows.lookup import perform_lookup

#: The same mapping simulate applies, so a branch on CC_ACCOUNT_VIP agrees.
_FIELDS = LOOKUP_VARIABLES


async def handle(call: AGICall, ctx: AGIContext) -> None:
    name = call.args[0] if call.args else ""
    key = call.args[1] if len(call.args) > 1 else ""
    lookup = ctx.config.lookups.get(name)
    if lookup is None:
        ctx.log.warning("account_lookup: unknown lookup %r on %s", name[:48], call.request.channel)
        await call.set_variable(V.LOOKUP_STATUS, "error")
        return
    result = await perform_lookup(lookup, key, accounts=ctx.accounts, http=ctx.http)
    values = {var: result.fields[field] for field, var in _FIELDS.items() if field in result.fields}
    # The status last: the dialplan branches on it, the fields ride along.
    await call.set_variables({**values, V.LOOKUP_STATUS: result.status})
    ctx.log.info("account_lookup %s on %s: %s", name, call.request.uniqueid, result.status)
