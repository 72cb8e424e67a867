"""The queues' routing keys: defaults, the example, and every routing check, located.

Errors inside a skill expression point at the expression's value (``file:line:col``) and
name the column inside the expression.
"""

from __future__ import annotations

from pathlib import Path

from callcenter.config.loader import load_config
from callcenter.config.models import QueueDest, VoicemailDest
from callcenter.routing.expr import All, Has
from callcenter.routing.policy import AgentView, memberships, policies
from tests.unit.test_checks import EXAMPLE, errors, find, lines, load

VOICEMAIL = """\
    voicemail:
      general: {mailbox: "8000", name: General}
    """


def queues(text: str, agents: str = 'alice: {extension: "1001", skills: {sales: 5}}') -> str:
    """A queues.yaml with skills sales/english, ``text`` under queues and ``agents``."""
    indented = "\n".join("  " + line for line in text.strip("\n").splitlines())
    agent_lines = "\n".join("  " + line for line in agents.strip("\n").splitlines())
    return (f"skills: [sales, english]\nqueues:\n{indented}\nagents:\n{agent_lines}\n"
            "voicemail:\n  general: {mailbox: \"8000\", name: General}\n")


def test_defaults_keep_a_plain_queue_valid(tmp_path: Path) -> None:
    policy = policies(load(tmp_path).config)["sales"]
    assert (policy.strategy, policy.ring_timeout, policy.wrapup, policy.auto_pause_after) == (
        "longest_idle", 15, 10, 3)
    assert len(policy.stages) == 1 and policy.stages[0].requires is None
    assert not policy.language_required


def test_the_example_compiles_to_policies() -> None:
    config = load_config(EXAMPLE).config
    pols = policies(config)
    cs = pols["customer_service"]
    assert cs.strategy == "best_skill" and cs.preferred == (("billing", 2), ("english", 1))
    assert isinstance(cs.stages[0].requires, All)
    assert [s.after for s in cs.stages] == [0, 30, 90, 300]
    assert cs.stages[1].requires == Has("billing", ">=", 3, 1)
    assert cs.stages[2].any_agent and cs.stages[3].overflow == VoicemailDest(voicemail="general")
    assert pols["tech_support"].stages[1].overflow == QueueDest(queue="customer_service")
    # The Stasis priority already holds sales' base 5 (and a VIP's 10): not added twice
    assert (pols["sales"].call_priority(15), cs.call_priority(10)) == (15, 10)
    assert memberships(config) == {
        "alice": frozenset({"customer_service", "sales"}),
        "bob": frozenset({"tech_support"}),
        "carmen": frozenset({"customer_service", "sales"}),
    }


def test_agent_view_from_the_config(tmp_path: Path) -> None:
    config = load(tmp_path, queues=queues(
        "sales: {skills: [sales]}",
        'alice: {extension: "1001", skills: {sales: 5}, languages: [pt_BR, en]}')).config
    view = AgentView.from_config("alice", config.agents["alice"], memberships(config)["alice"],
                                 idle_since=12.5, calls_taken=3)
    assert (view.skills, view.queues, view.languages, view.idle_since, view.calls_taken) == (
        {"sales": 5}, frozenset({"sales"}), frozenset({"pt", "en"}), 12.5, 3)


def test_syntax_error_is_located_with_its_column(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=queues("sales: {skills: [sales], requires: 'sales >='}"))
    error = find(errs, "queues.sales.requires")
    assert (error.line, error.column) == (3, 38)
    assert error.message == ("invalid skill expression 'sales >=': expected a level 0 to 10 "
                             "after '>=', got the end at column 9 of the expression")


