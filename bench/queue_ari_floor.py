"""(helper) The floor of any ARI queue router: the ``ari_floor`` contenders of ``bench/queue.py``.

    python bench/queue_ari_floor.py --home H --app cc-floor --agents agent001,agent002,...
                                    [--client project|raw]
                                    [--hold moh|bridge|none|channel_moh]
                                    [--ring-timeout 15]

Dialplan contract: ``Stasis(<app>)`` after ``Answer()`` (the bench's extensions 7210...);
the Stasis args are ignored. Per caller it makes Asterisk do only what any ARI queue
router must, with no database and no decision beyond "next free agent" (a Python deque,
longest idle first):

1. StasisStart of the caller -> hold it: ``--hold moh`` (the product's way, and app_queue's
   ``musicclass``): a mixing bridge with the caller, music on hold on the bridge;
   ``bridge``: the same bridge, silent; ``none``: the caller just stays in Stasis (answered,
   silent) and the bridge is made when an agent answers; ``channel_moh``: the same, with
   music on hold on the caller's channel (no bridge, no announcer channel: app_queue's
   way of playing it).
2. ``channels/create`` of ``PJSIP/<agent>`` with an id we choose, ``originator`` = the caller
   (the leg inherits its linked id, as app_queue's member leg does: that is how the bench
   matches the ring to the caller) and the caller's number as caller ID; the leg's
   StasisStart; then ``channels/{leg}/dial`` with the ring timeout (Asterisk 22 answers a
   dial before the leg is in Stasis with 409).
3. ``Dial`` ANSWER -> the leg joins the caller's bridge (MOH stopped first). Any other final
   dial status, or the leg's StasisEnd before an answer -> the leg is hung up, the agent is
   free again, the next one is offered.
4. StasisEnd of either side -> the other is hung up, the bridge destroyed, the agent free.

``--client project`` runs it on the project's ARI client (``callcenter.asterisk.ari``:
typed events, REST wrappers); ``--client raw`` on a bare aiohttp websocket and REST calls
with the standard library's ``json``: their difference is what our client costs.

Each call has one owner (a task of the app's TaskGroup with its own inbox); the websocket
reader only routes events by channel id. A 404 on a hang-up or a bridge destroy is normal
(the other side went first). ``ari floor ready`` is printed once the app is registered;
SIGTERM or SIGINT stops it. Its own process so that its CPU is counted apart.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import collections
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, bench/ comes first on sys.path, where bench/queue.py would shadow the
# standard library's ``queue`` (asyncio imports it): drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: import the repo's packages
    sys.path.insert(0, str(REPO))

import aiohttp

__all__ = ["HOLDS", "READY", "FloorARI", "FloorApp", "ProjectARI", "RawARI", "main"]

#: Printed once the app is registered in Asterisk; the driver waits for it.
READY = "ari floor ready"
HOLDS = ("moh", "bridge", "none", "channel_moh")
#: Dial statuses after which the leg will not be answered.
_FAILED = frozenset({"BUSY", "NOANSWER", "CANCEL", "CONGESTION", "CHANUNAVAIL", "DONTCALL",
                     "TORTURE", "INVALIDARGS"})
#: Bounds: a leg enters Stasis within LEG_START s of its create; a call lasts at most
#: CALL_LIMIT s (far above any bench call: a stuck owner cannot outlive the run).
LEG_START = 5.0
CALL_LIMIT = 600.0
REST_TIMEOUT = 10.0

log = logging.getLogger("bench.ari_floor")

#: What the reader hands a call's owner: (kind, channel id, dial status or caller number).
#: kind: "start" (StasisStart), "end" (StasisEnd), "dial" (Dial), "agent" (an agent freed
#: for this caller; the id is the agent's name).
Message = tuple[str, str, str]


class FloorARI(abc.ABC):
    """The few ARI requests and events the floor needs, over one client or the other."""

    @abc.abstractmethod
    def events(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Connected (the app registered) on enter; yields StasisStart ("start", id,
        caller number), StasisEnd ("end", id, "") and Dial ("dial", peer id, status)."""

    @abc.abstractmethod
    async def create_bridge(self, bridge_id: str) -> None: ...

    @abc.abstractmethod
    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def moh(self, bridge_id: str, on: bool) -> None: ...

    @abc.abstractmethod
    async def channel_moh(self, channel_id: str, on: bool) -> None: ...

    @abc.abstractmethod
    async def create_leg(self, endpoint: str, leg_id: str, caller_id: str,
                         number: str) -> None: ...

    @abc.abstractmethod
    async def dial(self, leg_id: str, timeout: int) -> None: ...

    @abc.abstractmethod
    async def hangup(self, channel_id: str) -> None:
        """Hang up; a channel already gone (404) is not an error."""

    @abc.abstractmethod
    async def destroy_bridge(self, bridge_id: str) -> None:
        """Destroy; a bridge already gone (404) is not an error."""


