"""Statistics managers trust: service level, ASA, AHT, abandon rate, occupancy.

Per queue, per agent and per interval for a time range, plus the real-time view
(callers waiting, longest wait, agents by state). The definitions are stated in
:mod:`callcenter.stats.compute` (and the README's "Statistics"); each queue's
service-level definition is its config's ``service_level``
(:class:`~callcenter.config.models.ServiceLevel`).

* :mod:`~callcenter.stats.records`: the plain records and the figures (summable).
* :mod:`~callcenter.stats.compute`: pure computations over the records.
* :mod:`~callcenter.stats.queries`: the SQLAlchemy reads (SQLite and PostgreSQL).
* :mod:`~callcenter.stats.window`: the range and interval from the command line.
* :mod:`~callcenter.stats.render`: table, CSV, JSON.
* :mod:`~callcenter.stats.read`: one report from a database URL (``callcenter stats``).
"""

from callcenter.stats.compute import build_report, realtime
from callcenter.stats.read import StatsError, collect
from callcenter.stats.records import (
    AgentTime,
    CallFigures,
    CallRecord,
    RealTime,
    Report,
    Row,
    StatusChange,
    WaitingRecord,
)
from callcenter.stats.render import render
from callcenter.stats.window import WindowError, window

__all__ = [
    "AgentTime",
    "CallFigures",
    "CallRecord",
    "RealTime",
    "Report",
    "Row",
    "StatsError",
    "StatusChange",
    "WaitingRecord",
    "WindowError",
    "build_report",
    "collect",
    "realtime",
    "render",
    "window",
]