def test_unknown_skill_names_its_column_and_the_close_one(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  requires: sales >= 5 and (englsh or sales > 8)
""")
    assert lines(errors(tmp_path, queues=text)) == [
        ("queues.yaml:5:15: queues.sales.requires: unknown skill 'englsh' at column 17 of the "
         "expression (did you mean 'english'?)"),
    ]


def test_relax_order_and_overflow(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  relax:
    - {after: 60, requires: sales >= 1}
    - {after: 30, any_agent: true}
    - {after: 90, overflow: {queue: sales}}
    - {after: 120, overflow: {queue: nosuch}}
""")
    assert lines(errors(tmp_path, queues=text)) == [
        ("queues.yaml:7:17: queues.sales.relax[1].after: after: 30 is not later than the step "
         "before (after: 60); relax steps go in increasing after"),
        ("queues.yaml:8:31: queues.sales.relax[2].overflow: overflow ends the wait in this "
         "queue: it must be the last relax step"),
        ("queues.yaml:8:39: queues.sales.relax[2].overflow.queue: queue 'sales' overflows to "
         "itself"),
        ("queues.yaml:9:40: queues.sales.relax[3].overflow.queue: unknown queue 'nosuch' "
         "(known: sales)"),
    ]


def test_a_relax_step_does_one_thing(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  relax:
    - {after: 150, requires: sales, any_agent: true}
    - {after: 160}
    - {after: 0, requires: 'sales >'}
""")
    assert lines(errors(tmp_path, queues=text)) == [
        ("queues.yaml:6:9: queues.sales.relax[0]: a relax step needs exactly one of requires, "
         "any_agent, overflow (got requires, any_agent)"),
        ("queues.yaml:7:9: queues.sales.relax[1]: a relax step needs exactly one of requires, "
         "any_agent, overflow"),
        ("queues.yaml:8:17: queues.sales.relax[2].after: input should be greater than or equal "
         "to 1 (got 0)"),
        ("queues.yaml:8:30: queues.sales.relax[2].requires: invalid skill expression 'sales >': "
         "expected a level 0 to 10 after '>', got the end at column 8 of the expression"),
    ]


def test_members_strategy_and_satisfiability(tmp_path: Path) -> None:
    text = queues("""\
sales:
  skills: [sales]
  agents: [alice, alicia]
  requires: sales >= 9
  preferred: {sales: 2, salse: 1}
  language_required: true
""")
    got = lines(errors(tmp_path, queues=text))
    assert got == [
        "queues.yaml:5:21: queues.sales.agents[1]: unknown agent 'alicia' (known: alice)",
        ("queues.yaml:6:15: queues.sales.requires: no agent of queue 'sales' meets "
         "'sales >= 9': calls would wait for a relax step"),
        ("queues.yaml:7:34: queues.sales.preferred.salse: unknown skill 'salse' (did you mean "
         "'sales'?)"),
        ("queues.yaml:8:24: queues.sales.language_required: no agent of queue 'sales' lists "
         "languages: every caller with a language would wait"),
    ]


def test_ring_all_is_for_small_teams(tmp_path: Path) -> None:
    agents = "\n".join(f'a{i}: {{extension: "{1000 + i}", skills: {{sales: 5}}}}'
                       for i in range(21))
    text = queues("sales: {skills: [sales], strategy: ring_all}", agents)
    error = find(errors(tmp_path, queues=text), "queues.sales.strategy")
    assert error.message == ("ring_all rings every agent at once: queue 'sales' has 21 agents "
                             "(at most 20); use longest_idle")
    load(tmp_path, queues=queues("sales: {skills: [sales], strategy: ring_all}",
                                 agents.rsplit("\n", 1)[0]))


def test_a_keyword_is_no_skill_name(tmp_path: Path) -> None:
    text = queues("sales: {skills: [sales]}").replace("skills: [sales, english]",
                                                     "skills: [sales, english, not]")
    error = find(errors(tmp_path, queues=text), "skills[2]")
    assert "keyword of skill expressions" in error.message


def test_unknown_strategy_lists_the_choices(tmp_path: Path) -> None:
    error = find(errors(tmp_path, queues=queues("sales: {skills: [sales], strategy: rr}")),
                 "queues.sales.strategy")
    assert error.message == ("invalid value 'rr' (expected one of: longest_idle, "
                             "fewest_calls, round_robin, best_skill, ring_all)")


def test_overflow_target_counts_for_reachability(tmp_path: Path) -> None:
    """A flow only an overflow leads to is reachable, not reported as dead."""
    text = queues("sales: {skills: [sales], relax: [{after: 60, overflow: {flow: late}}]}")
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