class ProjectARI(FloorARI):
    """On ``callcenter.asterisk.ari.ARIClient``: typed events, REST wrappers."""

    def __init__(self, client: object, app: str) -> None:
        from callcenter.asterisk.ari import ARIClient

        assert isinstance(client, ARIClient)
        self.ari = client
        self.app = app

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[Message]]:
        from callcenter.asterisk.ari import Dial, StasisEnd, StasisStart

        async def messages() -> AsyncIterator[Message]:
            async for event in stream:
                if isinstance(event, StasisStart):
                    yield ("start", event.channel.id, event.channel.caller.number)
                elif isinstance(event, StasisEnd):
                    yield ("end", event.channel.id, "")
                elif isinstance(event, Dial):
                    yield ("dial", event.peer.id, event.dialstatus)

        async with self.ari.events() as stream:
            yield messages()

    async def create_bridge(self, bridge_id: str) -> None:
        await self.ari.bridges.create("mixing", bridge_id=bridge_id)

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self.ari.bridges.add_channel(bridge_id, channel_ids)

    async def moh(self, bridge_id: str, on: bool) -> None:
        if on:
            await self.ari.bridges.start_moh(bridge_id)
        else:
            await self.ari.bridges.stop_moh(bridge_id)

    async def channel_moh(self, channel_id: str, on: bool) -> None:
        if on:
            await self.ari.channels.start_moh(channel_id)
        else:
            await self.ari.channels.stop_moh(channel_id)

    async def create_leg(self, endpoint: str, leg_id: str, caller_id: str,
                         number: str) -> None:
        await self.ari.channels.create(endpoint, channel_id=leg_id, app=self.app,
                                       originator=caller_id,
                                       variables={"CALLERID(num)": number})

    async def dial(self, leg_id: str, timeout: int) -> None:
        await self.ari.channels.dial(leg_id, timeout=timeout)

    async def hangup(self, channel_id: str) -> None:
        from callcenter.asterisk.ari import ARINotFound

        with contextlib.suppress(ARINotFound):
            await self.ari.channels.hangup(channel_id)

    async def destroy_bridge(self, bridge_id: str) -> None:
        from callcenter.asterisk.ari import ARINotFound

        with contextlib.suppress(ARINotFound):
            await self.ari.bridges.destroy(bridge_id)


class RawARIError(RuntimeError):
    """An ARI request answered with an error status."""


class RawARI(FloorARI):
    """A bare aiohttp websocket and REST calls, ``json`` from the standard library: no
    typed events, no response parsing beyond the status."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, app: str) -> None:
        self.session = session
        self.base = base_url.rstrip("/") + "/ari"
        self.app = app

    async def _request(self, method: str, path: str, params: dict[str, str] | None = None,
                       body: dict[str, object] | None = None, *,
                       missing_ok: bool = False) -> None:
        async with asyncio.timeout(REST_TIMEOUT):
            async with self.session.request(method, self.base + path, params=params,
                                            json=body) as resp:
                if resp.status < 300 or (missing_ok and resp.status == 404):
                    await resp.read()
                    return
                raise RawARIError(f"{method} {path}: {resp.status} {await resp.text()}")

    @contextlib.asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[Message]]:
        async with asyncio.timeout(REST_TIMEOUT):
            ws = await self.session.ws_connect(
                self.base + "/events", params={"app": self.app, "subscribeAll": "false"},
                heartbeat=20.0)

        async def messages() -> AsyncIterator[Message]:
            async for frame in ws:
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                      aiohttp.WSMsgType.ERROR):
                        return
                    continue
                event = json.loads(frame.data)
                kind = event.get("type")
                if kind == "StasisStart":
                    channel = event["channel"]
                    yield ("start", channel["id"], channel.get("caller", {}).get("number", ""))
                elif kind == "StasisEnd":
                    yield ("end", event["channel"]["id"], "")
                elif kind == "Dial":
                    yield ("dial", event["peer"]["id"], event.get("dialstatus", ""))

        try:
            yield messages()
        finally:
            await ws.close()

    async def create_bridge(self, bridge_id: str) -> None:
        await self._request("POST", "/bridges", {"type": "mixing", "bridgeId": bridge_id})

    async def add_channels(self, bridge_id: str, channel_ids: Sequence[str]) -> None:
        await self._request("POST", f"/bridges/{bridge_id}/addChannel",
                            {"channel": ",".join(channel_ids)})

    async def moh(self, bridge_id: str, on: bool) -> None:
        await self._request("POST" if on else "DELETE", f"/bridges/{bridge_id}/moh")

    async def channel_moh(self, channel_id: str, on: bool) -> None:
        await self._request("POST" if on else "DELETE", f"/channels/{channel_id}/moh")

    async def create_leg(self, endpoint: str, leg_id: str, caller_id: str,
                         number: str) -> None:
        await self._request("POST", "/channels/create",
                            {"endpoint": endpoint, "app": self.app, "channelId": leg_id,
                             "originator": caller_id},
                            {"variables": {"CALLERID(num)": number}})

    async def dial(self, leg_id: str, timeout: int) -> None:
        await self._request("POST", f"/channels/{leg_id}/dial", {"timeout": str(timeout)})

    async def hangup(self, channel_id: str) -> None:
        await self._request("DELETE", f"/channels/{channel_id}", missing_ok=True)

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self._request("DELETE", f"/bridges/{bridge_id}", missing_ok=True)


class CallerGone(Exception):
    """The caller's channel left Stasis (hung up)."""


