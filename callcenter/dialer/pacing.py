"""The Pacer: how many new calls a campaign places now, and which rule allowed them.

A pure function of what a real dialer sees at one instant (:class:`Snapshot`): each agent's
state and how long it has been in it, how long each call in progress has rung, and what
the campaign measured so far (outcome counts, the ring time to a live answer, talk and
wrap-up times, live answers and abandons over the compliance window). It never knows when
an agent will finish nor whether a call will answer, and it reads no clock: the ages in
the snapshot are the time. The dialer (I/O) builds a snapshot on each agent change and on
a tick, calls :meth:`Pacer.calls_to_place` and places that many calls; the returned
:class:`Decision` goes to the audit trail ("which rule allowed it").

* **progressive**: one call per free agent not already covered by a call in progress
  (ringing, or answered and waiting for an agent). It never abandons: every live answer
  has an agent.
* **predictive**: more, so that live answers land when agents free up. The model looks
  at a few horizons ``h`` (quantiles of the measured ring time to a live answer): the
  live answers expected by ``h`` (calls in progress, from how long each has rung; new
  calls, from the live-answer rate) against the agents expected free by ``h`` plus the
  2 s an answered contact may wait (free now, in wrap-up, on a call: each from the
  measured time distributions, conditioned on how long it has lasted). It places the
  most calls for which, at every horizon, the expected shortfall (answers with no agent:
  abandons; a normal approximation of the difference of two sums of Bernoullis) stays
  within a budget x the answers expected. That estimate misses abandons from timing
  within a horizon, so the budget is fed back from the measured abandon rate (it shrinks
  as the rate rises). Never fewer than progressive, never more than ``max_ratio`` x the
  agents free soon in all.
* **cold start**: before ``min_resolved`` calls, ``min_live`` live answers and
  ``min_handled`` finished calls were measured, predictive places what progressive does.
* **hard guard**: the abandon rate measured over the compliance window (abandons / live
  answers) falls back toward progressive from ``guard_from`` x the target and reaches
  progressive at the target: at or above the cap, never more than progressive.

Times are seconds. Nothing here does I/O (a unit test and ``bench/dialer_sim.py`` drive
the same code).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "AgentState",
    "AgentView",
    "CallView",
    "Decision",
    "Distribution",
    "Measured",
    "Mode",
    "Pacer",
    "PacingPolicy",
    "Rule",
    "Snapshot",
    "calls_to_place",
]


class Mode(str, Enum):
    """The campaign modes the Pacer decides for (preview and agentless do not pace by agents)."""

    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"


class AgentState(str, Enum):
    """An agent working the campaign: free, talking to a contact, or in wrap-up after one."""

    AVAILABLE = "available"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


class Rule(str, Enum):
    """Which rule set the number of calls: the audit trail's "why"."""

    PROGRESSIVE = "progressive"  # the campaign is progressive
    COLD_START = "cold_start"  # predictive, too few samples yet: progressive
    PREDICTIVE = "predictive"  # the model's number, within its abandon-risk bound
    MAX_RATIO = "max_ratio"  # the model wanted more: capped at max_ratio x agents free soon
    GUARD_BLEND = "guard_blend"  # measured abandon rate near the cap: part-way to progressive
    GUARD_PROGRESSIVE = "guard_progressive"  # measured rate at/above the cap: progressive


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


