"""A queue's ``record`` in YAML: off unless set, defaults, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config.models import Record
from tests.unit.test_checks import errors, find, lines, load

QUEUES = """\
skills: [sales]
queues:
  sales:
    skills: [sales]
    record: {value}
agents:
  alice: {extension: "1001", skills: {sales: 5}}
voicemail:
  general: {mailbox: "8000", name: General}
"""


def test_a_queue_is_not_recorded_unless_it_says_so(tmp_path: Path) -> None:
    loaded = load(tmp_path, queues=QUEUES.replace("    record: {value}\n", ""))
    assert loaded.config.queues["sales"].record is None


def test_an_empty_record_records_wav_kept_90_days(tmp_path: Path) -> None:
    record = load(tmp_path, queues=QUEUES.replace("{value}", "{}")).config.queues["sales"].record
    assert record == Record(enabled=True, format="wav", retention_days=90)


def test_a_queue_sets_format_retention_or_turns_it_off(tmp_path: Path) -> None:
    text = QUEUES.replace("{value}", "{enabled: false, format: gsm, retention_days: null}")
    record = load(tmp_path, queues=text).config.queues["sales"].record
    assert record == Record(enabled=False, format="gsm", retention_days=None)


@pytest.mark.parametrize(("value", "path", "message"), [
    ("{retention_days: 0}", "queues.sales.record.retention_days", "greater than or equal to 1"),
    ("{retention_days: 5000}", "queues.sales.record.retention_days", "less than or equal to 3650"),
    ("{format: mp3}", "queues.sales.record.format", "expected one of: wav, wav16, gsm"),
    ("{format: ../../etc/x}", "queues.sales.record.format", "expected one of: wav, wav16, gsm"),
    ("{enabled: yes}", "queues.sales.record.enabled", ""),
    ("{retention: 9}", "queues.sales.record", "unknown key 'retention'"),
    ("true", "queues.sales.record", ""),
])
def test_bad_values_are_located_errors(tmp_path: Path, value: str, path: str, message: str) -> None:
    found = errors(tmp_path, queues=QUEUES.replace("{value}", value))
    error = find(found, path)
    assert error.line == 5, lines(found)
    assert error.column >= 5, lines(found)
    assert message in error.message, error.message