@dataclass(eq=False)
class Call:
    """One caller and its owner's inbox."""

    channel_id: str
    number: str
    inbox: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    alive: bool = True

    @property
    def bridge_id(self) -> str:
        return f"{self.channel_id}-floor"


class FloorApp:
    """Routes events to call owners; hands free agents to waiting callers in order."""

    def __init__(self, ari: FloorARI, agents: Sequence[str], *, hold: str = "moh",
                 ring_timeout: int = 15) -> None:
        if hold not in HOLDS:
            raise ValueError(f"hold: one of {HOLDS}, not {hold!r}")
        self.ari = ari
        self.hold = hold
        self.ring_timeout = ring_timeout
        self.free: collections.deque[str] = collections.deque(agents)
        self.waiting: collections.deque[Call] = collections.deque()
        self.calls: dict[str, Call] = {}  # caller channel id -> call
        self.legs: dict[str, Call] = {}  # agent leg id -> its caller's call
        self._legs_made = 0

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Read events until the websocket closes or the task is cancelled."""
        async with self.ari.events() as events, asyncio.TaskGroup() as tg:
            if ready is not None:
                ready.set()
            async for kind, channel_id, detail in events:
                call = self.legs.get(channel_id) or self.calls.get(channel_id)
                if call is not None:
                    call.inbox.put_nowait((kind, channel_id, detail))
                elif kind == "start":  # a new caller (legs are registered before create)
                    call = Call(channel_id, detail)
                    self.calls[channel_id] = call
                    tg.create_task(self._own(call), name=f"floor-{channel_id}")

    # -- agents ---------------------------------------------------------------------

    def _take_agent(self, call: Call) -> str | None:
        if self.free and not self.waiting:
            return self.free.popleft()
        self.waiting.append(call)
        return None

    def _release(self, agent: str) -> None:
        while self.waiting:
            call = self.waiting.popleft()
            if call.alive:
                call.inbox.put_nowait(("agent", agent, ""))
                return
        self.free.append(agent)  # longest idle first: the freed agent goes last

    # -- one call -------------------------------------------------------------------

    async def _next(self, call: Call, wanted: str, channel_id: str) -> Message:
        """The next message of kind ``wanted`` for ``channel_id`` (any kind when
        ``wanted`` is empty; an agent handed over when it is "agent"); CallerGone when
        the caller's StasisEnd comes first. Others (a former leg's) are dropped."""
        while True:
            message = await call.inbox.get()
            kind, cid, _ = message
            if kind == "end" and cid == call.channel_id:
                raise CallerGone
            if kind == "agent":  # an agent handed over: the id is its name
                if wanted == "agent":
                    return message
                self._release(cid)  # not expected here: give it back
            elif cid == channel_id and (not wanted or kind == wanted):
                return message

    async def _own(self, call: Call) -> None:
        """The whole life of one caller; never raises (a failure hangs the caller up)."""
        agent: str | None = None
        leg: str | None = None
        bridged = False
        try:
            async with asyncio.timeout(CALL_LIMIT):
                if self.hold == "channel_moh":
                    await self.ari.channel_moh(call.channel_id, True)
                elif self.hold != "none":
                    await self.ari.create_bridge(call.bridge_id)
                    bridged = True
                    await self.ari.add_channels(call.bridge_id, [call.channel_id])
                    if self.hold == "moh":
                        await self.ari.moh(call.bridge_id, True)
                while True:
                    agent = self._take_agent(call)
                    if agent is None:
                        _, agent, _ = await self._next(call, "agent", "")
                    self._legs_made += 1
                    leg = f"{call.channel_id}-leg{self._legs_made}"
                    self.legs[leg] = call
                    await self.ari.create_leg(f"PJSIP/{agent}", leg, call.channel_id,
                                              call.number)
                    async with asyncio.timeout(LEG_START):
                        kind, _, _ = await self._next(call, "", leg)
                    if kind == "start":
                        await self.ari.dial(leg, self.ring_timeout)
                        if await self._answered(call, leg):
                            break
                    # Not answered (or the leg never rang): next agent.
                    await self.ari.hangup(leg)
                    del self.legs[leg]
                    self._release(agent)
                    agent = leg = None
                if self.hold in ("none", "channel_moh"):
                    if self.hold == "channel_moh":
                        await self.ari.channel_moh(call.channel_id, False)
                    await self.ari.create_bridge(call.bridge_id)
                    bridged = True
                    await self.ari.add_channels(call.bridge_id, [call.channel_id, leg])
                else:
                    if self.hold == "moh":
                        await self.ari.moh(call.bridge_id, False)
                    await self.ari.add_channels(call.bridge_id, [leg])
                await self._next(call, "end", leg)  # talking until the agent hangs up
                leg_gone = leg
                leg = None
                del self.legs[leg_gone]
                await self.ari.hangup(call.channel_id)
        except CallerGone:
            pass
        except Exception:
            log.exception("call %s: failed; hanging it up", call.channel_id)
            with contextlib.suppress(Exception):
                await self.ari.hangup(call.channel_id)
        finally:
            await self._close(call, agent, leg, bridged)

    async def _answered(self, call: Call, leg: str) -> bool:
        """Until the leg's dial ends: True on ANSWER, False on any other end."""
        async with asyncio.timeout(self.ring_timeout + LEG_START):
            while True:
                kind, _, status = await self._next(call, "", leg)
                if kind == "end":
                    return False
                if kind == "dial" and status == "ANSWER":
                    return True
                if kind == "dial" and status in _FAILED:
                    return False

    async def _close(self, call: Call, agent: str | None, leg: str | None,
                     bridged: bool) -> None:
        """Whatever is left of the call: the leg, the bridge, the agent, the books."""
        call.alive = False
        self.calls.pop(call.channel_id, None)
        with contextlib.suppress(ValueError):
            self.waiting.remove(call)
        try:
            if leg is not None:
                self.legs.pop(leg, None)
                await self.ari.hangup(leg)
            if bridged:
                await self.ari.destroy_bridge(call.bridge_id)
        except Exception:
            log.exception("call %s: cleanup failed", call.channel_id)
        finally:
            if agent is not None:
                self._release(agent)
            while not call.inbox.empty():  # an agent handed over as the caller left
                kind, name, _ = call.inbox.get_nowait()
                if kind == "agent":
                    self._release(name)


