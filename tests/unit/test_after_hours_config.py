"""``when_unavailable.take_message`` in the config: ``true`` or a mapping, only with a
schedule and callbacks, every mistake located (file:line:column)."""

from __future__ import annotations

from pathlib import Path

from callcenter.config.models import TakeMessage
from tests.unit.test_checks import errors, lines, load
from tests.unit.test_routing_config import queues

SCHEDULES = """\
    schedules:
      office:
        hours: {mon-fri: "08:00-20:00"}
    """

CALLBACK = 'callback: {dial: "PJSIP/{number}@trunk"}'


def test_true_takes_a_message_with_every_default(tmp_path: Path) -> None:
    text = queues(f"""\
sales:
  skills: [sales]
  {CALLBACK}
  when_unavailable: {{schedule: office, take_message: true}}
""")
    rule = load(tmp_path, queues=text, schedules=SCHEDULES).config.queues["sales"]\
        .when_unavailable
    assert rule is not None
    assert rule.take_message == TakeMessage(prompt="vm-intro", max_seconds=120,
                                            max_silence=5, format="wav")


def test_a_mapping_sets_each_key(tmp_path: Path) -> None:
    text = queues(f"""\
sales:
  skills: [sales]
  {CALLBACK}
  when_unavailable:
    schedule: office
    take_message: {{prompt: custom/after-hours, max_seconds: 60, max_silence: 3,
                   format: wav16}}
""")
    rule = load(tmp_path, queues=text, schedules=SCHEDULES).config.queues["sales"]\
        .when_unavailable
    assert rule is not None
    assert rule.take_message == TakeMessage(prompt="custom/after-hours", max_seconds=60,
                                            max_silence=3, format="wav16")


def test_no_key_takes_no_message(tmp_path: Path) -> None:
    text = queues("sales: {skills: [sales], when_unavailable: {schedule: office}}")
    rule = load(tmp_path, queues=text, schedules=SCHEDULES).config.queues["sales"]\
        .when_unavailable
    assert rule is not None and rule.take_message is None


def test_without_a_schedule_or_callbacks_it_is_refused_where_it_is_written(
        tmp_path: Path) -> None:
    text = queues(f"""\
sales:
  skills: [sales]
  when_unavailable:
    take_message: true
support:
  {CALLBACK}
  when_unavailable: {{take_message: true}}
""")
    assert lines(errors(tmp_path, queues=text, schedules=SCHEDULES)) == [
        ("queues.yaml:6:21: queues.sales.when_unavailable.take_message: take_message needs "
         "queue 'sales' to have callback: its dial calls the customer back"),
        ("queues.yaml:6:21: queues.sales.when_unavailable.take_message: take_message needs "
         "when_unavailable.schedule: the message becomes a callback when the schedule opens"),
        ("queues.yaml:9:38: queues.support.when_unavailable.take_message: take_message "
         "needs when_unavailable.schedule: the message becomes a callback when the "
         "schedule opens"),
    ]


def test_bad_shapes_are_located_with_what_is_expected(tmp_path: Path) -> None:
    text = queues(f"""\
sales:
  skills: [sales]
  {CALLBACK}
  when_unavailable:
    schedule: office
    take_message: {{max_seconds: 2, max_silence: 0, format: mp3, prompt: "../etc",
                   beep: false}}
support:
  {CALLBACK}
  when_unavailable: {{schedule: office, take_message: false}}
""")
    found = lines(errors(tmp_path, queues=text, schedules=SCHEDULES))
    assert all(line.startswith("queues.yaml:") for line in found), found
    by_path = {line.split(": ")[1]: line for line in found}
    assert set(by_path) == {
        "queues.sales.when_unavailable.take_message.max_seconds",
        "queues.sales.when_unavailable.take_message.max_silence",
        "queues.sales.when_unavailable.take_message.format",
        "queues.sales.when_unavailable.take_message.prompt",
        "queues.sales.when_unavailable.take_message",
        "queues.support.when_unavailable.take_message",
    }, found
    assert by_path["queues.sales.when_unavailable.take_message.max_seconds"].startswith(
        "queues.yaml:8:35:")
    assert "unknown key 'beep'" in by_path["queues.sales.when_unavailable.take_message"]
    assert "expected true or a mapping" in by_path[
        "queues.support.when_unavailable.take_message"]
