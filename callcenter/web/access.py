"""Who may do what through the HTTP API, pure: users (``api_users`` plus the built-in
admin) and the decisions the handlers ask before acting.

- ``admin``: everything.
- ``supervisor``: the agents who serve one of its queues (``routing.policy.memberships``:
  a queue's ``agents``, or its ``skills``), those queues' waiting calls, and the calls in
  those queues (it may hang them up).
- ``agent``: itself (state, actions), the queues it serves (read only) and its own calls;
  it hangs up nothing through the API (its phone does that).

Lists are filtered to what the user may see; acting on something it may not is a 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from callcenter.config.models import BUILTIN_ADMIN, CallCenterConfig
from callcenter.routing.policy import memberships

__all__ = ["BUILTIN_ADMIN", "ROLES", "Access", "ApiUser", "Role", "users_from_config"]

Role = Literal["admin", "supervisor", "agent"]
ROLES: Final[tuple[Role, ...]] = ("admin", "supervisor", "agent")


@dataclass(frozen=True, slots=True)
class ApiUser:
    """An authenticated caller of the API (never holds its token)."""

    name: str
    role: Role
    #: The agent an ``agent`` user is.
    agent: str | None = None
    #: The queues a ``supervisor`` supervises.
    queues: frozenset[str] = frozenset()


def users_from_config(config: CallCenterConfig) -> dict[str, ApiUser]:
    """Every API user by name: ``api_users`` and the built-in ``admin``."""
    users = {BUILTIN_ADMIN: ApiUser(BUILTIN_ADMIN, "admin")}
    for name, user in config.api_users.items():
        users[name] = ApiUser(name, user.role, user.agent, frozenset(user.queues))
    return users


class Access:
    """The decisions for one config: which queues each agent serves is computed once."""

    def __init__(self, config: CallCenterConfig) -> None:
        self._serves: Mapping[str, frozenset[str]] = memberships(config)

    def queues_of(self, agent: str) -> frozenset[str]:
        """The queues *agent* serves."""
        return self._serves.get(agent, frozenset())

    def may_manage_agent(self, user: ApiUser, agent: str) -> bool:
        """See and change *agent*'s state (login, pause, ...)."""
        if user.role == "admin":
            return True
        if user.role == "agent":
            return user.agent == agent
        return bool(user.queues & self.queues_of(agent))

    def may_see_queue(self, user: ApiUser, queue: str) -> bool:
        """See *queue* and the callers waiting in it."""
        if user.role == "admin":
            return True
        if user.role == "agent":
            return user.agent is not None and queue in self.queues_of(user.agent)
        return queue in user.queues

    def may_see_call(self, user: ApiUser, queue: str, agent: str | None) -> bool:
        """See a call of *queue* (answered by *agent*, if it is)."""
        if user.role == "agent":
            return agent is not None and agent == user.agent
        return self.may_see_queue(user, queue)

    def may_hang_up(self, user: ApiUser, queue: str) -> bool:
        """Hang up a call of *queue*: admins, and the supervisors of the queue."""
        return user.role != "agent" and self.may_see_queue(user, queue)
