"""Routing decisions on a fake clock: relaxation for callers already waiting, VIPs,
strategies, languages, both directions. Each case runs through the scan (``decide``) and
the indexed ``Router``: both must give the asserted outcome."""

from __future__ import annotations

import random

import pytest

from callcenter.config.models import QueueDest, VoicemailDest
from callcenter.routing.decide import (
    Offer,
    Overflow,
    next_change,
    select_agent,
    select_call,
)
from callcenter.routing.expr import parse_expr
from callcenter.routing.index import Router
from callcenter.routing.policy import AgentView, QueuePolicy, Stage, WaitingCall


def agent(name: str, idle: float = 0.0, taken: int = 0, queues: tuple[str, ...] = ("q",),
          langs: tuple[str, ...] = (), **skills: int) -> AgentView:
    return AgentView(name, skills, frozenset(queues), frozenset(langs), idle, taken)


def call(name: str, at: float = 0.0, prio: int = 0, queue: str = "q",
         skills: tuple[str, ...] = (), lang: str | None = None, seq: int = 0) -> WaitingCall:
    return WaitingCall(name, queue, at, prio, skills, lang, seq)


def both_select_agent(c: WaitingCall, agents: list[AgentView], policy: QueuePolicy,
                      now: float, cursor: str | None = None) -> Offer | Overflow | None:
    """The scan's decision, after checking the Router decides the same."""
    router = Router({policy.name: policy})
    for a in agents:
        router.agent_available(a)
    if cursor is not None:
        router.offered(policy.name, cursor)
    scanned = select_agent(c, agents, policy, now, cursor)
    assert router.select_agent(c, now) == scanned
    # the decision does not depend on the order agents are given in
    shuffled = list(agents)
    random.Random(7).shuffle(shuffled)
    assert select_agent(c, shuffled, policy, now, cursor) == scanned
    return scanned


def both_select_call(a: AgentView, calls: list[WaitingCall],
                     policies: dict[str, QueuePolicy], now: float) -> WaitingCall | None:
    router = Router(policies)
    for c in calls:
        router.enqueue(c)
    scanned = select_call(a, calls, policies, now)
    assert router.select_call(a, now) == scanned
    return scanned


BILLING = QueuePolicy("q", (
    Stage(0, 0, parse_expr("billing >= 5")),
    Stage(1, 30, parse_expr("billing >= 3")),
    Stage(2, 90, any_agent=True),
    Stage(3, 300, overflow=VoicemailDest(voicemail="general")),
))


def test_relaxation_reaches_a_caller_already_waiting() -> None:
    """The caller entered at t=100; only weaker agents exist. As the fake clock advances the
    same waiting call is matched by each step in turn, then overflows."""
    junior, other = agent("junior", billing=3), agent("other", sales=9)
    c = call("c1", at=100.0)
    assert both_select_agent(c, [junior, other], BILLING, now=100.0) is None
    assert both_select_agent(c, [junior, other], BILLING, now=129.9) is None
    assert both_select_agent(c, [junior, other], BILLING, now=130.0) == Offer("c1", ("junior",), 1)
    assert both_select_agent(c, [other], BILLING, now=189.0) is None
    assert both_select_agent(c, [other], BILLING, now=190.0) == Offer("c1", ("other",), 2)
    assert both_select_agent(c, [junior, other], BILLING, now=400.0) == Overflow(
        "c1", VoicemailDest(voicemail="general"), 3)
    # the agent side sees the same: junior is offered the waiting call only once it relaxed
    assert both_select_call(junior, [c], {"q": BILLING}, now=120.0) is None
    assert both_select_call(junior, [c], {"q": BILLING}, now=131.0) == c
    assert both_select_call(junior, [c], {"q": BILLING}, now=400.0) is None  # overflowing


def test_next_change_is_the_next_relax_boundary() -> None:
    calls = [call("a", at=100.0), call("b", at=50.0)]
    assert next_change(calls, {"q": BILLING}, now=100.0) == 130.0  # b: 50+90=140, a: 130
    assert next_change(calls, {"q": BILLING}, now=135.0) == 140.0
    assert next_change(calls, {"q": BILLING}, now=1000.0) is None


def test_vip_ahead_of_earlier_callers_then_longest_waiting() -> None:
    policy = QueuePolicy("q")
    early, vip, later = call("early", at=1.0, seq=1), call("vip", at=50.0, prio=10, seq=3), \
        call("later", at=20.0, seq=2)
    a = agent("alice")
    assert both_select_call(a, [early, vip, later], {"q": policy}, now=60.0) == vip
    assert both_select_call(a, [early, later], {"q": policy}, now=60.0) == early
    tie1, tie2 = call("t2", at=5.0, seq=2), call("t1", at=5.0, seq=1)
    assert both_select_call(a, [tie1, tie2], {"q": policy}, now=6.0) == tie2


