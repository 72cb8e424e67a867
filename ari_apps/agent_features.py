"""The agent app (``settings.agent_app``, ``cc-agent``): agents' feature codes.

Dialplan contract (generated into ``cc-agent-features``, which the agents' context
includes; args formatted and parsed by :class:`callcenter.asterisk.stasis_args.AgentCommand`)::

    exten => *70,1,Answer()
     same => n,Gosub(cc-agent-identify,s,1)      ; CC_AGENT from CHANNEL(endpoint)
     same => n,Stasis(cc-agent,login,agent=${CC_AGENT},reason=)
     same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?cc-agent-identify,failed,1)

The agent is the PJSIP endpoint that placed the call (digest auth), never the caller ID.
The channel arrives answered. :func:`handle_agent_command` applies the command to the
agent's stored state through :meth:`AgentStore.apply` (compare-and-set, the same path as
the API and the CLI), plays a confirmation, hangs up, then tells the router
(``on_change(agent)``) so that it routes to (or stops offering) the agent. Every exit
hangs the channel up: a good command after its confirmation, a refused one (logout during
a call, an unknown agent or reason, a store error) after ``beeperr``; nothing changes then.

Waiting for the confirmation: ``PlaybackFinished`` arrives on the channel's own event
inbox (:func:`callcenter.asterisk.ari.dispatch.event_key`), the inbox whose ``StasisStart``
started the command. So the router runs the handler in a task of its own (owned by its
TaskGroup) and feeds a :class:`PlaybackWaits` with the channel's later events; the handler
awaits ``waits.wait(playback_id)``, which also ends when the channel goes or after
``timeout`` seconds, so no feature call can hang. How the router wires it::

    waits = PlaybackWaits()
    # StasisStart in agent_app:
    command = AgentCommand.parse(event.args)        # StasisArgsError: hang up (cause 21)
    task_group.create_task(handle_agent_command(
        ari, channel_id, command, router.store, clock(), router.agent_changed,
        played=waits.wait, agents=config.agents))
    # PlaybackFinished, StasisEnd, ChannelDestroyed of that channel:
    waits.deliver(event)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from callcenter.agents.state import (
    AgentEvent,
    AgentStateError,
    EndWrapUp,
    Login,
    Logout,
    Pause,
    Unpause,
)
from callcenter.agents.store import AgentStore
from callcenter.asterisk.ari import (
    ARIClient,
    ARIError,
    ARINotFound,
    ChannelDestroyed,
    Event,
    PlaybackFinished,
    StasisEnd,
)
from callcenter.asterisk.stasis_args import AgentCommand

__all__ = [
    "CONFIRMATIONS",
    "PLAYBACK_PREFIX",
    "REFUSED",
    "REFUSED_PROMPT",
    "PlaybackWaits",
    "agent_event",
    "handle_agent_command",
    "playback_id",
]

log = logging.getLogger(__name__)

#: Core sounds (en and es) confirming each action.
CONFIRMATIONS: dict[str, str] = {
    "login": "agent-loginok",
    "logout": "agent-loggedoff",
    "pause": "beep",
    "unpause": "beep",
    "end_wrapup": "beep",
}
#: Core sound for a command that changed nothing.
REFUSED_PROMPT = "beeperr"
#: What :func:`handle_agent_command` returns when the command changed nothing.
REFUSED = "refused"
#: Playback ids of the agent app start with this (the router may route by it).
PLAYBACK_PREFIX = "cc-agent-"


def playback_id(channel_id: str) -> str:
    """The id we give the confirmation's playback: chosen before the play request, so a
    PlaybackFinished that races the HTTP reply still finds its waiter."""
    return f"{PLAYBACK_PREFIX}{channel_id}"


def agent_event(command: AgentCommand) -> AgentEvent:
    """The state-machine event a feature code stands for (pure)."""
    match command.action:
        case "login":
            return Login()
        case "logout":
            return Logout()
        case "pause":
            assert command.reason is not None, "AgentCommand: pause has a reason"
            return Pause(command.reason)
        case "unpause":
            return Unpause()
        case "end_wrapup":
            return EndWrapUp()
    raise AssertionError(f"unhandled action {command.action!r}")


class PlaybackWaits:
    """Futures for playbacks we wait on, completed by the events the router delivers.

    ``wait(playback_id)`` returns when that playback's PlaybackFinished is delivered,
    when the channel it plays on leaves Stasis or is destroyed, or after ``timeout``.
    """

    def __init__(self, timeout: float = 15.0) -> None:
        self.timeout = timeout
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def _future(self, key: str) -> asyncio.Future[None]:
        if key not in self._waiting:
            self._waiting[key] = asyncio.get_running_loop().create_future()
        return self._waiting[key]

    def deliver(self, event: Event) -> None:
        """Feed every PlaybackFinished, StasisEnd and ChannelDestroyed of the app."""
        match event:
            case PlaybackFinished(playback=playback) if playback.id.startswith(PLAYBACK_PREFIX):
                # Kept even before wait() is called: it can beat the play request's reply.
                future = self._future(playback.id)
            case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel):
                # Only for a waiter: these come for every channel of the app.
                found = self._waiting.get(playback_id(channel.id))
                if found is None:
                    return
                future = found
            case _:
                return
        if not future.done():
            future.set_result(None)

    async def wait(self, key: str) -> None:
        """Until ``key``'s playback is over (or its channel gone, or ``timeout``)."""
        future = self._future(key)
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            log.warning("playback %s: no PlaybackFinished in %.0f s", key, self.timeout)
        finally:
            self._waiting.pop(key, None)


