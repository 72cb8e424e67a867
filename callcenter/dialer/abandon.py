"""Abandon-rate accounting over a campaign's compliance window (pure).

The rule counts, per campaign, the live answers and the abandons among them (a live answer
with no agent within 2 s, which hears the safe-harbor message) over a sliding window: 30
days under the US rule (at most 3 % of live answers), 24 h under the UK-style rule. The
dialer keeps an :class:`AbandonLedger` of counts per bucket (an hour by default), records
each outcome as it happens and hands the totals to the Pacer (``Measured.window_live``,
``Measured.window_abandoned``). A bucket that overlaps the window counts whole, so the
rate may include up to one bucket of older history, never less than the window: a guard
fed by it falls back no later than the exact rate would say.

Times are seconds on the caller's clock; nothing here reads one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["UK_WINDOW", "US_WINDOW", "AbandonLedger"]

US_WINDOW = 30 * 86400.0
UK_WINDOW = 86400.0


@dataclass(frozen=True)
class AbandonLedger:
    """Live answers and abandons per bucket; ``buckets``: (index, live, abandoned), ascending."""

    window: float = US_WINDOW
    bucket: float = 3600.0
    buckets: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        if not (0 < self.bucket <= self.window < math.inf):
            raise ValueError(f"need 0 < bucket ({self.bucket}) <= window ({self.window})")
        if any(b[0] >= a[0] for a, b in zip(self.buckets[1:], self.buckets)):
            raise ValueError("buckets must be ascending by index, one per index")
        # no "abandons <= live answers" per bucket: the 2 s after an answer may cross into
        # the next bucket
        if any(live < 0 or abandoned < 0 for _, live, abandoned in self.buckets):
            raise ValueError("a bucket's counts must be >= 0")

    def record(self, at: float, *, live: int = 0, abandoned: int = 0) -> AbandonLedger:
        """The ledger with ``live`` answers and ``abandoned`` abandons more at time ``at``.

        An abandon is a live answer too: a dialer records ``live=1`` when the contact
        answers and ``abandoned=1`` when the 2 s pass with no agent. Buckets that left the
        window are dropped.
        """
        if live < 0 or abandoned < 0:
            raise ValueError(f"counts must be >= 0, not live={live} abandoned={abandoned}")
        index = math.floor(at / self.bucket)
        oldest = self._oldest(at)
        kept = [b for b in self.buckets if b[0] >= oldest]
        if kept and kept[-1][0] == index:
            _, l0, a0 = kept[-1]
            kept[-1] = (index, l0 + live, a0 + abandoned)
        elif kept and kept[-1][0] > index:
            raise ValueError(f"time {at} is before the ledger's last bucket")
        else:
            kept.append((index, live, abandoned))
        return AbandonLedger(self.window, self.bucket, tuple(kept))

    def totals(self, now: float) -> tuple[int, int]:
        """(live answers, abandons) in the window ending ``now``."""
        oldest = self._oldest(now)
        live = abandoned = 0
        for index, l0, a0 in self.buckets:
            if index >= oldest:
                live += l0
                abandoned += a0
        return live, abandoned

    def rate(self, now: float) -> float:
        """Abandons / live answers in the window (0 before the first live answer)."""
        live, abandoned = self.totals(now)
        return abandoned / live if live else 0.0

    def _oldest(self, now: float) -> int:
        """The first bucket that overlaps (now - window, now]."""
        return math.floor((now - self.window) / self.bucket)
