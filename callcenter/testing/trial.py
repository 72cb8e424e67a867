"""Try the running center with a real SIP call (``callcenter call``).

sipp places the call (RFC 2833 DTMF, see :mod:`callcenter.testing.sipp`) to the
instance's SIP port while an AMI connection watches what Asterisk does with it:
the caller's channel is picked out by its ``Newchannel`` (PJSIP, the number
dialled, our caller ID), its ``Newexten`` steps give the route and its
``Hangup`` the cause. Nothing is simulated.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from callcenter.asterisk.ami.client import (
    AMIClient,
    AMIError,
    AMIMessage,
    AMISubscription,
)
from callcenter.asterisk.instance import AsteriskInstance
from callcenter.testing.ports import free_udp_range, free_udp_tcp_port
from callcenter.testing.route import CallRoute, answered_by, is_our_channel, route_of
from callcenter.testing.sipp import Caller, Keypress, SippError, run_call

__all__ = ["TrialError", "TrialResult", "final_response", "keypresses", "place_call"]

#: Key timing: the first key after the greeting (1.4 s) has started the first menu;
#: later groups once the next menu prompt plays; digits of one group (an account
#: number) at a typing pace.
FIRST_KEY_MS = 2500
NEXT_GROUP_MS = 1200
SAME_GROUP_MS = 400


class TrialError(RuntimeError):
    """The call could not be placed or observed."""


@dataclass(frozen=True)
class TrialResult:
    final_response: str  # "200 OK", "403 Forbidden", "" when none came
    route: CallRoute
    remote_hangup: bool  # Asterisk sent the BYE (else we hung up after the hold)
    channel: str
    answered_by: tuple[str, ...] = ()  # devices that answered a leg of this call


def keypresses(text: str) -> tuple[Keypress, ...]:
    """``"1,1,100200#"`` -> key presses with their delays (groups split by commas)."""
    keys: list[Keypress] = []
    for group in (g.strip() for g in text.split(",") if g.strip()):
        if not re.fullmatch(r"[0-9*#]+", group):
            raise ValueError(f"invalid keys {group!r}: expected 0-9, * or #")
        for i, key in enumerate(group):
            delay = SAME_GROUP_MS if i else (NEXT_GROUP_MS if keys else FIRST_KEY_MS)
            keys.append(Keypress(key, delay))
    return tuple(keys)


def final_response(messages: list[str]) -> str:
    """Status of the first final response sipp received (``200 OK``, ``403 Forbidden``)."""
    for message in messages:
        for line in message.splitlines():
            m = re.match(r"\s*SIP/2\.0 ([2-6]\d\d .*)", line)
            if m:
                return m.group(1).strip()
    return ""


def _free_media_port() -> int:
    """An even UDP port with the next three free (sipp's audio and RTCP, both ways),
    reserved for this process."""
    try:
        return free_udp_range(4)[0]
    except RuntimeError:
        raise TrialError("no free UDP ports for the caller's audio on 127.0.0.1") from None


async def _watch(sub: AMISubscription, number: str, caller_id: str,
                 found: asyncio.Future[str],
                 answered: list[str]) -> tuple[list[AMIMessage], AMIMessage]:
    """Collect our channel's Newexten steps until its Hangup, and into *answered*
    the devices that answered a leg linked to it."""
    uniqueid: str | None = None
    linkedid: str | None = None
    steps: list[AMIMessage] = []
    while True:
        event = await sub.get()
        if uniqueid is None:
            if is_our_channel(event, number=number, caller_id=caller_id):
                uniqueid = event.get("Uniqueid")
                linkedid = event.get("Linkedid") or uniqueid
                found.set_result(event.get("Channel", ""))
            continue
        if event.event == "DialEnd":
            device = answered_by(event, linkedid or "")
            if device is not None:
                answered.append(device)
            continue
        if event.get("Uniqueid") != uniqueid:
            continue
        if event.event == "Newexten":
            steps.append(event)
        elif event.event == "Hangup":
            return steps, event


async def place_call(instance: AsteriskInstance, number: str, *, caller_id: str,
                     keys: tuple[Keypress, ...], hold_s: float,
                     timeout: float = 120.0) -> TrialResult:
    """Call ``number`` on the running instance and report what Asterisk did."""
    s = instance.settings
    creds = instance.credentials
    host = "127.0.0.1" if s.bind in ("", "0.0.0.0") else s.bind
    caller = Caller(number, caller_id=caller_id, keys=keys, hold_ms=int(hold_s * 1000))
    try:
        async with AMIClient(host, s.ami_port, username=creds.ami_user,
                             secret=creds.ami_secret, events="call,dialplan") as ami:
            with ami.subscribe("Newchannel", "Newexten", "DialEnd", "Hangup") as sub:
                found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                answered: list[str] = []
                watcher = asyncio.ensure_future(_watch(sub, number, caller_id, found,
                                                       answered))
                try:
                    sip = await run_call(caller, sip_port=s.sip_port,
                                         local_port=free_udp_tcp_port(),
                                         media_port=_free_media_port(), timeout=timeout)
                    if not found.done():
                        raise TrialError(
                            f"Asterisk made no channel for the call (sipp exit {sip.returncode}:"
                            f" {sip.stderr.strip()[-300:] or 'no output'})")
                    # sipp returns once the BYE is answered; Hangup follows within ms.
                    done, _ = await asyncio.wait([watcher], timeout=10)
                    if not done:
                        raise TrialError(f"no Hangup from Asterisk for {found.result()} "
                                         "within 10 s of the call's end")
                    steps, hangup = watcher.result()
                finally:
                    # The watcher is ours: cancel it and wait for it, without
                    # swallowing a cancellation of this task.
                    watcher.cancel()
                    await asyncio.wait([watcher])
                    if not watcher.cancelled():
                        watcher.exception()
    except (OSError, TimeoutError, AMIError, SippError) as exc:
        raise TrialError(str(exc) or type(exc).__name__) from None
    return TrialResult(final_response(sip.messages), route_of(steps, hangup),
                       sip.remote_hangup, found.result(), tuple(answered))
