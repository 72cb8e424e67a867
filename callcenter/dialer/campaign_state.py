"""A campaign's run state (``running``, ``paused``, ``stopped``) and what it lets a dialer
do, pure: no I/O here (the state lives on the ``campaigns`` row,
:mod:`callcenter.storage.campaign_state`; a dialer reads it once per pass through
:class:`callcenter.dialer.state_watch.StateWatch`).

- ``running``: calls are placed (previews offered).
- ``paused``: no new call is placed, no preview offered; calls in progress end as they
  will; the dialer keeps running and dials again on ``start``.
- ``stopped``: as paused, and a ``campaigns run`` exits once its calls in progress
  ended; ``run`` refuses a stopped campaign until ``start``.

A campaign never started, paused or stopped is ``running`` (:data:`DEFAULT`): that is
how every campaign behaved before the state existed (``campaigns run`` dials at once), so
``pause`` or ``stop`` is what holds one back. The database is the only channel: every
dialer of the campaign, on any machine, obeys the row.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from callcenter.storage.campaign_state import DialerSeen

__all__ = ["ACTIONS", "DEFAULT", "Change", "Permit", "RunState", "change", "claimer_of",
           "node_in_use",
           "permit", "run_refusal"]


class RunState(enum.StrEnum):
    """A campaign's run state (stored as its value)."""

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


#: The state of a campaign no one changed yet.
DEFAULT: Final = RunState.RUNNING
#: The commands (CLI and API) and the state each asks for.
ACTIONS: Final[dict[str, RunState]] = {"start": RunState.RUNNING, "pause": RunState.PAUSED,
                                       "stop": RunState.STOPPED}


@dataclass(frozen=True, slots=True)
class Permit:
    """What one dialer pass may do, and why (the log line)."""

    place_calls: bool
    #: The dialer places no more calls and exits once its calls in progress ended.
    exit: bool
    reason: str


def permit(state: RunState | str | None, campaign: str) -> Permit:
    """What a dialer of ``campaign`` may do in a pass, given the stored state (``None``:
    never set, :data:`DEFAULT`). An unknown stored value (a newer version wrote it) is
    treated as paused: never dial on a state this code does not understand."""
    try:
        known = RunState(state) if state is not None else DEFAULT
    except ValueError:
        return Permit(False, False, f"campaign {campaign} has an unknown state {state!r}: "
                                    "treated as paused")
    if known is RunState.RUNNING:
        return Permit(True, False, f"campaign {campaign} is running")
    if known is RunState.PAUSED:
        return Permit(False, False, f"campaign {campaign} is paused: no new call until "
                                    "it is started again")
    return Permit(False, True, f"campaign {campaign} is stopped: no new call; the dialer "
                               "exits once its calls in progress ended")


@dataclass(frozen=True, slots=True)
class Change:
    """What a start, pause or stop does: the new state, the one before, and whether it
    changed anything (asking for the current state again is not an error, nor a change)."""

    state: RunState
    previous: RunState
    changed: bool


def change(current: RunState | str | None, action: str) -> Change:
    """The state ``action`` (``start``, ``pause``, ``stop``) leads to from ``current``.

    Raises:
        ValueError: an unknown action (naming the known ones).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown campaign action {action!r} (known: "
                         f"{', '.join(ACTIONS)})")
    try:
        previous = RunState(current) if current is not None else DEFAULT
    except ValueError:
        previous = RunState.PAUSED  # as permit() reads it
    wanted = ACTIONS[action]
    return Change(wanted, previous, wanted is not previous)


def run_refusal(state: RunState | str | None, campaign: str) -> str | None:
    """Why ``campaigns run`` must not start on ``state`` (``None``: it may). A paused
    campaign may be run: the dialer waits for ``start``."""
    if permit(state, campaign).exit:
        return (f"campaign {campaign} is stopped: `callcenter campaigns start {campaign}` "
                "first, then run it")
    return None


def claimer_of(node: str) -> str:
    """The name a dialer started with ``--node`` claims contacts, reserves agents and
    beats under."""
    return f"dialer:{node}"[:48]


def node_in_use(seen: Iterable[DialerSeen], claimer: str, *, campaign: str, host: str,
                pid: int, alive: Callable[[int], bool], now: datetime) -> str | None:
    """Why a dialer named ``claimer`` must not start on ``campaign`` (None: it may).

    A dialer starting closes what its name left open (restart safety), so a second
    process under the same name would end the first one's calls in the database while
    they are still up, and the contacts would be dialled again. ``seen``: the heartbeats
    of the campaign's dialers seen lately. Taken: the name beats from another machine,
    or from a live process of this one (``alive(pid)``) other than ``pid``. A beat from a
    dead process of this machine is a crash to recover from, not a conflict."""
    for dialer in seen:
        if dialer.node != claimer or (dialer.host == host and dialer.pid == pid):
            continue
        if dialer.host == host and not alive(dialer.pid):
            continue
        where = "this machine" if dialer.host == host else dialer.host
        age = max(0, round((now - dialer.seen_at).total_seconds()))
        return (f"dialer {claimer} already runs campaign {campaign} on {where} (pid "
                f"{dialer.pid}, seen {age} s ago): give this one another --node, or stop "
                "that one first")
    return None
