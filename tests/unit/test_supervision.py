"""Supervision's decisions (pure): which agent the dialled digits name, who may listen,
whisper or barge, and the snoop directions each mode asks Asterisk for."""

from __future__ import annotations

import pytest

from ari_apps.supervision import (
    SNOOP,
    Join,
    Refusal,
    Supervision,
    SupervisionRefused,
    decide,
    find_agent,
    keypad_digits,
)
from callcenter.asterisk.ari import ARIClient, Event
from callcenter.asterisk.ari.events import parse_event
from callcenter.config.loader import load_config
from callcenter.config.models import CallCenterConfig
from tests.conftest import EXAMPLE


def example(**supervisors: tuple[str, ...]) -> CallCenterConfig:
    """The example config with the given agents made supervisors of the given queues."""
    config = load_config(EXAMPLE).config
    agents = dict(config.agents)
    for name, queues in supervisors.items():
        agents[name] = agents[name].model_copy(update={"role": "supervisor",
                                                       "supervises": queues})
    return config.model_copy(update={"agents": agents})


def test_keypad_spelling() -> None:
    assert keypad_digits("carmen") == "227636"
    assert keypad_digits("bob_2") == "2622"


def test_digits_name_an_agent_by_extension_then_by_name() -> None:
    config = example()
    assert find_agent(config, "1000") == "carmen"
    assert find_agent(config, "227636") == "carmen"
    assert find_agent(config, "262") == "bob"
    assert find_agent(config, "9999") is None


def test_only_a_supervisor_of_a_queue_the_agent_serves() -> None:
    config = example(bob=("sales",))
    # carmen serves sales (skill sales); bob supervises sales.
    assert decide(config, "bob", "carmen", "whisper", "chan-1") == Join(
        "bob", "carmen", "whisper", "chan-1", "both", "out")
    # alice is an agent, not a supervisor, whatever her phone dials.
    refused = decide(config, "alice", "carmen", "listen", "chan-1")
    assert isinstance(refused, Refusal) and refused.reason == "not_supervisor"
    assert refused.prompt == "beeperr"
    # bob (internet, phone) serves tech_support, which bob does not supervise as such.
    config = example(carmen=("tech_support",))
    refused = decide(config, "carmen", "alice", "barge", "chan-2")
    assert isinstance(refused, Refusal) and refused.reason == "not_supervised"
    assert "alice serves none of the queues carmen supervises (tech_support)" == refused.message
    assert isinstance(decide(config, "carmen", "bob", "barge", "chan-2"), Join)


def test_not_on_a_call_and_unknown_agent() -> None:
    config = example(bob=("sales",))
    refused = decide(config, "bob", "carmen", "listen", None)
    assert isinstance(refused, Refusal)
    assert (refused.reason, refused.prompt) == ("not_on_call", "vm-isunavail")
    refused = decide(config, "bob", None, "listen", None)
    assert isinstance(refused, Refusal) and refused.reason == "unknown_agent"
    assert refused.prompt == "pbx-invalid"


def test_a_supervisor_does_not_supervise_itself() -> None:
    config = example(carmen=("sales",))
    refused = decide(config, "carmen", "carmen", "listen", "chan-1")
    assert isinstance(refused, Refusal) and refused.reason == "not_supervised"


@pytest.mark.parametrize(("mode", "spy", "whisper"), [
    ("listen", "both", "none"), ("whisper", "both", "out"), ("barge", "both", "both")])
def test_snoop_directions(mode: str, spy: str, whisper: str) -> None:
    assert SNOOP[mode] == (spy, whisper)
    join = decide(example(bob=("sales",)), "bob", "carmen", mode, "c")
    assert isinstance(join, Join) and (join.spy, join.whisper) == (spy, whisper)


def test_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decide(example(bob=("sales",)), "bob", "carmen", "spy", "c")


# -- event routing and refusals without Asterisk ------------------------------------------

def _channel(channel_id: str) -> dict[str, object]:
    return {"id": channel_id, "name": f"PJSIP/x-{channel_id}", "state": "Up",
            "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""},
            "dialplan": {"context": "cc-extensions", "exten": "s", "priority": 1}}


def _event(kind: str, channel_id: str, **more: object) -> Event:
    return parse_event({"type": kind, "application": "cc-agent",
                        "channel": _channel(channel_id), **more})


def _unopened() -> ARIClient:
    """A client never opened: any REST call it were asked to make would raise."""
    return ARIClient("http://127.0.0.1:9/ari", username="u", password="p", app="cc-agent")


async def test_refused_before_anything_rings() -> None:
    spawned: list[str] = []
    supervision = Supervision(_unopened(), example(bob=("sales",)),
                              agent_call=lambda agent: None,
                              spawn=lambda coro, name: (coro.close(), spawned.append(name)))
    with pytest.raises(SupervisionRefused) as info:
        await supervision.supervise("alice", "carmen", "listen")
    assert info.value.reason == "not_supervisor"
    with pytest.raises(SupervisionRefused) as info:
        await supervision.supervise("bob", "carmen", "whisper")
    assert info.value.reason == "not_on_call"
    assert supervision.refusals == [("api", "not_supervisor"), ("api", "not_on_call")]
    assert spawned == [] and supervision.sessions == {}


async def test_events_of_supervisors_and_snoops_are_taken_the_router_keeps_the_rest() -> None:
    spawned: list[str] = []
    supervision = Supervision(_unopened(), example(bob=("sales",)),
                              agent_call=lambda agent: "leg-1",
                              spawn=lambda coro, name: (coro.close(), spawned.append(name)))
    assert supervision.handles(("listen", "supervisor=bob", "target=1000"))
    assert not supervision.handles(("login", "agent=bob", "reason="))
    supervision.start("sup-1", ("listen", "supervisor=bob", "target=1000"))
    assert spawned == ["supervision sup-1"] and supervision.owns("sup-1")
    # A snoop whose session is unknown (a previous process's): taken, and hung up.
    assert supervision.deliver(_event("StasisStart", "cc-snoop-old", args=["snoop"]))
    assert spawned[-1] == "orphan snoop cc-snoop-old"
    # The supervisor's own channel leaving: taken.
    assert supervision.deliver(_event("StasisEnd", "sup-1"))
    # Anyone else's: the router's (a caller, an agent's leg, an agent's feature code).
    assert not supervision.deliver(_event("StasisEnd", "leg-1"))
    assert not supervision.deliver(_event("StasisStart", "caller-1", args=["sales"]))
