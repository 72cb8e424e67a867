"""A queue's ``service_level`` in YAML: defaults, and located errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config.models import ServiceLevel
from tests.unit.test_checks import errors, find, lines, load

QUEUES = """\
skills: [sales]
queues:
  sales:
    skills: [sales]
    service_level: {value}
agents:
  alice: {extension: "1001", skills: {sales: 5}}
voicemail:
  general: {mailbox: "8000", name: General}
"""


def test_defaults_are_20_seconds_and_short_abandons_under_5_not_counted(tmp_path: Path) -> None:
    loaded = load(tmp_path, queues=QUEUES.replace("    service_level: {value}\n", ""))
    assert loaded.config.queues["sales"].service_level == ServiceLevel(
        threshold=20, short_abandon=5, count_short_abandons=False)


def test_a_queue_sets_its_own_definition(tmp_path: Path) -> None:
    text = QUEUES.replace("{value}", "{threshold: 30, short_abandon: 0, count_short_abandons: true}")
    rule = load(tmp_path, queues=text).config.queues["sales"].service_level
    assert (rule.threshold, rule.short_abandon, rule.count_short_abandons) == (30, 0, True)


@pytest.mark.parametrize(("value", "path", "message"), [
    ("{threshold: 0}", "queues.sales.service_level.threshold", "greater than or equal to 1"),
    ("{threshold: 10, short_abandon: 10}", "queues.sales.service_level.short_abandon",
     "short_abandon (10 s) must be below threshold (10 s)"),
    ("{short_abandon: -1}", "queues.sales.service_level.short_abandon", "greater than or equal to 0"),
    ("{treshold: 20}", "queues.sales.service_level", "unknown key 'treshold' (did you mean 'threshold'?)"),
    ("20", "queues.sales.service_level", ""),
])
def test_bad_values_are_located_errors(tmp_path: Path, value: str, path: str, message: str) -> None:
    found = errors(tmp_path, queues=QUEUES.replace("{value}", value))
    error = find(found, path)
    assert error.line == 5, lines(found)
    assert message in error.message, error.message