@dataclass(frozen=True)
class Distribution:
    """An empirical distribution of durations, as its CDF on a grid of ``step`` seconds.

    ``cdf[i]`` = P(X <= i x step), non-decreasing, ending at 1.0; between grid points the
    CDF is interpolated linearly. A dialer rebuilds it from its samples now and then (a
    table lookup per question keeps a decision in microseconds).
    """

    cdf: tuple[float, ...]
    step: float = 1.0
    samples: int = 0
    mean: float = 0.0

    def __post_init__(self) -> None:
        _check(self.step > 0 and math.isfinite(self.step), f"step must be > 0, not {self.step}")
        _check(len(self.cdf) >= 1 and self.cdf[-1] == 1.0, "cdf must end at 1.0")
        _check(all(0.0 <= a <= b <= 1.0 for a, b in zip((0.0, *self.cdf), self.cdf)),
               "cdf must be non-decreasing within [0, 1]")
        _check(self.samples >= 0, f"samples must be >= 0, not {self.samples}")
        _check(self.mean >= 0 and math.isfinite(self.mean), f"mean must be >= 0, not {self.mean}")

    @classmethod
    def from_samples(cls, samples: Iterable[float], step: float = 1.0) -> Distribution:
        """The empirical CDF of ``samples`` (durations >= 0; negative ones count as 0)."""
        xs = sorted(max(0.0, float(x)) for x in samples)
        _check(all(math.isfinite(x) for x in xs), "samples must be finite")
        if not xs:
            return cls((1.0,), step, 0, 0.0)
        n = len(xs)
        top = int(xs[-1] / step) + 1
        cdf = tuple(bisect_right(xs, i * step) / n for i in range(top)) + (1.0,)
        return cls(cdf, step, n, sum(xs) / n)

    @classmethod
    def point(cls, value: float, step: float = 1.0, samples: int = 1) -> Distribution:
        """Always ``value`` (a fixed wrap-up, a known ring timeout)."""
        return cls.from_samples([value] * max(1, samples), step)

    def at(self, x: float) -> float:
        """P(X <= x)."""
        if x <= 0:
            return self.cdf[0]
        pos = x / self.step
        i = int(pos)
        if i + 1 >= len(self.cdf):
            return 1.0
        lo = self.cdf[i]
        return lo + (self.cdf[i + 1] - lo) * (pos - i)

    def quantile(self, q: float) -> float:
        """The smallest grid time whose CDF reaches ``q`` (0 < q <= 1)."""
        for i, c in enumerate(self.cdf):
            if c >= q:
                return i * self.step
        return (len(self.cdf) - 1) * self.step  # pragma: no cover - cdf ends at 1.0

    def done_within(self, age: float, more: float) -> float:
        """P(X <= age + more | X > age): lasted ``age`` so far, ends in the next ``more``."""
        left = 1.0 - self.at(age)
        if left <= 1e-12:
            return 1.0  # longer than anything measured: due any moment
        return min(1.0, max(0.0, (self.at(age + more) - self.at(age)) / left))


@dataclass(frozen=True)
class AgentView:
    """One agent working the campaign: its state and for how long it has been in it."""

    state: AgentState
    for_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.for_s < math.inf:  # a snapshot builds many: no message unless bad
            raise ValueError(f"an agent's time in state must be >= 0, not {self.for_s}")


@dataclass(frozen=True)
class CallView:
    """One call in progress: how long it has rung; ``answered`` = live, waiting for an agent."""

    ringing_for: float = 0.0
    answered: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.ringing_for < math.inf:
            raise ValueError(f"a call's ring time must be >= 0, not {self.ringing_for}")


@dataclass(frozen=True)
class Measured:
    """What the campaign measured so far.

    Outcome counts are over resolved attempts (``failed``: the network refused, e.g. 503,
    counted with busy: both come back early). The ring-time distributions are per outcome
    (``to_live``: ring to a live answer; ``to_machine``: to a machine's answer; ``to_busy``:
    to busy or failure); ``talk`` and ``wrap_up`` are the agents' times. ``window_live``
    and ``window_abandoned`` are over the compliance window (30 days, or 24 h), for the
    guard.
    """

    live: int = 0
    machine: int = 0
    busy: int = 0
    no_answer: int = 0
    failed: int = 0
    to_live: Distribution | None = None
    to_machine: Distribution | None = None
    to_busy: Distribution | None = None
    talk: Distribution | None = None
    wrap_up: Distribution | None = None
    window_live: int = 0
    window_abandoned: int = 0

    def __post_init__(self) -> None:
        for name in ("live", "machine", "busy", "no_answer", "failed",
                     "window_live", "window_abandoned"):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0, not {getattr(self, name)}")

    @property
    def resolved(self) -> int:
        return self.live + self.machine + self.busy + self.no_answer + self.failed

    @property
    def abandon_rate(self) -> float:
        """Abandons / live answers over the compliance window (0 before the first answer)."""
        return self.window_abandoned / self.window_live if self.window_live else 0.0


