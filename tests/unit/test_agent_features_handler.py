"""The agent app's handler on a real AgentStore (SQLite), with a fake of the two ARI
channel calls it makes; the real-SIP path is tests/integration/test_agent_features.py.

Every exit hangs up; refused commands change nothing and do not wake the router."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ari_apps.agent_features import (
    REFUSED,
    PlaybackWaits,
    handle_agent_command,
    playback_id,
)
from callcenter.agents.state import AgentStatus, Rules
from callcenter.agents.store import AgentStore
from callcenter.asterisk.ari import ARINotFound, ChannelDestroyed, PlaybackFinished
from callcenter.asterisk.ari.events import Channel, Playback
from callcenter.asterisk.stasis_args import AgentCommand

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


@dataclass
class FakeChannels:
    """``channels.play`` and ``channels.hangup`` as ARI answers them; ``gone`` channels
    answer 404, as a channel hung up meanwhile does."""

    gone: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    async def play(self, channel_id: str, media: str, *, playback_id: str) -> None:
        if channel_id in self.gone:
            raise ARINotFound(404, "Channel not found", "POST", f"/channels/{channel_id}")
        self.calls.append(("play", channel_id, media))

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        if channel_id in self.gone:
            raise ARINotFound(404, "Channel not found", "POST", f"/channels/{channel_id}")
        self.calls.append(("hangup", channel_id, reason))


@dataclass
class FakeARI:
    channels: FakeChannels = field(default_factory=FakeChannels)


async def instantly(_: str) -> None:
    """The playback is over at once."""


async def run(sessions: async_sessionmaker[AsyncSession], command: AgentCommand,
              ari: FakeARI | None = None) -> tuple[str, FakeARI, list[str], AgentStore]:
    store = AgentStore(sessions, Rules(frozenset({"lunch"})))
    await store.ensure(["alice"], NOW)
    ari = ari or FakeARI()
    changed: list[str] = []
    result = await handle_agent_command(ari, "ch-1", command, store, NOW,  # type: ignore[arg-type]
                                        changed.append, played=instantly, agents={"alice"})
    return result, ari, changed, store


async def test_login_confirms_hangs_up_then_wakes_the_router(sessions) -> None:
    result, ari, changed, store = await run(sessions, AgentCommand("login", "alice"))
    assert result == "available"
    assert ari.channels.calls == [("play", "ch-1", "sound:agent-loginok"),
                                  ("hangup", "ch-1", "normal")]
    assert changed == ["alice"]
    assert (await store.get("alice", NOW)).status is AgentStatus.AVAILABLE


async def test_illegal_transition_plays_an_error_and_changes_nothing(sessions) -> None:
    result, ari, changed, store = await run(sessions, AgentCommand("logout", "alice"))
    assert result == REFUSED
    assert ari.channels.calls[0] == ("play", "ch-1", "sound:beeperr")
    assert ari.channels.calls[-1][0] == "hangup"
    assert changed == []
    state = await store.get("alice", NOW)
    assert (state.status, state.version) == (AgentStatus.LOGGED_OUT, 0)


async def test_unknown_reason_and_unknown_agent_are_refused(sessions) -> None:
    result, _, changed, _ = await run(sessions, AgentCommand("pause", "alice", "nap"))
    assert (result, changed) == (REFUSED, [])
    result, _, changed, store = await run(sessions, AgentCommand("login", "mallory"))
    assert (result, changed) == (REFUSED, [])
    assert [s.agent for s in await store.all()] == ["alice"]  # no row for mallory


async def test_agent_gone_before_the_confirmation(sessions) -> None:
    """The agent hung up at once: the state change stands, nothing raises."""
    ari = FakeARI(FakeChannels(gone={"ch-1"}))
    result, ari, changed, _ = await run(sessions, AgentCommand("login", "alice"), ari)
    assert (result, changed, ari.channels.calls) == ("available", ["alice"], [])


def _channel(channel_id: str) -> Channel:
    return Channel.from_json({"id": channel_id, "name": "PJSIP/alice-1", "state": "Up",
                              "caller": {"name": "", "number": "1001"},
                              "connected": {"name": "", "number": ""},
                              "dialplan": {"context": "cc-extensions", "exten": "*70",
                                           "priority": 4}})


async def test_playback_waits_end_on_finish_on_hangup_or_timeout() -> None:
    waits = PlaybackWaits(timeout=0.05)
    key = playback_id("ch-1")
    # PlaybackFinished before anyone waits (it can beat the play request's reply).
    waits.deliver(PlaybackFinished(type="PlaybackFinished", playback=Playback(
        key, "sound:beep", "channel:ch-1", "done")))
    await asyncio.wait_for(waits.wait(key), 1)
    # The channel destroyed while waiting.
    waiter = asyncio.ensure_future(waits.wait(playback_id("ch-2")))
    await asyncio.sleep(0)  # one turn of the loop: the waiter registers (no timing)
    waits.deliver(ChannelDestroyed(type="ChannelDestroyed", channel=_channel("ch-2"), cause=16,
                                   cause_txt="Normal Clearing"))
    await asyncio.wait_for(waiter, 1)
    # Nothing comes: the timeout ends the wait, nothing is left behind.
    await waits.wait(playback_id("ch-3"))
    assert not waits._waiting
