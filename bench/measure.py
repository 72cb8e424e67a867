"""The arithmetic of the IVR benchmark, apart from any process: which step is clean,
the highest clean rate of a ramp, medians and spreads over repeats, paired ratios.

One load step is noisy on 2 shared cores, and INVITE->200 is read on sipp's 4 ms
clock, so a single step sits at the edge of the "clean" criterion. The figures here
are therefore always over *repeats*: each repeat is one ramp of every IVR, the IVRs
interleaved at each rate, and each ratio is taken within a repeat (both sides saw the
same machine at the same minute) before the median and the spread over repeats.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["OTHER_LOAD_RETRY_CORES", "RESPONSE_LIMIT_MS", "Spread", "StepResult", "cpu_per_call", "highest_clean",
           "paired_ratios", "percentile", "spoiled", "verdict"]

#: A step is clean when no call failed and p99 INVITE->200 is under this.
RESPONSE_LIMIT_MS = 10.0
#: An unclean step during which other processes kept this many cores busy is run again
#: once (2 cores: a quarter of one is enough to push p99 over the 4 ms ticks).
OTHER_LOAD_RETRY_CORES = 0.25


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the value at or above ``pct`` % of the samples)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass(frozen=True)
class StepResult:
    """One sipp run at one rate against one IVR, and the CPU it cost."""

    ivr: str
    rate: int
    repeat: int
    calls: int
    ok: int
    failed: int
    invite_200_ms: tuple[float, ...]
    ivr_ms: tuple[float, ...]
    left_channels: int
    wall: float
    #: CPU seconds over the step (its calls and their drain) of Asterisk and of the
    #: FastAGI server process (idle unless the IVR dips through it).
    asterisk_cpu_s: float = math.nan
    fastagi_cpu_s: float = math.nan
    #: CPU seconds *other* processes used meanwhile (the cores are shared).
    other_cpu_s: float = math.nan

    @property
    def p99(self) -> float:
        return percentile(self.invite_200_ms, 99)

    @property
    def clean(self) -> bool:
        return (self.failed == 0 and self.left_channels == 0 and bool(self.invite_200_ms)
                and self.p99 < RESPONSE_LIMIT_MS)

    @property
    def other_cores(self) -> float:
        """How many cores other processes kept busy during the step, on average."""
        return self.other_cpu_s / self.wall if self.wall > 0 else math.nan

    @property
    def cpu_s(self) -> float:
        """The PBX side's CPU: Asterisk plus the FastAGI server."""
        return self.asterisk_cpu_s + self.fastagi_cpu_s


def spoiled(step: StepResult) -> bool:
    """Unclean while other processes were busy on the shared cores: a step to run again
    (once; the criterion itself is unchanged and the second result stands)."""
    return not step.clean and step.other_cores >= OTHER_LOAD_RETRY_CORES


def highest_clean(ramp: Iterable[StepResult]) -> int:
    """Highest rate of one IVR's ramp (one repeat) before its first unclean step; 0
    when the first step is not clean. Steps past the first unclean one do not count:
    a clean step above a failed one is luck, not capacity."""
    best = 0
    for step in sorted(ramp, key=lambda s: s.rate):
        if not step.clean:
            break
        best = step.rate
    return best


def cpu_per_call(steps: Iterable[StepResult], ivr: str, rates: set[int]) -> float:
    """CPU ms per completed call of ``ivr`` over its steps at ``rates`` (total CPU over
    total calls, so a long step weighs what it cost)."""
    chosen = [s for s in steps if s.ivr == ivr and s.rate in rates]
    calls = sum(s.ok for s in chosen)
    return math.nan if not calls else sum(s.cpu_s for s in chosen) * 1000 / calls


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over repeats."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        kept = [v for v in values if not math.isnan(v)]
        if not kept:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(kept), min(kept), max(kept), len(kept))

    def format(self, digits: int = 2, unit: str = "") -> str:
        if not self.n:
            return "-"
        f = f"{{:.{digits}f}}"
        return (f"{f.format(self.median)}{unit} "
                f"({f.format(self.low)}-{f.format(self.high)}, n={self.n})")


def paired_ratios(numerator: dict[int, float], denominator: dict[int, float]) -> list[float]:
    """Per-repeat ratios for the repeats both sides have (a zero denominator: no ratio)."""
    return [numerator[r] / denominator[r] for r in sorted(numerator.keys() & denominator.keys())
            if denominator[r] and not math.isnan(numerator[r] / denominator[r])]


def verdict(ratio: Spread, goal: float, *, at_least: bool) -> str:
    """Whether a ratio meets its goal over *every* repeat, misses it over every repeat,
    or is undecided (the range spans the goal: more repeats or a quieter machine)."""
    if not ratio.n:
        return "no figure"
    meets = (lambda v: v >= goal) if at_least else (lambda v: v <= goal)
    if meets(ratio.low) and meets(ratio.high):
        return "met"
    if not meets(ratio.low) and not meets(ratio.high):
        return "NOT met"
    return "undecided (the range spans the goal)"