@dataclass(frozen=True)
class Snapshot:
    """What the dialer sees now: the campaign's agents, its calls in progress, its measures."""

    agents: tuple[AgentView, ...] = ()
    calls: tuple[CallView, ...] = ()
    measured: Measured = field(default_factory=Measured)


@dataclass(frozen=True)
class PacingPolicy:
    """A campaign's pacing settings.

    ``abandon_target`` is the rule's cap as a fraction of live answers (US: 0.03).
    ``risk`` is the share of it a decision may plan to spend while nothing was abandoned;
    the budget halves ``risk_halvings`` times as the measured rate goes from 0 to the
    target (see :func:`_budget`). The guard blends toward progressive from ``guard_from``
    x the target. ``max_ratio`` caps the calls in progress per agent free soon.
    ``horizons`` are quantiles of the ring time to a live answer. ``ring_timeout`` is when
    an unanswered call gives up; ``patience`` how long an answered contact may wait for an
    agent before the safe-harbor message (2 s by the rule). ``min_*``: the samples a
    predictive campaign needs before it leaves its progressive cold start. The defaults
    were tuned by ``bench/dialer_sim.py`` (see bench/README.md).
    """

    mode: Mode = Mode.PREDICTIVE
    abandon_target: float = 0.03
    guard_from: float = 0.9
    risk: float = 0.3
    risk_halvings: float = 2.0
    max_ratio: float = 6.0
    ring_timeout: float = 20.0
    patience: float = 2.0
    horizons: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    min_resolved: int = 50
    min_live: int = 10
    min_handled: int = 10

    def __post_init__(self) -> None:
        _check(0 < self.abandon_target < 1, f"abandon_target must be in (0, 1), not {self.abandon_target}")
        _check(0 <= self.guard_from < 1, f"guard_from must be in [0, 1), not {self.guard_from}")
        _check(0 < self.risk <= 1, f"risk must be in (0, 1], not {self.risk}")
        _check(0 <= self.risk_halvings <= 30,
               f"risk_halvings must be in [0, 30], not {self.risk_halvings}")
        _check(1 <= self.max_ratio <= 100, f"max_ratio must be in [1, 100], not {self.max_ratio}")
        _check(self.ring_timeout > 0, f"ring_timeout must be > 0, not {self.ring_timeout}")
        _check(self.patience >= 0, f"patience must be >= 0, not {self.patience}")
        _check(len(self.horizons) > 0 and all(0 < q <= 1 for q in self.horizons),
               f"horizons are quantiles in (0, 1], not {self.horizons}")
        for name in ("min_resolved", "min_live", "min_handled"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1")


@dataclass(frozen=True)
class Decision:
    """How many calls to place now, and why (for the audit trail)."""

    calls: int
    rule: Rule
    progressive: int  # what progressive alone places now
    model: int | None  # the predictive model's number (before the guard and the cap)
    free_agents: int
    free_soon: float  # agents free now + expected free within the longest horizon
    in_progress: int
    cap: int  # max_ratio x free_soon, less the calls in progress
    abandon_rate: float  # measured over the compliance window
    guard_weight: float  # 1: the model as is; 0: progressive
    expected_shortfall: float  # the model's expected abandons at its worst horizon

    def explain(self) -> str:
        """One line for the audit trail."""
        return (f"{self.calls} call(s) by rule {self.rule.value}: {self.free_agents} agent(s) free, "
                f"{self.free_soon:.1f} free soon, {self.in_progress} call(s) in progress; "
                f"progressive {self.progressive}, model {self.model}, cap {self.cap}; "
                f"abandon rate {self.abandon_rate:.2%}, guard weight {self.guard_weight:.2f}, "
                f"expected shortfall {self.expected_shortfall:.3f}")


def _shortfall(mu: float, var: float) -> float:
    """E[max(0, D)] for D normal with mean ``mu`` and variance ``var``."""
    if var <= 1e-12:
        return max(0.0, mu)
    sigma = math.sqrt(var)
    z = mu / sigma
    pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2)))
    return sigma * pdf + mu * cdf


