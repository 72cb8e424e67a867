"""Routing decision cost: the indexed Router against the plain scan, in one run.

A synthetic center: 10,000 agents, 200 skills (each agent 4-8 skills at levels 1-10, one or
two languages), 20 queues of ~2,500 members each with a skill expression, preferred
skills, a strategy (longest_idle, fewest_calls, round_robin, best_skill) and relax steps;
200 callers waiting with priorities, IVR skills, languages and waits from 0 to 150 s (so
every relax stage is in play). Every agent is available: the scan's worst case, and the
state right after a shift starts.

Measured, each decision timed on its own (``perf_counter_ns``), on the same inputs:

* call arrives -> ``Router.select_agent`` vs ``decide.select_agent`` over the 10,000 agents;
* agent frees up -> ``Router.select_call`` vs ``decide.select_call`` over the waiting calls;
* an agent state change (``agent_unavailable`` + ``agent_available``): the index upkeep.

Every Router answer is checked against the scan's (the run fails on any difference).
Goal (issue §7): agent selection p99 <= 100 us and >= 100x faster than the scan.

    python bench/routing.py [--agents 10000] [--skills 200] [--calls 200] [--decisions 2000]
                            [--scans 150] [--seed 1]

Pure CPU, no network; bounded by the decision counts (about 15 s with the defaults).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable

from callcenter.config.models import VoicemailDest
from callcenter.routing.decide import Offer, select_agent, select_call
from callcenter.routing.expr import parse_expr
from callcenter.routing.index import Router
from callcenter.routing.policy import AgentView, QueuePolicy, Stage, WaitingCall

STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "best_skill")
LANGUAGES = ("en", "es", "fr", "de")
QUEUES = 20
NOW = 10_000.0


def build(rng: random.Random, n_agents: int, n_skills: int, n_calls: int) -> tuple[
        dict[str, QueuePolicy], list[AgentView], list[WaitingCall]]:
    skills = [f"s{i:03d}" for i in range(n_skills)]
    policies: dict[str, QueuePolicy] = {}
    queue_skills: dict[str, list[str]] = {}
    for q in range(QUEUES):
        name = f"q{q:02d}"
        own = rng.sample(skills, 12)
        queue_skills[name] = own
        a, b, c, d = own[:4]
        requires = [
            f"{a} >= 5 and ({b} or {c} >= 7)",
            f"{a} >= 3 or {b} >= 6",
            f"({a} or {b}) and not {d} >= 8",
            f"{a} >= 2 and {b} >= 2",
        ][q % 4]
        policies[name] = QueuePolicy(
            name,
            (Stage(0, 0, parse_expr(requires)),
             Stage(1, 30, parse_expr(f"{a} >= 1 or {b} >= 1")),
             Stage(2, 90, any_agent=True),
             Stage(3, 140, overflow=VoicemailDest(voicemail="general"))),
            STRATEGIES[q % len(STRATEGIES)],
            ((a, 2), (b, 1)),
            language_required=q % 3 == 0,
        )
    agents = []
    for i in range(n_agents):
        own = {s: rng.randint(1, 10) for s in rng.sample(skills, rng.randint(4, 8))}
        # members: agents having one of the queue's skills (as memberships() does)
        queues = frozenset(q for q, qs in queue_skills.items() if any(s in own for s in qs))
        langs = frozenset(rng.sample(LANGUAGES, rng.randint(1, 2)))
        agents.append(AgentView(f"agent{i:05d}", own, queues, langs,
                                idle_since=rng.uniform(0, NOW), calls_taken=rng.randint(0, 40)))
    calls = []
    for i in range(n_calls):
        q = f"q{rng.randrange(QUEUES):02d}"
        ivr = (rng.choice(queue_skills[q][:3]),) if rng.random() < 0.3 else ()
        calls.append(WaitingCall(f"call{i:04d}", q, NOW - rng.uniform(0, 150),
                                 rng.choice((0, 0, 0, 5, 10)), ivr, rng.choice(LANGUAGES), i))
    return policies, agents, calls


def timed(fn: Callable[[], object]) -> tuple[int, object]:
    start = time.perf_counter_ns()
    result = fn()
    return time.perf_counter_ns() - start, result


def pct(samples: list[int], q: float) -> float:
    """Percentile in microseconds (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def report(name: str, fast: list[int], scan: list[int] | None) -> tuple[float, float]:
    line = f"{name:<26} router p50 {pct(fast, .5):8.1f} us  p99 {pct(fast, .99):8.1f} us"
    if scan is None:
        print(line)
        return 0.0, 0.0
    ratio50 = pct(scan, .5) / pct(fast, .5)
    ratio99 = pct(scan, .99) / pct(fast, .99)
    print(f"{line}   scan p50 {pct(scan, .5):9.1f} us  p99 {pct(scan, .99):9.1f} us"
          f"   ratio p50 {ratio50:6.0f}x  p99 {ratio99:6.0f}x")
    return ratio50, ratio99


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--skills", type=int, default=200)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--decisions", type=int, default=2000, help="timed Router decisions")
    ap.add_argument("--scans", type=int, default=150, help="timed scan decisions (slow)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)

    policies, agents, calls = build(rng, args.agents, args.skills, args.calls)
    t0 = time.perf_counter()
    router = Router(policies)
    for a in agents:
        router.agent_available(a)
    enqueue = []
    for c in calls:
        enqueue.append(timed(lambda c=c: router.enqueue(c))[0])
    print(f"{len(agents)} agents, {args.skills} skills, {len(policies)} queues "
          f"(avg {sum(len(a.queues) for a in agents) / len(policies):.0f} members), "
          f"{len(calls)} waiting calls; index built in {time.perf_counter() - t0:.2f} s")
    # A long-running router keeps its index for hours: move it out of the collector's
    # generations so a collection does not walk 10,000 agents inside a decision.
    gc.collect()
    gc.freeze()
    try:
        return _measure(args, rng, router, policies, agents, calls, enqueue)
    finally:
        gc.unfreeze()


def _measure(args: argparse.Namespace, rng: random.Random, router: Router,
             policies: dict[str, QueuePolicy], agents: list[AgentView],
             calls: list[WaitingCall], enqueue: list[int]) -> int:

    by_id = {a.id: a for a in agents}
    fast_agent, fast_call, scan_agent, scan_call, upkeep = [], [], [], [], []
    picks = [rng.choice(calls) for _ in range(args.decisions)]
    frees = [rng.choice(agents) for _ in range(args.decisions)]
    answers: list[tuple[object, object, str | None]] = []
    offered = 0
    # Pass 1: the Router alone (the scan in between would evict its data from the caches).
    for c, a in zip(picks, frees):
        cursor = router.cursors.get(c.queue)
        ns, fast = timed(lambda c=c: router.select_agent(c, NOW))
        fast_agent.append(ns)
        ns, fast_c = timed(lambda a=a: router.select_call(a, NOW))
        fast_call.append(ns)
        answers.append((fast, fast_c, cursor))
        if isinstance(fast, Offer):
            offered += 1
            router.offered(c.queue, fast.agents[0])
        # the agent taking a call and coming back: the index follows incrementally
        agent = by_id[a.id]
        start = time.perf_counter_ns()
        router.agent_unavailable(agent.id)
        router.agent_available(agent)
        upkeep.append(time.perf_counter_ns() - start)
    # Pass 2: the scan on the same inputs (round-robin cursor as the Router had it).
    for (c, a), (fast, fast_c, cursor) in list(zip(zip(picks, frees), answers))[:args.scans]:
        ns, scanned = timed(lambda c=c, cursor=cursor: select_agent(
            c, agents, policies[c.queue], NOW, cursor))
        scan_agent.append(ns)
        if scanned != fast:
            print(f"MISMATCH select_agent {c}: router {fast}, scan {scanned}")
            return 1
        ns, scanned_c = timed(lambda a=a: select_call(a, calls, policies, NOW))
        scan_call.append(ns)
        if scanned_c != fast_c:
            print(f"MISMATCH select_call {a.id}: router {fast_c}, scan {scanned_c}")
            return 1

    print(f"{args.decisions} decisions each way ({args.scans} also by the scan, all identical;"
          f" {offered} offers, the rest wait or overflow)")
    r50, r99 = report("call arrives (agent)", fast_agent, scan_agent)
    report("agent frees (call)", fast_call, scan_call)
    report("agent state change", upkeep, None)
    report("call enqueued (compiles)", enqueue, None)
    p99 = pct(fast_agent, .99)
    ok = p99 <= 100 and r50 >= 100 and r99 >= 100
    print(f"goal: agent selection p99 <= 100 us and >= 100x the scan: "
          f"p99 {p99:.1f} us, ratio p50 {r50:.0f}x / p99 {r99:.0f}x -> {'met' if ok else 'MISSED'}")
    print(f"(mean scan {statistics.mean(scan_agent) / 1000:.0f} us over {len(agents)} agents)")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
