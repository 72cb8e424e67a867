"""Supervision: a supervisor listens to, whispers to (coaches) or barges in on an agent's call.

Two ways in, one mechanism (an ARI snoop on the agent's leg, bridged to the supervisor):

- **Feature code** on the supervisor's softphone (generated into ``cc-agent-features``; the
  args are :class:`callcenter.asterisk.stasis_args.SuperviseCommand`)::

      exten => _*80X.,1,Answer()
       same => n,Gosub(cc-agent-identify,s,1)        ; CC_AGENT from CHANNEL(endpoint)
       same => n,Set(CC_SUPERVISE_TARGET=${FILTER(0-9,${EXTEN:3})})
       same => n,Stasis(cc-agent,listen,supervisor=${CC_AGENT},target=${CC_SUPERVISE_TARGET})

  The supervisor is the PJSIP endpoint that placed the call (digest auth), never the caller
  ID. The channel arrives answered; the router hands it to :meth:`Supervision.start`.
- **A program** (the HTTP API): :meth:`Supervision.supervise` rings the supervisor's phone
  (``channels/originate`` into the agent app under our id) and, once answered, does the same.

What happens (the decision is pure: :func:`decide`): the target digits name an agent (its
extension, else its name spelt on the keypad: :func:`find_agent`); the caller must be a
supervisor (``role: supervisor``) of a queue the agent serves, and the agent must be on a
call of this router (its connected offer leg). Refused: a prompt (:data:`PROMPTS`), a log
line naming the supervisor, the agent and why, and the hangup. Allowed: a mixing bridge
``cc-sv-<supervisor channel>`` with the supervisor in it, then
``POST /channels/<agent leg>/snoop`` with our id ``cc-snoop-<supervisor channel>`` into the
agent app, and the snoop channel joins the bridge once its StasisStart is seen. Directions
(:data:`SNOOP`), from the agent's leg: ``spy=both`` lets the supervisor hear the caller and
the agent; ``whisper=out`` mixes the supervisor into what the agent hears (coach: the caller
does not hear it); ``whisper=both`` into both directions (barge: a three-way call).

Ending, whoever goes first, with nothing left behind: the supervisor hangs up (its StasisEnd)
-> the snoop is hung up and the bridge destroyed. The call ends -> Asterisk hangs the snoop
up when the agent's leg goes (its audiohook detaches); that StasisEnd, or the agent leg's own,
hangs the supervisor up and destroys the bridge. The router stopping ends every session the
same way. After a reconnection :meth:`Supervision.sweep` destroys ``cc-sv-`` bridges and
hangs up ``cc-snoop-`` channels that no session of this process owns.

Events: the router feeds every event to :meth:`Supervision.deliver` first; it takes the
events of the channels it owns (supervisors' channels, snoops) and watches, without taking
them, those of the agents' legs it snoops on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ari_apps.agent_features import PlaybackWaits, playback_id
from callcenter.asterisk.ari import (
    ARIClient,
    ARIError,
    ARINotFound,
    ChannelDestroyed,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from callcenter.asterisk.ari.client import ARIConflict
from callcenter.asterisk.stasis_args import (
    SUPERVISE_MODES,
    StasisArgsError,
    SuperviseCommand,
)
from callcenter.config.models import CallCenterConfig
from callcenter.routing.policy import memberships

__all__ = [
    "BRIDGE_PREFIX",
    "PROMPTS",
    "SNOOP",
    "SNOOP_PREFIX",
    "Join",
    "Mode",
    "Refusal",
    "Session",
    "Supervision",
    "SupervisionRefused",
    "decide",
    "find_agent",
    "keypad_digits",
]

log = logging.getLogger(__name__)

Mode = Literal["listen", "whisper", "barge"]
Direction = Literal["none", "in", "out", "both"]

#: Mode -> (spy, whisper) of the snoop on the agent's leg. ``in`` is what the agent's phone
#: sends (the agent's voice), ``out`` what it is sent (the caller's voice, and a whisper).
SNOOP: Final[dict[str, tuple[Direction, Direction]]] = {
    "listen": ("both", "none"),
    "whisper": ("both", "out"),
    "barge": ("both", "both"),
}
#: Why a request was refused -> the core sound the supervisor hears (en and es).
PROMPTS: Final[dict[str, str]] = {
    "not_supervisor": "beeperr",
    "not_supervised": "beeperr",
    "unknown_agent": "pbx-invalid",
    "not_on_call": "vm-isunavail",
    "failed": "beeperr",
}
BRIDGE_PREFIX: Final = "cc-sv-"
SNOOP_PREFIX: Final = "cc-snoop-"
#: Channels we originate to a supervisor's phone for :meth:`Supervision.supervise`.
CALL_PREFIX: Final = "cc-svcall-"
#: How long a snoop may take to enter Stasis after the snoop request.
SNOOP_START_TIMEOUT: Final = 5.0

_KEYPAD: Final = {letter: digit for digit, letters in {
    "2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv",
    "9": "wxyz"}.items() for letter in letters}


# -- decisions (pure) ---------------------------------------------------------------------

def keypad_digits(name: str) -> str:
    """A name as dialled on a phone's keypad (``carmen`` -> ``227636``); digits stay,
    anything else (``_``) is dropped."""
    return "".join(_KEYPAD.get(ch, ch if ch.isdigit() else "") for ch in name.lower())


def find_agent(config: CallCenterConfig, digits: str) -> str | None:
    """The agent the supervisor dialled: the one with that extension, else the only one
    whose name (its key under ``agents:``) spells ``digits`` on the keypad."""
    for name, agent in config.agents.items():
        if agent.extension == digits:
            return name
    spelt = [name for name in config.agents if keypad_digits(name) == digits]
    return spelt[0] if len(spelt) == 1 else None


@dataclass(frozen=True, slots=True)
class Join:
    """Allowed: snoop on ``agent_channel`` with ``spy``/``whisper``, bridged to the supervisor."""

    supervisor: str
    agent: str
    mode: str
    agent_channel: str
    spy: Direction
    whisper: Direction


@dataclass(frozen=True, slots=True)
class Refusal:
    """Refused: ``reason`` is a key of :data:`PROMPTS`; ``message`` says why, for the log."""

    reason: str
    message: str

    @property
    def prompt(self) -> str:
        return PROMPTS[self.reason]


def decide(config: CallCenterConfig, supervisor: str, agent: str | None, mode: str,
           agent_channel: str | None) -> Join | Refusal:
    """May ``supervisor`` join ``agent``'s call (on ``agent_channel``, None: not on a
    call) in ``mode``? Only a supervisor, only for an agent of a queue it supervises."""
    if mode not in SNOOP:
        raise ValueError(f"unknown mode {mode!r} (known: {', '.join(SUPERVISE_MODES)})")
    boss = config.agents.get(supervisor)
    if boss is None or boss.role != "supervisor":
        return Refusal("not_supervisor", f"{supervisor} is not a supervisor")
    if agent is None or agent not in config.agents:
        return Refusal("unknown_agent", f"no agent {agent!r}")
    shared = sorted(memberships(config).get(agent, frozenset()) & set(boss.supervises))
    if agent == supervisor or not shared:
        return Refusal("not_supervised",
                       f"{agent} serves none of the queues {supervisor} supervises "
                       f"({', '.join(boss.supervises)})")
    if agent_channel is None:
        return Refusal("not_on_call", f"{agent} is not on a call")
    spy, whisper = SNOOP[mode]
    return Join(supervisor, agent, mode, agent_channel, spy, whisper)


# -- carrying it out ----------------------------------------------------------------------

class SupervisionRefused(Exception):
    """:meth:`Supervision.supervise` did not start: ``reason`` is a key of :data:`PROMPTS`
    or ``no_answer`` (the supervisor's phone was not answered)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(eq=False)
class Session:
    """One supervisor on one agent's call, from the snoop request to the teardown."""

    join: Join
    channel_id: str
    bridge_id: str
    snoop_id: str
    #: The snoop's StasisStart args, as Asterisk echoed them (``snoop``, ``spy=..``, ...).
    snoop_args: tuple[str, ...] = ()
    snoop_started: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: Who ended it: ``supervisor``, ``call`` (the agent's leg or the snoop went), ``stop``.
    ended_by: str = ""
    #: Our channels of the session not destroyed yet (teardown waits for their
    #: ChannelDestroyed: a hangup request returns before Asterisk has destroyed them).
    live: set[str] = field(default_factory=set)
    all_gone: asyncio.Event = field(default_factory=asyncio.Event)

    def destroyed(self, channel_id: str) -> None:
        self.live.discard(channel_id)
        if not self.live:
            self.all_gone.set()

    def end(self, by: str) -> None:
        if not self.ended.is_set():
            self.ended_by = by
            self.ended.set()


Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class Supervision:
    """Supervisors' sessions of one router (``settings.agent_app``).

    ``agent_call(agent)`` is the agent's connected leg on this router (None: not on a call);
    ``spawn(coro, name)`` runs a session in the router's TaskGroup; ``stopping`` ends every
    session when set.
    """

    def __init__(self, ari: ARIClient, config: CallCenterConfig, *,
                 agent_call: Callable[[str], str | None], spawn: Spawn,
                 stopping: asyncio.Event | None = None, playback_timeout: float = 15.0) -> None:
        self.ari = ari
        self.config = config
        self.app = config.settings.agent_app
        self.agent_call = agent_call
        self.spawn = spawn
        self.stopping = stopping or asyncio.Event()
        self._waits = PlaybackWaits(timeout=playback_timeout)
        #: Supervisors' channels we hold (feature-code calls and originated ones).
        self._channels: set[str] = set()
        #: Originated supervisor channels waiting for their StasisStart (= answered).
        self._answers: dict[str, asyncio.Future[bool]] = {}
        self.sessions: dict[str, Session] = {}
        """Live sessions by supervisor channel id (tests and the API read it)."""
        self._by_snoop: dict[str, Session] = {}
        self._changed = asyncio.Event()
        #: Refusals so far, newest last: (supervisor channel or API, reason), for tests.
        self.refusals: list[tuple[str, str]] = []

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate`` holds; checked after each session starts, joins,
        ends or is refused (tests wait on this, not on time)."""
        while not predicate():
            await self._changed.wait()

    # -- events -------------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        return channel_id in self._channels or channel_id in self._by_snoop \
            or channel_id.startswith(SNOOP_PREFIX)

    def deliver(self, event: Event) -> bool:
        """Take the events of our channels (True); watch those of snooped agent legs."""
        match event:
            case StasisStart(channel=channel, args=args) if channel.id in self._answers:
                future = self._answers.pop(channel.id)
                if not future.done():
                    future.set_result(True)
                return True
            case StasisStart(channel=channel, args=args) if channel.id.startswith(SNOOP_PREFIX):
                session = self._by_snoop.get(channel.id)
                if session is None:  # its session ended before the snoop came up
                    self.spawn(self._hangup(channel.id), f"orphan snoop {channel.id}")
                else:
                    session.snoop_args = args
                    session.snoop_started.set()
                return True
            case PlaybackFinished(playback=playback):
                if playback.target_uri.removeprefix("channel:") in self._channels:
                    self._waits.deliver(event)
                    return True
                return False
            case StasisEnd(channel=channel) | ChannelDestroyed(channel=channel):
                return self._gone(channel.id, event)
        return False

    def _gone(self, channel_id: str, event: Event) -> bool:
        if channel_id in self._answers:
            future = self._answers.pop(channel_id)
            if not future.done():
                future.set_result(False)
        destroyed = isinstance(event, ChannelDestroyed)
        if channel_id in self._channels:
            self._waits.deliver(event)
            session = self.sessions.get(channel_id)
            if session is not None:
                session.end("supervisor")
                if destroyed:
                    session.destroyed(channel_id)
            return True
        if channel_id in self._by_snoop:
            session = self._by_snoop[channel_id]
            session.end("call")
            if destroyed:
                session.destroyed(channel_id)
            return True
        if channel_id.startswith(SNOOP_PREFIX):
            return True  # a snoop whose session is over: nothing to do
        for session in self.sessions.values():
            if session.join.agent_channel == channel_id:
                session.end("call")
        return False  # the agent's leg: the router ends the call as well

    # -- feature codes ------------------------------------------------------------------

    def handles(self, args: tuple[str, ...]) -> bool:
        """Whether a StasisStart in the agent app with ``args`` is a supervisor's code."""
        return bool(args) and args[0] in SUPERVISE_MODES

    def start(self, channel_id: str, args: tuple[str, ...]) -> None:
        """A supervisor's feature-code call entered the agent app: run it as a session."""
        self._channels.add(channel_id)
        self.spawn(self._feature_call(channel_id, args), f"supervision {channel_id}")

    async def _feature_call(self, channel_id: str, args: tuple[str, ...]) -> None:
        try:
            try:
                command = SuperviseCommand.parse(args)
            except StasisArgsError as exc:
                await self._refuse(channel_id, Refusal("failed", f"bad Stasis args: {exc}"))
                return
            agent = find_agent(self.config, command.target)
            decision = decide(self.config, command.supervisor, agent, command.mode,
                              self.agent_call(agent) if agent else None)
            if isinstance(decision, Refusal):
                await self._refuse(channel_id, decision, command.supervisor,
                                   agent or f"digits {command.target}", command.mode)
                return
            await self._run(self._session(decision, channel_id))
        finally:
            self._channels.discard(channel_id)

    async def _refuse(self, channel_id: str, refusal: Refusal, supervisor: str = "?",
                      agent: str = "?", mode: str = "?") -> None:
        log.warning("channel %s: supervisor %s may not %s %s: %s (%s)", channel_id,
                    supervisor, mode, agent, refusal.reason, refusal.message)
        self.refusals.append((channel_id, refusal.reason))
        self._pulse()
        key = playback_id(channel_id)
        try:
            await self.ari.channels.play(channel_id, f"sound:{refusal.prompt}", playback_id=key)
        except ARINotFound:
            pass  # hung up already
        except ARIError as exc:
            log.warning("channel %s: refusal prompt not played: %s", channel_id, exc)
        else:
            await self._waits.wait(key)
        await self._hangup(channel_id)

    # -- programs (the HTTP API) --------------------------------------------------------

    async def supervise(self, supervisor: str, agent: str, mode: Mode, *,
                        ring_timeout: int = 30) -> Session:
        """Ring ``supervisor``'s phone and, once answered, join ``agent``'s call in ``mode``.

        Returns the session once the snoop is bridged to the supervisor (it then lasts until
        either side hangs up); raises :class:`SupervisionRefused` when it is not allowed
        (checked before the phone rings, and again after: the call may have ended), when
        the phone is not answered, or when Asterisk refused a step.
        """
        decision = decide(self.config, supervisor, agent, mode, self.agent_call(agent))
        if isinstance(decision, Refusal):
            log.warning("API: supervisor %s may not %s %s: %s (%s)", supervisor, mode, agent,
                        decision.reason, decision.message)
            self.refusals.append(("api", decision.reason))
            self._pulse()
            raise SupervisionRefused(decision.reason, decision.message)
        channel_id = f"{CALL_PREFIX}{uuid.uuid4().hex[:16]}"
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._answers[channel_id] = answered
        self._channels.add(channel_id)
        try:
            await self.ari.channels.originate(
                self.config.agents[supervisor].dial_string(supervisor), app=self.app,
                app_args=("supervise", mode, agent), channel_id=channel_id,
                timeout=ring_timeout)
            async with asyncio.timeout(ring_timeout + 5):
                picked_up = await answered
        except (ARIError, TimeoutError) as exc:
            self._forget_call(channel_id)
            await self._hangup(channel_id)
            raise SupervisionRefused("failed", f"ringing {supervisor}: {exc}") from exc
        if not picked_up:
            self._forget_call(channel_id)
            raise SupervisionRefused("no_answer", f"{supervisor}'s phone was not answered")
        decision = decide(self.config, supervisor, agent, mode, self.agent_call(agent))
        if isinstance(decision, Refusal):
            self.spawn(self._refuse_call(channel_id, decision, supervisor, agent, mode),
                       f"supervision refused {channel_id}")
            raise SupervisionRefused(decision.reason, decision.message)
        session = self._session(decision, channel_id)
        self.spawn(self._run_call(session), f"supervision {channel_id}")
        done = asyncio.ensure_future(session.ended.wait())
        try:
            joined = asyncio.ensure_future(session.joined.wait())
            await asyncio.wait({joined, done}, return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
        finally:
            done.cancel()
        if not session.joined.is_set():
            raise SupervisionRefused("failed", f"the snoop on {agent}'s call did not start")
        return session

    def _forget_call(self, channel_id: str) -> None:
        self._answers.pop(channel_id, None)
        self._channels.discard(channel_id)

    async def _refuse_call(self, channel_id: str, refusal: Refusal, supervisor: str,
                           agent: str, mode: str) -> None:
        try:
            await self._refuse(channel_id, refusal, supervisor, agent, mode)
        finally:
            self._channels.discard(channel_id)

    async def _run_call(self, session: Session) -> None:
        try:
            await self._run(session)
        finally:
            self._channels.discard(session.channel_id)

    # -- a session ----------------------------------------------------------------------

    def _session(self, join: Join, channel_id: str) -> Session:
        session = Session(join, channel_id, f"{BRIDGE_PREFIX}{channel_id}",
                          f"{SNOOP_PREFIX}{channel_id}", live={channel_id})
        self.sessions[channel_id] = session
        self._by_snoop[session.snoop_id] = session
        return session

    async def _run(self, session: Session) -> None:
        """Bridge, snoop, wait for either side to go, tear everything down."""
        join = session.join
        try:
            try:
                connected = await self._connect(session)
            except (ARIError, TimeoutError) as exc:
                connected = False
                if not session.ended.is_set():
                    # The agent's leg went between the decision and the snoop (404), or
                    # Asterisk refused a step: the supervisor hears why, nothing is left.
                    await self._refuse(session.channel_id, Refusal("failed", str(exc)),
                                       join.supervisor, join.agent, join.mode)
            if not connected:
                session.end(session.ended_by or "failed")
            else:
                session.joined.set()
                self._pulse()
                log.info("channel %s: supervisor %s %s %s's call (agent leg %s, spy=%s, "
                         "whisper=%s)", session.channel_id, join.supervisor, join.mode,
                         join.agent, join.agent_channel, join.spy, join.whisper)
                await self._until_over(session)
        finally:
            await self._teardown(session)

    async def _connect(self, session: Session) -> bool:
        join = session.join
        await self.ari.bridges.create("mixing", bridge_id=session.bridge_id,
                                      name=f"supervise {join.agent}")
        await self.ari.bridges.add_channel(session.bridge_id, session.channel_id)
        # The snoop enters the agent app under our id; it can be bridged once it is in
        # Stasis (its StasisStart may come before or after this reply).
        session.live.add(session.snoop_id)
        try:
            await self.ari.channels.snoop(
                join.agent_channel, snoop_id=session.snoop_id, spy=join.spy,
                whisper=join.whisper, app=self.app,
                app_args=("snoop", f"spy={join.spy}", f"whisper={join.whisper}",
                          f"supervisor={join.supervisor}", f"agent={join.agent}"))
        except ARIError:
            session.destroyed(session.snoop_id)  # never created: nothing to wait for
            raise
        async with asyncio.timeout(SNOOP_START_TIMEOUT):
            await _first(session.snoop_started.wait(), session.ended.wait())
        if session.ended.is_set():
            return False  # a side hung up meanwhile: nothing to join
        await self.ari.bridges.add_channel(session.bridge_id, session.snoop_id)
        return True

    async def _until_over(self, session: Session) -> None:
        await _first(session.ended.wait(), self.stopping.wait())
        session.end("stop")

    async def _teardown(self, session: Session) -> None:
        """Both channels hung up, the bridge destroyed; 404s are normal (already gone).
        Over once Asterisk has destroyed both channels (or after a few seconds)."""
        await self._hangup(session.snoop_id)
        await self._hangup(session.channel_id)
        with contextlib.suppress(ARINotFound, ARIConflict):
            await self.ari.bridges.destroy(session.bridge_id)
        try:
            # Stopping: the event reader is gone, no ChannelDestroyed will come.
            async with asyncio.timeout(0 if self.stopping.is_set() else SNOOP_START_TIMEOUT):
                await session.all_gone.wait()
        except TimeoutError:
            # The snoop request failed (it never existed), or an event was lost.
            for channel_id in list(session.live):
                with contextlib.suppress(ARINotFound):
                    await self.ari.channels.get(channel_id)
                    log.warning("supervision: channel %s still up after teardown", channel_id)
        self.sessions.pop(session.channel_id, None)
        self._by_snoop.pop(session.snoop_id, None)
        self._pulse()
        log.info("channel %s: supervision of %s ended (by %s)", session.channel_id,
                 session.join.agent, session.ended_by)

    async def _hangup(self, channel_id: str) -> None:
        try:
            await self.ari.channels.hangup(channel_id, "normal")
        except (ARINotFound, ARIConflict):
            pass
        except ARIError as exc:
            log.warning("channel %s: hangup failed: %s", channel_id, exc)

    # -- reconnection -------------------------------------------------------------------

    async def sweep(self) -> None:
        """After a (re)connection: bridges and snoops of sessions this process does not
        hold (a previous process, events lost) are removed, so none is left orphaned."""
        ours = {s.bridge_id for s in self.sessions.values()}
        for bridge in await self.ari.bridges.list():
            if bridge.id.startswith(BRIDGE_PREFIX) and bridge.id not in ours:
                for channel_id in bridge.channels:
                    await self._hangup(channel_id)
                with contextlib.suppress(ARINotFound, ARIConflict):
                    await self.ari.bridges.destroy(bridge.id)
                log.info("supervision: orphan bridge %s removed", bridge.id)
        for channel in await self.ari.channels.list():
            if channel.id.startswith(SNOOP_PREFIX) and channel.id not in self._by_snoop:
                await self._hangup(channel.id)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Until the first of ``waits`` returns; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def current_calls(callers: Mapping[str, Any]) -> Callable[[str], str | None]:
    """``agent_call`` over a router's callers: the agent's leg of its connected call."""
    def agent_call(agent: str) -> str | None:
        for caller in callers.values():
            if caller.phase == "connected" and caller.agent == agent and caller.agent_channel:
                return str(caller.agent_channel)
        return None
    return agent_call
