"""``when_unavailable`` in the config: defaults, located errors, the dialplan label the
router continues callers at, and the queue_log lines of callers who leave that way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.config.models import VoicemailDest, WhenUnavailable
from callcenter.events import CallOverflowed
from callcenter.reporting.queue_log import QueueLogLine, queue_log_lines
from dialplan.generator import render
from tests.passwords import fake_passwords
from tests.unit.test_checks import errors, lines, load
from tests.unit.test_routing_config import queues

SCHEDULES = """\
    schedules:
      office:
        hours: {mon-fri: "08:00-20:00"}
    """


def test_no_key_changes_nothing_and_an_empty_one_means_no_member_logged_in(
        tmp_path: Path) -> None:
    config = load(tmp_path, queues=queues("sales: {skills: [sales]}")).config
    assert config.queues["sales"].when_unavailable is None
    config = load(tmp_path, queues=queues("sales: {skills: [sales], when_unavailable: {}}"),
                  schedules=SCHEDULES).config
    assert config.queues["sales"].when_unavailable == WhenUnavailable(
        destination=None, no_agents="logged_out", grace=5, schedule=None, max_wait=None,
        max_callers=None, take_message=None)


def test_every_key_is_read(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  when_unavailable:
    destination: {voicemail: general}
    no_agents: paused
    grace: 0
    schedule: office
    max_wait: 600
    max_callers: 20
""")
    rule = load(tmp_path, queues=text, schedules=SCHEDULES).config.queues["sales"]\
        .when_unavailable
    assert rule == WhenUnavailable(destination=VoicemailDest(voicemail="general"),
                                   no_agents="paused", grace=0, schedule="office",
                                   max_wait=600, max_callers=20)


def test_cross_references_are_located(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  relax:
    - {after: 60, any_agent: true}
    - {after: 300, overflow: {voicemail: general}}
  when_unavailable:
    destination: {queue: sales}
    schedule: ofice
    max_wait: 300
support:
  when_unavailable: {destination: {queue: nosuch}}
""")
    assert lines(errors(tmp_path, queues=text, schedules=SCHEDULES)) == [
        ("queues.yaml:9:28: queues.sales.when_unavailable.destination.queue: queue 'sales' "
         "sends the callers nobody can take back to itself"),
        ("queues.yaml:10:17: queues.sales.when_unavailable.schedule: unknown schedule "
         "'ofice' (did you mean 'office'?)"),
        ("queues.yaml:11:17: queues.sales.when_unavailable.max_wait: max_wait: 300 sends "
         "callers on before relax[1] (overflow after 300 s) can happen; make max_wait longer "
         "than every relax step's after"),
        ("queues.yaml:13:45: queues.support.when_unavailable.destination.queue: unknown "
         "queue 'nosuch' (known: sales, support)"),
    ]


def test_shapes_are_located_with_the_choices(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  when_unavailable:
    no_agents: true
    max_wait: 0
    max_callers: many
    grace: -1
    wait_cap: 60
""")
    assert lines(errors(tmp_path, queues=text)) == [
        ("queues.yaml:6:18: queues.sales.when_unavailable.no_agents: invalid value true "
         "(expected one of: logged_out, paused, never)"),
        ("queues.yaml:7:17: queues.sales.when_unavailable.max_wait: input should be greater "
         "than or equal to 1 (got 0)"),
        ("queues.yaml:8:20: queues.sales.when_unavailable.max_callers: expected an integer, "
         "got 'many'"),
        ("queues.yaml:9:14: queues.sales.when_unavailable.grace: input should be greater "
         "than or equal to 0 (got -1)"),
        ("queues.yaml:10:7: queues.sales.when_unavailable: unknown key 'wait_cap' (allowed: "
         "destination, grace, max_callers, max_wait, no_agents, schedule, take_message)"),
    ]


def test_a_flow_only_when_unavailable_leads_to_is_reachable(tmp_path: Path) -> None:
    text = queues("sales: {skills: [sales], when_unavailable: {destination: {flow: late}}}")
    flows = """\
        flows:
          start:
            steps:
              - play: hello-world
              - menu: main
          late:
            steps: [{hangup: true}]
        """
    load(tmp_path, queues=text, flows=flows)


def _queue_extension(tmp_path: Path, text: str, name: str) -> list[str]:
    config = load(tmp_path, queues=queues(text)).config
    conf = render(config, agent_passwords=fake_passwords(config))["extensions_callcenter.conf"]
    block = conf.split(f"exten => {name},1,", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def test_every_queue_has_the_unavailable_label(tmp_path: Path) -> None:
    """With a destination the label leads there; without, to the queue's fallback (so a
    router whose config gained when_unavailable first never continues to a missing label)."""
    text = """\
sales:
  skills: [sales]
  fallback: {hangup: true, cause: 17}
  when_unavailable: {destination: {voicemail: general}}
support:
  fallback: {voicemail: general}
"""
    sales = _queue_extension(tmp_path, text, "sales")
    label = sales.index(" same => n(unavailable),NoOp(callcenter queue sales nobody can take "
                        "calls)")
    assert sales[label - 1].startswith("; queues.sales.when_unavailable.destination")
    assert sales[label + 1] == " same => n,Goto(cc-voicemail,general,1)"
    support = _queue_extension(tmp_path, text, "support")
    label = support.index(" same => n(unavailable),NoOp(callcenter queue support nobody can "
                          "take calls)")
    assert support[label + 1] == " same => n,Goto(cc-voicemail,general,1)"


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("reason", "position", "verb"), [
    ("no_agents", 2, "EXITEMPTY"),  # app_queue's leavewhenempty
    ("closed", 1, "EXITEMPTY"),
    ("max_wait", 3, "EXITWITHTIMEOUT"),  # the Queue() timeout
    ("", 1, "EXITWITHTIMEOUT"),  # a relax step's overflow, as before
])
def test_queue_log_of_a_caller_who_leaves(reason: str, position: int, verb: str) -> None:
    event = CallOverflowed(at=T0, queue="sales", call="c", position=position,
                           original_position=4, wait_seconds=61.4, destination="unavailable",
                           reason=reason)
    assert queue_log_lines(event, lambda a: f"PJSIP/{a}") == [
        QueueLogLine("sales", "c", "NONE", verb, (str(position), "4", "61"))]


@pytest.mark.parametrize("reason", ["no_agents", "closed", "full"])
def test_queue_log_of_a_caller_refused_at_entry_is_empty_as_app_queues(reason: str) -> None:
    """app_queue's joinempty and maxlen refusals write no queue_log line (QUEUESTATUS only)."""
    event = CallOverflowed(at=T0, queue="sales", call="c", position=0, original_position=0,
                           wait_seconds=0.0, destination="unavailable", reason=reason)
    assert queue_log_lines(event, lambda a: f"PJSIP/{a}") == []
