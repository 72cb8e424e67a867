"""Pure routing decisions (which agent for which call, now), for the inbound ACD.

Imports no I/O library and reads no clock: every decision takes ``now``.

* :mod:`~callcenter.routing.expr`: skill requirement expressions (parser, evaluation);
* :mod:`~callcenter.routing.policy`: queue policies from the config, agents and calls as
  routing sees them;
* :mod:`~callcenter.routing.decide`: the decisions as plain scans (the reference);
* :mod:`~callcenter.routing.index`: :class:`Router`, the same decisions over indexes;
* :mod:`~callcenter.routing.estimate`: a waiting caller's estimated wait;
* :mod:`~callcenter.routing.announce`: what a waiting caller is told, and when.
"""

from callcenter.routing.decide import (
    Offer,
    Overflow,
    next_change,
    select_agent,
    select_call,
)
from callcenter.routing.expr import ExprError, parse_expr
from callcenter.routing.index import Router
from callcenter.routing.policy import (
    AgentView,
    QueuePolicy,
    Stage,
    WaitingCall,
    memberships,
    policies,
)

__all__ = [
    "AgentView",
    "ExprError",
    "Offer",
    "Overflow",
    "QueuePolicy",
    "Router",
    "Stage",
    "WaitingCall",
    "memberships",
    "next_change",
    "parse_expr",
    "policies",
    "select_agent",
    "select_call",
]