@dataclass(frozen=True)
class _Horizon:
    """Sums at one horizon ``h`` for everything that exists now (new calls excluded)."""

    answers: float  # expected live answers by h
    answers_var: float
    agents: float  # expected agents free by h + patience
    agents_var: float
    new_p: float  # P(a call placed now is answered live by h)


def _cold(m: Measured, policy: PacingPolicy) -> bool:
    handled = m.talk.samples if m.talk is not None else 0
    return (m.resolved < policy.min_resolved or m.live < policy.min_live
            or handled < policy.min_handled or m.to_live is None or m.to_live.samples == 0
            or m.wrap_up is None)


class _Model:
    """The predictive model's per-snapshot arithmetic (see the module's docstring)."""

    def __init__(self, snap: Snapshot, policy: PacingPolicy) -> None:
        m = snap.measured
        assert m.to_live is not None and m.talk is not None and m.wrap_up is not None
        self.m = m
        self.policy = policy
        n = m.resolved
        self.p_live = m.live / n
        self.p_machine = m.machine / n
        self.p_busy = (m.busy + m.failed) / n
        self.p_none = m.no_answer / n
        self.hs = tuple(sorted({m.to_live.quantile(q) for q in policy.horizons}))

    def _answers(self, r: float) -> list[float]:
        """P(a call that has rung ``r`` s is answered live within each horizon from now)."""
        m = self.m
        to_live = m.to_live
        assert to_live is not None
        live_r = to_live.at(r)
        u = self.p_live * (1.0 - live_r)
        if m.to_machine is not None:
            u += self.p_machine * (1.0 - m.to_machine.at(r))
        if m.to_busy is not None:
            u += self.p_busy * (1.0 - m.to_busy.at(r))
        if r < self.policy.ring_timeout:
            u += self.p_none
        if u <= 1e-12 or live_r >= 1.0:
            return [0.0] * len(self.hs)
        k = self.p_live / u
        return [min(1.0, k * (to_live.at(r + h) - live_r)) for h in self.hs]

    def _frees(self, agent: AgentView) -> list[float]:
        """P(a busy agent is free within each horizon + patience), from how long it has lasted.

        An agent on a call still has its wrap-up to come (its measured mean); one in wrap-up
        only the rest of it.
        """
        m = self.m
        assert m.talk is not None and m.wrap_up is not None
        if agent.state is AgentState.WRAP_UP:
            dist, age, shift = m.wrap_up, agent.for_s, self.policy.patience
        else:
            dist, age, shift = m.talk, agent.for_s, self.policy.patience - m.wrap_up.mean
        done = dist.at(age)
        left = 1.0 - done
        if left <= 1e-12:
            return [1.0] * len(self.hs)  # longer than anything measured: due any moment
        # dist.at() inlined: this runs for every busy agent at every decision
        cdf, step = dist.cdf, dist.step
        top = len(cdf) - 1
        out = []
        for h in self.hs:
            x = age + h + shift
            if x <= age:
                out.append(0.0)
                continue
            pos = x / step
            i = int(pos)
            c = 1.0 if i >= top else cdf[i] + (cdf[i + 1] - cdf[i]) * (pos - i)
            out.append((c - done) / left)
        return out

    def horizons(self, snap: Snapshot) -> list[_Horizon]:
        m = self.m
        assert m.to_live is not None
        k = len(self.hs)
        answers, answers_var = [0.0] * k, [0.0] * k
        agents, agents_var = [0.0] * k, [0.0] * k
        waiting = 0
        seen: dict[float, list[float]] = {}  # calls placed together have rung as long
        for c in snap.calls:
            if c.answered:
                waiting += 1
                continue
            qs = seen.get(c.ringing_for)
            if qs is None:
                qs = seen[c.ringing_for] = self._answers(c.ringing_for)
            for i, q in enumerate(qs):
                answers[i] += q
                answers_var[i] += q * (1.0 - q)
        free = 0
        for a in snap.agents:
            if a.state is AgentState.AVAILABLE:
                free += 1
                continue
            for i, f in enumerate(self._frees(a)):
                agents[i] += f
                agents_var[i] += f * (1.0 - f)
        return [_Horizon(waiting + answers[i], answers_var[i], free + agents[i], agents_var[i],
                         self.p_live * m.to_live.at(h))
                for i, h in enumerate(self.hs)]