async def serve(home: Path, app: str, agents: Sequence[str], *, client: str, hold: str,
                ring_timeout: int) -> None:
    """The floor app until SIGTERM/SIGINT."""
    from callcenter.asterisk.instance import AsteriskInstance

    instance = AsteriskInstance(home)
    creds = instance.credentials
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        ari: FloorARI
        if client == "project":
            from callcenter.asterisk.ari import ARIClient

            project = await stack.enter_async_context(ARIClient(
                instance.ari_url, username=creds.ari_user, password=creds.ari_password,
                app=app))
            ari = ProjectARI(project, app)
        else:
            session = await stack.enter_async_context(aiohttp.ClientSession(
                auth=aiohttp.BasicAuth(creds.ari_user, creds.ari_password)))
            ari = RawARI(session, instance.ari_url, app)
        floor = FloorApp(ari, agents, hold=hold, ring_timeout=ring_timeout)
        ready = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(floor.run(ready), name="ari-floor")
            waiter = tg.create_task(ready.wait())
            await asyncio.wait([task, waiter], timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if not ready.is_set():
                task.cancel()
                waiter.cancel()
                raise SystemExit("ari floor: the events websocket did not connect")
            print(f"{READY}: app {app}, {len(agents)} agents, client {client}, hold {hold}",
                  flush=True)
            stopped = tg.create_task(stop.wait())
            await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
            task.cancel()
            stopped.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--agents", required=True, help="comma-separated PJSIP endpoints")
    parser.add_argument("--client", choices=("project", "raw"), default="project")
    parser.add_argument("--hold", choices=HOLDS, default="moh")
    parser.add_argument("--ring-timeout", type=int, default=15)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    agents = [a for a in args.agents.split(",") if a]
    run = serve(args.home, args.app, agents, client=args.client, hold=args.hold,
                ring_timeout=args.ring_timeout)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
