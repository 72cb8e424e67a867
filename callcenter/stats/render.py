"""A report as a table for people, CSV for spreadsheets, JSON for programs (pure).

Every format carries the same columns (:func:`columns`); CSV and JSON give seconds and
fractions (0..1) as numbers, the table gives ``12.3s``, ``h:mm:ss`` and percentages.
CSV cells starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) are
prefixed with ``'``, so a spreadsheet shows them instead of running them as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from callcenter.config.models import ServiceLevel
from callcenter.stats.records import RealTime, Report, Row

__all__ = ["FORMATS", "columns", "neutralise", "render", "report_json"]

FORMATS = ("table", "csv", "json")

Kind = Literal["text", "count", "seconds", "duration", "rate"]
Column = tuple[str, Kind, Callable[[Row], Any]]


def _time(attribute: str) -> Callable[[Row], Any]:
    return lambda row: getattr(row.time, attribute) if row.time is not None else None


_CALLS: dict[str, Column] = {c[0]: c for c in (
    ("offered", "count", lambda r: r.calls.offered),
    ("answered", "count", lambda r: r.calls.answered),
    ("abandoned", "count", lambda r: r.calls.abandoned),
    ("short_abandoned", "count", lambda r: r.calls.short_abandoned),
    ("overflowed", "count", lambda r: r.calls.unanswered_other),
    ("waiting", "count", lambda r: r.calls.open),
    ("service_level", "rate", lambda r: r.calls.service_level),
    ("asa", "seconds", lambda r: r.calls.asa),
    ("avg_talk", "seconds", lambda r: r.calls.average_talk),
    ("avg_wrap_up", "seconds", lambda r: r.calls.average_wrap_up),
    ("aht", "seconds", lambda r: r.calls.aht),
    ("abandon_rate", "rate", lambda r: r.calls.abandon_rate),
    ("longest_wait", "seconds", lambda r: r.longest_wait),
    ("staffed", "duration", _time("staffed")),
    ("on_call", "duration", _time("on_call")),
    ("wrap_up", "duration", _time("wrap_up")),
    ("paused", "duration", _time("paused")),
    ("occupancy", "rate", lambda r: r.time.occupancy if r.time is not None else None),
)}

_VIEWS: dict[str, tuple[str, ...]] = {
    "queue": ("offered", "answered", "abandoned", "short_abandoned", "overflowed", "waiting",
              "service_level", "asa", "aht", "abandon_rate", "longest_wait"),
    "agent": ("answered", "avg_talk", "avg_wrap_up", "aht", "staffed", "on_call", "wrap_up",
              "paused", "occupancy"),
    "interval": ("offered", "answered", "abandoned", "short_abandoned", "service_level",
                 "asa", "aht", "abandon_rate", "occupancy"),
}


def columns(by: str) -> list[Column]:
    """The columns of a report grouped *by* ``queue``, ``agent`` or ``interval``."""
    return [(by, "text", lambda r: r.key), *(_CALLS[name] for name in _VIEWS[by])]


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP's CSV injection)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _number(kind: Kind, value: Any) -> Any:
    if value is None or kind in ("text", "count"):
        return value
    return round(value, 4 if kind == "rate" else 3)


def _human(kind: Kind, value: Any) -> str:
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return f"{value:.1f}s"
    if kind == "duration":
        seconds = round(value)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)


def _definitions(rules: Mapping[str, ServiceLevel]) -> dict[str, dict[str, Any]]:
    return {queue: rule.model_dump() for queue, rule in sorted(rules.items())}


def render(report: Report, fmt: str, rules: Mapping[str, ServiceLevel]) -> str:
    """*report* as ``table``, ``csv`` or ``json`` text (ending in a newline)."""
    cols = columns(report.by)
    rows = [*report.rows, report.total]
    if fmt == "json":
        return json.dumps(report_json(report, rules), indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 (a cell holding a CR is quoted)
        writer.writerow([name for name, _, _ in cols])
        for row in rows:
            writer.writerow([neutralise(str(_number(kind, get(row)) if get(row) is not None
                                            else "")) for _, kind, get in cols])
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    cells = [[name for name, _, _ in cols],
             *([_human(kind, get(row)) for _, kind, get in cols] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    lines = [f"{report.by} statistics from {report.start.isoformat()} to {report.end.isoformat()}"]
    for n, line in enumerate(cells):
        if n == len(cells) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    lines.append(_definition_line(rules))
    if report.realtime is not None:
        lines.extend(_realtime_lines(report.realtime))
    return "\n".join(lines) + "\n"


def report_json(report: Report, rules: Mapping[str, ServiceLevel]) -> dict[str, Any]:
    """*report* as the JSON format's object (``callcenter stats --format json`` prints it,
    ``GET /api/v1/stats`` answers it)."""
    cols = columns(report.by)
    return {
        "from": report.start.isoformat(), "to": report.end.isoformat(), "by": report.by,
        "rows": [{name: _number(kind, get(row)) for name, kind, get in cols}
                 for row in report.rows],
        "total": {name: _number(kind, get(report.total)) for name, kind, get in cols},
        "service_level": _definitions(rules),
        "now": _realtime_json(report.realtime) if report.realtime else None,
    }


def _definition_line(rules: Mapping[str, ServiceLevel]) -> str:
    """The service-level definitions, queues sharing one named together."""
    groups: dict[str, list[str]] = {}
    for queue, rule in sorted(rules.items()):
        counted = "counted" if rule.count_short_abandons else "not counted"
        text = f"answered within {rule.threshold}s, abandons under {rule.short_abandon}s {counted}"
        groups.setdefault(text, []).append(queue)
    return "service level: " + ("; ".join(f"{text} ({', '.join(queues)})"
                                          for text, queues in groups.items())
                                or "no queue configured")


def _realtime_json(now: RealTime) -> dict[str, Any]:
    return {"at": now.at.isoformat(), "waiting": now.waiting,
            "longest_wait": {q: round(w, 3) for q, w in now.longest_wait.items()},
            "agents": now.agents}


def _realtime_lines(now: RealTime) -> list[str]:
    waiting = ", ".join(f"{q} {n} (longest {now.longest_wait[q]:.0f}s)"
                        for q, n in now.waiting.items()) or "no queue"
    agents = ", ".join(f"{status} {n}" for status, n in now.agents.items())
    return [f"now ({now.at.isoformat(timespec='seconds')}): waiting: {waiting}",
            f"agents: {agents}"]
