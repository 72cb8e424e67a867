"""Cross-checks of ``api_users``: the agent an agent user is and the queues a supervisor
supervises must exist, or the user could never act (and a typo would silently lock a
supervisor out of its team)::

    config/api.yaml:4:12: api_users.sam.queues[1]: unknown queue 'suport' (known: sales, support)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from callcenter.config.checks import Problem
from callcenter.config.models import CallCenterConfig
from callcenter.config.partial import Broken

__all__ = ["check_api_users"]

_NOTHING_BROKEN = Broken()


def _known(names: Iterable[str]) -> str:
    names = sorted(names)
    return f"(known: {', '.join(names)})" if names else "(none defined)"


def check_api_users(c: CallCenterConfig, broken: Broken = _NOTHING_BROKEN) -> Iterator[Problem]:
    """Every ``api_users`` entry naming an agent or a queue the config does not have."""
    for name, user in c.api_users.items():
        if user.agent is not None and user.agent not in c.agents \
                and not broken.has("agents", user.agent):
            yield Problem(("api_users", name, "agent"),
                          f"unknown agent '{user.agent}' {_known(c.agents)}")
        for i, queue in enumerate(user.queues):
            if queue not in c.queues and not broken.has("queues", queue):
                yield Problem(("api_users", name, "queues", i),
                              f"unknown queue '{queue}' {_known(c.queues)}")
