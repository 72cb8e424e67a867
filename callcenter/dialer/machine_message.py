"""A campaign's message left on an answering machine, after its beep (ARI; decisions pure).

When a campaign says ``amd: {enabled: true, on_machine: leave_message, message: <sound>}``
the placer (:mod:`callcenter.dialer.placer`) does not hang a MACHINE verdict up: it hands
the call to :func:`leave_message`, which

1. sends it on to ``cc-dialer-amd,beep,1`` (``continue``; :mod:`dialplan.dialer`):
   ``WaitForSilence()`` returns once the greeting and its beep are over, ``CC_AMD_BEEP``
   (:data:`callcenter.asterisk.variables.AMD_BEEP`) keeps ``WAITSTATUS``, and the call
   comes back to Stasis ``cc-dialer`` with the argument ``beep``;
2. plays ``sound:<message>`` on it (our own playback id) and waits for its
   ``PlaybackFinished``;
3. returns; the placer hangs the call up. The attempt ends ``machine`` with
   :attr:`MachineMessage.note` in its reason, and the contact is done
   (:func:`callcenter.dialer.retry.after_attempt`).

The sound's name goes to ARI as a media URI, never into the dialplan. Every way it
exits: a :class:`MachineMessage` saying whether the whole message was played, and the
channel's ``ChannelDestroyed`` if the machine hung up meanwhile (the placer's to record).
Every wait is bounded (:data:`MESSAGE_BUDGET`); a REST call that fails (the channel gone)
ends the attempt to leave the message, never the campaign.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from callcenter.asterisk import variables as V
from callcenter.asterisk.ari.client import ARIClient, ARIError
from callcenter.asterisk.ari.events import (
    ChannelDestroyed,
    ChannelVarset,
    Event,
    PlaybackFinished,
    StasisStart,
)
from callcenter.config.campaign import Amd
from callcenter.dialer.amd import AMD_CONTEXT, ARG_BEEP, BEEP_EXTEN, BeepSettings

__all__ = [
    "MESSAGE_BUDGET",
    "MachineMessage",
    "leave_message",
    "message_for",
    "summarise",
]

log = logging.getLogger(__name__)

#: Seconds a message may take, beep wait and playback together, before the call is hung
#: up anyway (``WaitForSilence()`` gives up after 20 s; a message is a few seconds long).
MESSAGE_BUDGET = 90.0
#: Seconds past the beep wait's own timeout for the call to come back from the dialplan.
_BEEP_MARGIN = 10.0


class Inbox(Protocol):
    """The events of the call's channel, in Asterisk's order."""

    async def get(self) -> Event: ...


def message_for(amd: Amd) -> str | None:
    """The sound to leave on a machine the campaign's AMD detects; None: hang it up."""
    if not amd.enabled or amd.on_machine != "leave_message":
        return None
    return amd.message


@dataclass(frozen=True, slots=True)
class MachineMessage:
    """What became of one message: ``left`` when the whole sound was played to the
    machine; ``beep`` is ``WaitForSilence()``'s ``WAITSTATUS`` (``SILENCE``,
    ``TIMEOUT``; empty: the call never came back from the wait); ``playback`` the
    playback's last state (empty: never started); ``why`` says what stopped it."""

    sound: str
    left: bool
    beep: str = ""
    playback: str = ""
    why: str = ""

    @property
    def note(self) -> str:
        """One line for the attempt's reason: the audit trail of what the machine got."""
        if self.left:
            after = "after the beep" if self.beep == "SILENCE" else (
                "with no pause heard for the beep" if self.beep == "TIMEOUT" else "")
            return f"machine: message {self.sound} left {after}".rstrip()
        return f"machine: message {self.sound} not left ({self.why or 'unknown'})"


def summarise(sound: str, *, beep: str, playback: str, gone: bool,
              timed_out: bool = False) -> MachineMessage:
    """The message's fate from what was seen: left only when its playback finished
    ``done`` while the call was still up (a machine that hangs up mid-message has a
    partial message, which is not one)."""
    if playback == "done" and not timed_out:
        return MachineMessage(sound, True, beep, playback)
    if timed_out:
        why = "took too long"
    elif gone and not playback:
        why = "the machine hung up before the beep" if not beep else \
            "the machine hung up before the message"
    elif gone:
        why = "the machine hung up during the message"
    elif playback:
        why = f"playback {playback}"
    else:
        why = "the call did not come back from the beep wait"
    return MachineMessage(sound, False, beep, playback, why)


async def leave_message(ari: ARIClient, inbox: Inbox, channel_id: str, sound: str, *,
                        beep: BeepSettings | None = None,
                        budget: float = MESSAGE_BUDGET,
                        ) -> tuple[MachineMessage, ChannelDestroyed | None]:
    """Wait for the beep on ``channel_id`` (in Stasis, after AMD said MACHINE), play
    ``sound``; the result and the channel's end if it came (the caller hangs up)."""
    settings = beep or BeepSettings()
    status = ""
    playback_id = f"{channel_id}-msg-{uuid.uuid4().hex[:8]}"
    state = ""
    try:
        async with asyncio.timeout(budget):
            try:
                await ari.channels.continue_in_dialplan(channel_id, AMD_CONTEXT, BEEP_EXTEN, 1)
            except ARIError as exc:  # hung up meanwhile: its ChannelDestroyed follows
                log.info("dialer: %s not sent to wait for the beep: %s", channel_id, exc)
            async with asyncio.timeout(settings.timeout + _BEEP_MARGIN):
                while True:
                    event = await inbox.get()
                    match event:
                        case ChannelDestroyed():
                            return summarise(sound, beep=status, playback="",
                                             gone=True), event
                        case ChannelVarset(variable=V.AMD_BEEP, value=value):
                            status = value
                        case StasisStart(args=args) if args[:1] == (ARG_BEEP,):
                            break
            if not status:  # the Varset raced the return, or was not sent: ask
                try:
                    status = await ari.channels.get_variable(channel_id, V.AMD_BEEP) or ""
                except ARIError:
                    status = ""
            log.info("dialer: %s: beep wait %s; leaving %s", channel_id, status or "?", sound)
            try:
                playback = await ari.channels.play(channel_id, f"sound:{sound}",
                                                   playback_id=playback_id)
                state = playback.state
            except ARIError as exc:
                log.warning("dialer: %s: message %s not played: %s", channel_id, sound, exc)
                return summarise(sound, beep=status, playback="failed", gone=False), None
            while True:
                event = await inbox.get()
                match event:
                    case PlaybackFinished(playback=p) if p.id == playback_id:
                        return summarise(sound, beep=status, playback=p.state,
                                         gone=False), None
                    case ChannelDestroyed():
                        return summarise(sound, beep=status, playback=state or "playing",
                                         gone=True), event
    except TimeoutError:
        log.warning("dialer: %s: message %s took too long", channel_id, sound)
        return summarise(sound, beep=status, playback=state, gone=False,
                         timed_out=True), None
