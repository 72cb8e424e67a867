"""The router's events as Asterisk's ``queue_log``, in app_queue's own vocabulary.

Reporting tools built for app_queue (queue_log parsers, wallboards) read our calls
unchanged. Each line is written by Asterisk itself through the AMI ``QueueLog`` action
(app_queue's ``manager_queue_log_custom``), so it lands in the same ``queue_log`` file
(``<astlogdir>/queue_log``; ``logger.conf`` ``[general] queue_log = yes``), with
Asterisk's timestamp, as ``epoch|callid|queue|agent|VERB|data...``.

Fields per verb, as app_queue.c (Asterisk 22) writes them; ``callid`` is the caller's
``UNIQUEID`` (our caller channel id), ``agent`` the member name (our agent's name) or
``NONE``; times in whole seconds unless said::

    ENTERQUEUE      url|callerid|position            (url empty; caller number)
    RINGNOANSWER    ringtime_ms                       (no answer, busy, rejected, unreachable)
    RINGCANCELED    ringtime_ms                       (the caller hung up while it rang)
    CONNECT         holdtime|agent_uniqueid|ringtime
    COMPLETECALLER  holdtime|calltime|origposition
    COMPLETEAGENT   holdtime|calltime|origposition
    ABANDON         position|origposition|waittime
    BLINDTRANSFER   extension|context|holdtime|calltime|origposition
                    (extension: the queue, agent or number; context: cc-queue,
                    cc-agent or cc-external)
    ATTENDEDTRANSFER BRIDGE|bridge|holdtime|calltime|origposition
    EXITWITHTIMEOUT position|origposition|waittime   (an overflow step, the fallback, or
                                                      when_unavailable's max_wait)
    EXITEMPTY       position|origposition|waittime   (when_unavailable while waiting: no
                                                      agents, or the schedule closed)
    ADDMEMBER       (empty)         callid MANAGER, one line per queue the agent serves
    REMOVEMEMBER    (empty)         callid MANAGER, one line per queue
    PAUSEALL        reason          queue NONE, then PAUSE reason per queue (QueuePause
    UNPAUSEALL      (empty)         queue NONE, then UNPAUSE per queue   without a queue)
    AGENTLOGIN      channel         queue NONE (app_queue: from app_agent_pool's login;
    AGENTLOGOFF     channel|logintime             ours: the agent's device, PJSIP/<name>)

A caller refused at entry by ``when_unavailable`` (closed, no agents, full) has no line:
app_queue's ``joinempty`` and ``maxlen`` refusals write none (only ``QUEUESTATUS``).
An offer cancelled because another agent answered first (``ring_all``) is not logged,
as app_queue logs nothing for the other members it stops ringing.

Values from outside (the caller's number, a pause reason) never break the format: ``|``
becomes ``_`` (what app_queue does to caller names) and control characters (CR/LF would
end the AMI header, and with it our line) are removed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from callcenter.asterisk.ami import AMIActionError, AMIClient, AMIError
from callcenter.events import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentUnpaused,
    CallAbandoned,
    CallbackRequested,
    CallCompleted,
    CallConnected,
    CallerEntered,
    CallOverflowed,
    CallTransferred,
    OfferEnded,
    QueueEvent,
)

__all__ = ["QueueLogLine", "QueueLogWriter", "clean", "queue_log_lines"]

log = logging.getLogger(__name__)

#: app_queue's placeholder for "no queue / no call / no agent".
NONE: Final = "NONE"
#: The callid app_queue writes for member changes made from the manager interface.
MANAGER: Final = "MANAGER"
#: After a failed AMI connection, how long lines are dropped before trying again.
RECONNECT_PAUSE: Final = 1.0
#: Longest value written (app_queue's own fields are short; a caller ID is at most 80).
_MAX_FIELD: Final = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")

#: Offer results logged as RINGNOANSWER (app_queue's ``rna()``: no answer, busy,
#: unavailable all count as the member not answering).
_NOT_ANSWERED: Final = frozenset({"no_answer", "busy", "rejected", "unregistered", "failed"})

#: BLINDTRANSFER's context field per target kind (app_queue writes the dialplan context
#: the transferee was sent to).
_TRANSFER_CONTEXT: Final = {"queue": "cc-queue", "agent": "cc-agent", "number": "cc-external"}


#: ``CallOverflowed.reason`` values app_queue's ``leavewhenempty`` would write as
#: EXITEMPTY (a closed schedule empties the queue as its agents leave).
_EXIT_EMPTY: Final = frozenset({"no_agents", "closed"})


def clean(value: str) -> str:
    """*value* safe inside one queue_log field and one AMI header."""
    return _CONTROL.sub("", value).replace("|", "_")[:_MAX_FIELD]


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    """One ``queue_log`` line but its timestamp (Asterisk stamps it on writing)."""

    queue: str
    callid: str
    agent: str
    verb: str
    data: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """The data fields joined as app_queue joins them."""
        return "|".join(clean(field) for field in self.data)


def _secs(seconds: float) -> str:
    return str(max(round(seconds), 0))


def queue_log_lines(event: QueueEvent, interface_of: Callable[[str], str],
                    logged_in_at: datetime | None = None) -> list[QueueLogLine]:
    """The lines app_queue would write for *event* (pure; ``[]`` when it writes none).

    *interface_of*: an agent's device (``PJSIP/alice``); *logged_in_at*: when the agent of
    an :class:`AgentLoggedOut` logged in, for AGENTLOGOFF's ``logintime`` (0 if unknown).
    """
    match event:
        case CallerEntered(readopted=False):
            return [QueueLogLine(event.queue, event.call, NONE, "ENTERQUEUE",
                                 ("", event.caller_number, str(event.position)))]
        case OfferEnded(result=result) if result in _NOT_ANSWERED:
            return [QueueLogLine(event.queue, event.call, event.agent, "RINGNOANSWER",
                                 (str(int(event.ring_seconds * 1000)),))]
        case OfferEnded(result="caller_gone"):
            return [QueueLogLine(event.queue, event.call, event.agent, "RINGCANCELED",
                                 (str(int(event.ring_seconds * 1000)),))]
        case CallConnected():
            return [QueueLogLine(event.queue, event.call, event.agent, "CONNECT",
                                 (_secs(event.wait_seconds), event.agent_channel,
                                  _secs(event.ring_seconds)))]
        case CallCompleted():
            verb = "COMPLETECALLER" if event.by == "caller" else "COMPLETEAGENT"
            return [QueueLogLine(event.queue, event.call, event.agent, verb,
                                 (_secs(event.hold_seconds), _secs(event.talk_seconds),
                                  str(event.position)))]
        case CallAbandoned():
            return [QueueLogLine(event.queue, event.call, NONE, "ABANDON",
                                 (str(event.position), str(event.original_position),
                                  _secs(event.wait_seconds)))]
        case CallbackRequested():
            return [QueueLogLine(event.queue, event.call, NONE, "EXITWITHKEY",
                                 (event.key, str(event.position),
                                  str(event.original_position), _secs(event.wait_seconds)))]
        case CallOverflowed(position=0):
            return []  # refused at entry: it never joined (app_queue logs no JOINEMPTY)
        case CallOverflowed():
            verb = "EXITEMPTY" if event.reason in _EXIT_EMPTY else "EXITWITHTIMEOUT"
            return [QueueLogLine(event.queue, event.call, NONE, verb,
                                 (str(event.position), str(event.original_position),
                                  _secs(event.wait_seconds)))]
        case CallTransferred(mode="blind"):
            return [QueueLogLine(event.queue, event.call, event.agent, "BLINDTRANSFER",
                                 (event.target, _TRANSFER_CONTEXT.get(event.target_kind, ""),
                                  _secs(event.hold_seconds), _secs(event.talk_seconds),
                                  str(event.position)))]
        case CallTransferred():
            return [QueueLogLine(event.queue, event.call, event.agent, "ATTENDEDTRANSFER",
                                 ("BRIDGE", event.bridge, _secs(event.hold_seconds),
                                  _secs(event.talk_seconds), str(event.position)))]
        case AgentLoggedIn():
            return [QueueLogLine(NONE, NONE, event.agent, "AGENTLOGIN",
                                 (interface_of(event.agent),)),
                    *(QueueLogLine(q, MANAGER, event.agent, "ADDMEMBER", ("",))
                      for q in event.queues)]
        case AgentLoggedOut():
            logintime = 0.0 if logged_in_at is None else \
                (event.at - logged_in_at).total_seconds()
            return [*(QueueLogLine(q, MANAGER, event.agent, "REMOVEMEMBER", ("",))
                      for q in event.queues),
                    QueueLogLine(NONE, NONE, event.agent, "AGENTLOGOFF",
                                 (interface_of(event.agent), _secs(logintime)))]
        case AgentPaused():
            return [QueueLogLine(NONE, NONE, event.agent, "PAUSEALL", (event.reason,)),
                    *(QueueLogLine(q, NONE, event.agent, "PAUSE", (event.reason,))
                      for q in event.queues)]
        case AgentUnpaused():
            return [QueueLogLine(NONE, NONE, event.agent, "UNPAUSEALL", ("",)),
                    *(QueueLogLine(q, NONE, event.agent, "UNPAUSE", ("",))
                      for q in event.queues)]
    return []


class QueueLogWriter:
    """An :class:`~callcenter.events.EventListener` writing each event's lines through
    AMI ``QueueLog``.

    *connect* opens a logged-in :class:`~callcenter.asterisk.ami.AMIClient` (events off);
    it is called lazily, and again after the connection drops. A line that cannot be
    written (AMI down, refused) is logged and counted in :attr:`lost`, never retried
    forever: the router's event bus must not back up behind Asterisk.
    """

    def __init__(self, connect: Callable[[], AMIClient],
                 interfaces: Mapping[str, str], *, timeout: float = 5.0) -> None:
        self._connect = connect
        self._interfaces = dict(interfaces)
        self._timeout = timeout
        self._ami: AMIClient | None = None
        self._down_until = 0.0
        self._logged_in_at: dict[str, datetime] = {}
        #: Lines Asterisk acknowledged / lines given up on.
        self.written = 0
        self.lost = 0

    def __repr__(self) -> str:
        return "QueueLogWriter()"

    def _interface(self, agent: str) -> str:
        return self._interfaces.get(agent, f"PJSIP/{agent}")

    async def handle(self, event: QueueEvent) -> None:
        login = None
        if isinstance(event, AgentLoggedIn):
            self._logged_in_at[event.agent] = event.at
        elif isinstance(event, AgentLoggedOut):
            login = self._logged_in_at.pop(event.agent, None)
        for line in queue_log_lines(event, self._interface, login):
            await self.write(line)

    async def write(self, line: QueueLogLine) -> bool:
        """Send one line; True once Asterisk acknowledged it."""
        fields = {"Queue": clean(line.queue), "UniqueId": clean(line.callid),
                  "Interface": clean(line.agent), "Event": line.verb, "Message": line.message}
        for _attempt in (1, 2):  # a connection found dead is reopened once
            ami = await self._connected()
            if ami is None:
                break
            try:
                await ami.action("QueueLog", timeout=self._timeout, **fields)
            except AMIActionError as exc:  # Asterisk refused the line: not worth a retry
                log.warning("queue_log %s %s: refused: %s", line.verb, line.callid, exc)
                break
            except AMIError as exc:  # the connection dropped or timed out
                log.warning("queue_log %s %s: AMI QueueLog failed: %s",
                            line.verb, line.callid, exc)
                await self._drop()
                continue
            self.written += 1
            return True
        self.lost += 1
        return False

    async def _connected(self) -> AMIClient | None:
        if self._ami is not None and self._ami.connected:
            return self._ami
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            return None
        await self._drop()
        ami = self._connect()
        try:
            await ami.connect()
        except (AMIError, OSError) as exc:
            log.warning("queue_log: cannot reach AMI (%s); lines dropped for %.0f s",
                        exc, RECONNECT_PAUSE)
            self._down_until = loop.time() + RECONNECT_PAUSE
            return None
        self._ami = ami
        return ami

    async def _drop(self) -> None:
        ami, self._ami = self._ami, None
        if ami is not None:
            await ami.close()

    async def close(self) -> None:
        """Close the AMI connection (the service does it on the way out)."""
        await self._drop()

