"""The compliance window's abandon accounting (callcenter.dialer.abandon)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.dialer.abandon import UK_WINDOW, US_WINDOW, AbandonLedger

HOUR = 3600.0
DAY = 86400.0


def test_the_rate_is_abandons_over_live_answers_in_the_window() -> None:
    ledger = AbandonLedger(US_WINDOW)
    assert ledger.rate(0.0) == 0.0
    for t in range(100):
        ledger = ledger.record(t * 60.0, live=1)
    ledger = ledger.record(6000.0, abandoned=2).record(6001.0, abandoned=1)
    assert ledger.totals(6001.0) == (100, 3)
    assert ledger.rate(6001.0) == pytest.approx(0.03)


def test_old_buckets_leave_the_window_and_the_ledger() -> None:
    ledger = AbandonLedger(UK_WINDOW).record(0.0, live=10, abandoned=5)
    ledger = ledger.record(20 * HOUR, live=100, abandoned=1)
    assert ledger.totals(23 * HOUR) == (110, 6)
    # one day later the first hour has left the 24 h window
    assert ledger.totals(DAY + HOUR + 1) == (100, 1)
    later = ledger.record(DAY + 2 * HOUR, live=1)
    assert [b[0] for b in later.buckets] == [20, 26]


def test_a_bucket_overlapping_the_window_counts_whole() -> None:
    ledger = AbandonLedger(DAY).record(30 * 60.0, live=10, abandoned=1)  # bucket 0
    assert ledger.totals(DAY + 45 * 60.0) == (10, 1)  # window starts inside bucket 0
    assert ledger.totals(DAY + HOUR) == (0, 0)


def test_bad_ledgers_and_records_are_refused() -> None:
    with pytest.raises(ValueError, match="bucket"):
        AbandonLedger(window=60.0, bucket=3600.0)
    with pytest.raises(ValueError, match="ascending"):
        AbandonLedger(buckets=((2, 1, 0), (1, 1, 0)))
    with pytest.raises(ValueError, match="counts must be >= 0"):
        AbandonLedger(buckets=((1, -1, 0),))
    # an answer at 59:59 abandoned at 01:00:01 lands in the next hour's bucket
    assert AbandonLedger().record(3599.5, live=1).record(3601.5, abandoned=1).totals(3602) == (1, 1)
    with pytest.raises(ValueError, match="counts must be >= 0"):
        AbandonLedger().record(0.0, live=-1)
    with pytest.raises(ValueError, match="before the ledger's last bucket"):
        AbandonLedger().record(7200.0, live=1).record(0.0, live=1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10 * DAY), st.booleans()), max_size=60))
def test_the_ledger_counts_what_an_exact_window_counts_and_at_most_a_bucket_more(
        outcomes: list[tuple[float, bool]]) -> None:
    outcomes.sort()
    ledger = AbandonLedger(window=2 * DAY)
    for at, abandoned in outcomes:
        ledger = ledger.record(at, live=1, abandoned=int(abandoned))
    now = outcomes[-1][0] if outcomes else 0.0
    exact = [a for t, a in outcomes if now - 2 * DAY < t <= now]
    wide = [a for t, a in outcomes if now - 2 * DAY - HOUR < t <= now]
    live, abandoned = ledger.totals(now)
    assert len(exact) <= live <= len(wide)
    assert sum(exact) <= abandoned <= sum(wide)