async def handle_agent_command(
    ari: ARIClient,
    channel_id: str,
    command: AgentCommand,
    store: AgentStore,
    now: datetime,
    on_change: Callable[[str], None],
    *,
    played: Callable[[str], Awaitable[None]],
    agents: Container[str] | None = None,
) -> str:
    """Carry out one feature code on the answered channel ``channel_id``; hang it up.

    ``played(playback_id)`` waits for the confirmation to end (:meth:`PlaybackWaits.wait`);
    ``agents`` are the configured agents (None: trust the dialplan, which only sends them).
    Returns the agent's new status (``available``, ``paused``, ``logged_out``...) or
    :data:`REFUSED`. Never raises for bad input or a refused transition: those play
    :data:`REFUSED_PROMPT` and change nothing. ``on_change(agent)`` is called after the
    hangup, and only when the state changed, so a waiting caller is offered to an agent
    whose phone is free again.
    """
    agent = command.agent
    result = REFUSED
    if agents is not None and agent not in agents:
        log.warning("channel %s: feature code %s for unknown agent %r",
                    channel_id, command.action, agent)
    else:
        try:
            outcome = await store.apply(agent, agent_event(command), now,
                                        reason="feature code")
        except AgentStateError as exc:  # illegal transition, unknown reason, conflict
            log.info("channel %s: feature code %s refused: %s", channel_id, command.action, exc)
        except SQLAlchemyError:
            log.exception("channel %s: feature code %s of %s: database error",
                          channel_id, command.action, agent)
        else:
            result = outcome.state.status.value
            log.info("channel %s: agent %s %s -> %s", channel_id, agent, command.action, result)
    sound = CONFIRMATIONS[command.action] if result != REFUSED else REFUSED_PROMPT
    key = playback_id(channel_id)
    try:
        await ari.channels.play(channel_id, f"sound:{sound}", playback_id=key)
    except ARINotFound:
        pass  # the agent hung up already: nothing to confirm to
    except ARIError as exc:
        log.warning("channel %s: confirmation %s not played: %s", channel_id, sound, exc)
    else:
        await played(key)
    try:
        await ari.channels.hangup(channel_id, "normal")
    except ARINotFound:
        pass  # hung up meanwhile: normal
    except ARIError as exc:
        log.warning("channel %s: hangup after feature code failed: %s", channel_id, exc)
    if result != REFUSED:
        on_change(agent)
    return result