def _worst(hs: list[_Horizon], n: int, budget: float) -> tuple[float, bool]:
    """With ``n`` new calls: the largest expected shortfall, and whether all are in budget."""
    worst, ok = 0.0, True
    for h in hs:
        answers = h.answers + n * h.new_p
        s = _shortfall(answers - h.agents,
                       h.answers_var + n * h.new_p * (1 - h.new_p) + h.agents_var)
        worst = max(worst, s)
        if s > budget * answers + 1e-12:
            ok = False
    return worst, ok


def _budget(policy: PacingPolicy, rate: float) -> float:
    """The expected abandons one decision may plan for, per live answer expected.

    ``risk`` x the target with no abandon measured, halving ``risk_halvings`` times on the
    way from 0 to the target: the model's own estimate misses abandons that come from
    timing within a horizon (more of them the more agents there are), and the measured
    rate, cumulative over the window, corrects it (an integral feedback) before the hard
    guard has to.
    """
    return policy.risk * policy.abandon_target * 2.0 ** (-policy.risk_halvings * rate
                                                         / policy.abandon_target)


def calls_to_place(snap: Snapshot, policy: PacingPolicy) -> Decision:
    """How many new calls to place now (never negative), and which rule allowed them."""
    free = sum(1 for a in snap.agents if a.state is AgentState.AVAILABLE)
    in_progress = len(snap.calls)
    progressive = max(0, free - in_progress)
    rate = snap.measured.abandon_rate

    def plain(rule: Rule, free_soon: float = float(free), cap: int = progressive,
              model: int | None = None, weight: float = 0.0, worst: float = 0.0) -> Decision:
        return Decision(progressive, rule, progressive, model, free, free_soon, in_progress,
                        cap, rate, weight, worst)

    if policy.mode is Mode.PROGRESSIVE:
        return plain(Rule.PROGRESSIVE)
    if _cold(snap.measured, policy):
        return plain(Rule.COLD_START)

    model = _Model(snap, policy)
    hs = model.horizons(snap)
    free_soon = hs[-1].agents  # free now + expected free by the longest horizon
    # Never more calls in progress than max_ratio x the agents free soon (at least progressive:
    # free_soon >= free and max_ratio >= 1).
    cap = max(progressive, math.floor(policy.max_ratio * free_soon + 1e-9) - in_progress)
    budget = _budget(policy, rate)
    # The most new calls n such that every n' <= n keeps each horizon within budget: a scan
    # from 0 (n stays small: a decision tops up, it is taken on every change), so adding a
    # free agent (which lowers every shortfall) can only raise it.
    worst, ok = _worst(hs, 0, budget)
    n = 0
    if ok:
        while n <= cap:  # one past the cap, to tell the audit trail the cap bound
            w, ok = _worst(hs, n + 1, budget)
            if not ok:
                break
            n, worst = n + 1, w
    wanted = max(progressive, n)
    capped = min(wanted, cap)

    target = policy.abandon_target
    start = policy.guard_from * target
    if rate >= target:
        weight = 0.0
    elif rate <= start:
        weight = 1.0
    else:
        weight = (target - rate) / (target - start)
    calls = progressive + math.floor(weight * (capped - progressive) + 1e-9)

    if weight == 0.0:
        rule = Rule.GUARD_PROGRESSIVE
    elif calls < capped:
        rule = Rule.GUARD_BLEND
    elif n > cap:
        rule = Rule.MAX_RATIO
    else:
        rule = Rule.PREDICTIVE
    return Decision(calls, rule, progressive, n, free, free_soon, in_progress, cap, rate,
                    weight, worst)


@dataclass(frozen=True)
class Pacer:
    """A campaign's pacer: its policy, applied to each snapshot the dialer takes."""

    policy: PacingPolicy = field(default_factory=PacingPolicy)

    def calls_to_place(self, snap: Snapshot) -> Decision:
        return calls_to_place(snap, self.policy)