def test_free_agent_picks_across_its_queues_only_calls_it_qualifies_for() -> None:
    policies = {
        "billing": QueuePolicy("billing", (Stage(0, 0, parse_expr("billing >= 5")),)),
        "sales": QueuePolicy("sales", language_required=True),
        "tech": QueuePolicy("tech"),
    }
    a = agent("alice", queues=("billing", "sales"), langs=("en",), billing=4, sales=8)
    calls = [
        call("b", at=1.0, queue="billing"),                 # needs billing >= 5: no
        call("s_es", at=2.0, queue="sales", lang="es"),     # Spanish, language required: no
        call("t", at=0.0, queue="tech", prio=9),            # a queue she does not serve: no
        call("s_en", at=3.0, queue="sales", lang="en_US"),  # yes
        call("s_late", at=4.0, queue="sales"),
    ]
    assert both_select_call(a, calls, policies, now=10.0).id == "s_en"


def test_call_skills_from_the_ivr_are_required_until_any_agent() -> None:
    policy = QueuePolicy("q", (Stage(0, 0), Stage(1, 60, any_agent=True)))
    net, tel = agent("net", idle=1.0, internet=5), agent("tel", idle=0.0, phone=5)
    c = call("c", skills=("internet",))
    assert both_select_agent(c, [net, tel], policy, now=10.0) == Offer("c", ("net",), 0)
    assert both_select_agent(c, [tel], policy, now=10.0) is None
    assert both_select_agent(c, [net, tel], policy, now=60.0) == Offer("c", ("tel",), 1)


def test_language_required() -> None:
    policy = QueuePolicy("q", language_required=True)
    en, es = agent("en", idle=0.0, langs=("en",)), agent("es", idle=5.0, langs=("es",))
    assert both_select_agent(call("c", lang="es_MX"), [en, es], policy, 9.0).agents == ("es",)
    assert both_select_agent(call("c", lang="fr"), [en, es], policy, 9.0) is None
    assert both_select_agent(call("c"), [en, es], policy, 9.0).agents == ("en",)
    loose = QueuePolicy("q")
    assert both_select_agent(call("c", lang="es"), [en, es], loose, 9.0).agents == ("en",)


@pytest.mark.parametrize(("strategy", "cursor", "expected"), [
    ("longest_idle", None, ("b",)),      # idle since 1.0
    ("fewest_calls", None, ("c",)),      # 0 calls
    ("best_skill", None, ("a",)),        # 2*9 + 1*2 = 20
    ("round_robin", None, ("a",)),
    ("round_robin", "a", ("b",)),
    ("round_robin", "b", ("c",)),
    ("round_robin", "c", ("a",)),        # wraps around
    ("round_robin", "bb", ("c",)),       # cursor on an agent no longer available
    ("ring_all", None, ("b", "c", "a")),  # every qualifying phone, longest idle first
])
def test_strategies(strategy: str, cursor: str | None, expected: tuple[str, ...]) -> None:
    policy = QueuePolicy("q", (Stage(0, 0, parse_expr("billing")),), strategy,
                         (("billing", 2), ("english", 1)))
    agents = [
        agent("a", idle=9.0, taken=5, billing=9, english=2),
        agent("b", idle=1.0, taken=3, billing=2, english=9),
        agent("c", idle=4.0, taken=0, billing=5),
        agent("d", idle=0.0, taken=0, sales=9),            # not qualified
        agent("e", idle=0.0, queues=("other",), billing=10),  # not a member
    ]
    offer = both_select_agent(call("x"), agents, policy, now=10.0, cursor=cursor)
    assert offer == Offer("x", expected, 0)


def test_overflow_to_another_queue_is_reported_whatever_the_agents() -> None:
    policy = QueuePolicy("q", (Stage(0, 0), Stage(1, 180, overflow=QueueDest(queue="cs"))))
    assert both_select_agent(call("c", at=0.0), [], policy, now=180.0) == Overflow(
        "c", QueueDest(queue="cs"), 1)


def test_router_follows_agents_and_calls_as_they_change() -> None:
    policy = QueuePolicy("q")
    router = Router({"q": policy})
    a, b = agent("a", idle=5.0), agent("b", idle=7.0)
    router.agent_available(a)
    router.agent_available(b)
    c = call("c")
    assert router.select_agent(c, 10.0) == Offer("c", ("a",), 0)
    router.agent_unavailable("a")          # reserved for another call
    assert router.select_agent(c, 10.0) == Offer("c", ("b",), 0)
    router.agent_available(agent("a", idle=20.0))  # back from wrap-up: idle since now
    assert router.select_agent(c, 21.0) == Offer("c", ("b",), 0)
    router.enqueue(c)
    router.enqueue(call("d", at=1.0))
    router.dequeue("c")                    # the caller hung up
    assert router.select_call(a, 21.0).id == "d"
    router.dequeue("d")
    assert router.select_call(a, 21.0) is None
    router.dequeue("nobody")
    router.agent_unavailable("nobody")
