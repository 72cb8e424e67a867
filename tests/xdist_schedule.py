"""How ``pytest -n 4 --dist loadfile`` spreads the suite over its workers.

Most tests wait on Asterisk, so four workers on two cores finish far sooner than
one. Three rules on top of xdist's ``loadfile`` (each test file whole on one worker:
a file's tests share its fixtures and expectations):

- the slowest files start first (:data:`SLOW_FIRST`, measured with ``--durations``),
  so no long file starts last and holds the run up alone;
- the tests that measure speed or timeouts (:data:`TIMING`) run as one unit, on one
  worker, queued last, when the other workers are finishing and the load is lowest;
- everything else keeps its collection order.

The pure order is :func:`order`; :func:`make_scheduler` wraps xdist's scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The files that take longest, slowest first: seconds per file (setup, call and
#: teardown summed from ``--durations=0``) in a ``-n 4`` run of 2026-12-01 on 2 shared
#: cores, in the comments. The rest take under 20 s each.
SLOW_FIRST: tuple[str, ...] = (
    "tests/integration/test_queue_callback.py",  # 138
    "tests/integration/test_queue_transfer_external.py",  # ~150 (its own carrier, node)
    "tests/integration/test_queue_after_hours.py",  # ~115
    "tests/integration/test_dialer_agentless.py",  # 57-75 (alone, -n 0)
    "tests/integration/test_queue_transfer.py",  # 96
    "tests/integration/test_supervision.py",  # 84
    "tests/integration/test_multinode.py",  # 80
    "tests/integration/test_dialer_two_processes.py",  # 58 alone (-n 0): carrier, 2 nodes
    "tests/integration/test_queue_chaos.py",  # 73
    "tests/integration/test_queue_router.py",  # 70
    "tests/integration/test_queue_unavailable.py",  # 66
    "tests/integration/test_queue_announcements.py",  # 56
    "tests/integration/test_dialer_state.py",  # ~56 (alone; a 20 s call to its end)
    "tests/unit/test_bench.py",  # 49
    "tests/integration/test_ivr_calls.py",  # 47
    "tests/integration/test_stats.py",  # 35
    "tests/integration/test_queue_events.py",  # 32
    "tests/integration/test_dialer_progressive.py",  # 31 (measured alone, -n 0)
    "tests/integration/test_dialer_machine_message.py",  # 33 (alone)
    "tests/integration/test_dialer_rules_calls.py",  # 30 (alone)
    "tests/integration/test_dialer_predictive.py",  # 17-29 (alone)
    "tests/integration/test_dialer_preview.py",  # ~20 (alone)
    "tests/integration/test_dialer_handoff.py",  # ~25 (alone; its own carrier, node)
    "tests/integration/test_carrier.py",  # 30
    "tests/integration/test_web_live.py",  # 27
)

#: Files whose tests assert wall-clock bounds (a reply within 1 s, a fuzz run within
#: its deadline): kept together on one worker, last.
TIMING: tuple[str, ...] = (
    "tests/unit/test_agi_server.py",
    "tests/unit/test_config_fuzz.py",
)

#: The scope name of the :data:`TIMING` unit.
TIMING_SCOPE = "TIMING"


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its file, or :data:`TIMING_SCOPE`."""
    path = nodeid.split("::", 1)[0]
    return TIMING_SCOPE if path in TIMING else path


def order(nodeids: Iterable[str]) -> list[str]:
    """The tests in the order their units should be handed out (stable otherwise)."""

    def rank(nodeid: str) -> int:
        scope = scope_of(nodeid)
        if scope == TIMING_SCOPE:
            return len(SLOW_FIRST) + 1
        if scope in SLOW_FIRST:
            return SLOW_FIRST.index(scope)
        return len(SLOW_FIRST)

    return sorted(nodeids, key=rank)


def make_scheduler(config: Any, log: Any) -> Any:
    """xdist's ``loadfile`` scheduler with the order and grouping above."""
    from xdist.scheduler import LoadFileScheduling

    class OrderedLoadFile(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

        def schedule(self) -> None:
            if self.collection is None and self._check_nodes_have_same_collection():
                # xdist fills its work queue (an OrderedDict, scope -> tests) in
                # collection order, or by size; a key already present keeps its place.
                # So the units are put in first, in our order. (The collections
                # themselves must stay as the workers hold them: xdist sends indexes.)
                collection = next(iter(self.registered_collections.values()))
                for nodeid in order(collection):
                    self.workqueue.setdefault(scope_of(nodeid), {})
            super().schedule()

    return OrderedLoadFile(config, log)
