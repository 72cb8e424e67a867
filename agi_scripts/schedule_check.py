"""Is a schedule open now? Sets ``CC_SCHEDULE`` to open | closed | holiday.

The generated dialplan checks schedules natively (``cc-schedule-<name>``); this
script serves hand-written dialplans that prefer to ask FastAGI, and answers
with the same rules (:func:`callcenter.flows.schedule.schedule_state`).

Dialplan contract::

    same => n,Set(CC_SCHEDULE=)
    same => n,AGI(agi://127.0.0.1:4573/schedule_check,office_hours)
    same => n,GotoIf($["${CC_SCHEDULE}" = "closed"]?...)

Reads: ``agi_arg_1`` (schedule name). Sets: ``CC_SCHEDULE``.
Exits: always sets the variable when the schedule is known; an unknown
schedule name leaves it empty and sets ``CC_AGI_ERROR``.
Time comes from ``ctx.clock`` so tests can move it.
"""

from __future__ import annotations

from callcenter.asterisk import variables as V
from callcenter.asterisk.agi import AGICall, AGIContext
from callcenter.flows.schedule import schedule_state


async def handle(call: AGICall, ctx: AGIContext) -> None:
    name = call.args[0] if call.args else ""
    schedule = ctx.config.schedules.get(name)
    if schedule is None:
        ctx.log.warning("schedule_check: unknown schedule %r on %s", name[:48], call.request.channel)
        await call.set_variable(V.AGI_ERROR, "unknown schedule")
        return
    state = schedule_state(schedule, ctx.clock(), ctx.config.settings.timezone)
    await call.set_variable(V.SCHEDULE, state)
