"""Agentless campaigns, pure parts: the config (a flow that exists, answers it collects,
located errors), the answers wanted and accepted, the lines decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.config.models import CollectSpec
from callcenter.dialer.agentless import (
    answer_table,
    answer_variables,
    lines_free,
    survey,
    valid_answer,
)
from tests.unit.test_checks import errors, lines, load

TRUNKS = """\
    trunks:
      carrier: {host: 127.0.0.2, port: 5070}
    """

#: A survey of two questions, then a menu whose option 2 asks a third (in another flow)
#: and option 1 sends the caller to a queue ("press 1 to speak to someone").
FLOWS = """\
    flows:
      start:
        steps:
          - play: hello-world
          - menu: main
      survey:
        steps:
          - collect: {variable: Q1, prompts: [beep], max_digits: 1, pattern: "^[1-5]$"}
          - collect: {variable: Q2, prompts: [beep], max_digits: 1}
          - menu: more
      extra:
        steps:
          - collect: {variable: Q3, prompts: [beep], min_digits: 2, max_digits: 4}
      lonely:
        steps:
          - collect: {variable: ELSEWHERE, prompts: [beep]}
    """
MENUS = """\
    menus:
      main:
        prompts: [vm-press]
        options:
          "1": {queue: sales}
          "2": {voicemail: general}
          "3": {flow: lonely}
      more:
        prompts: [vm-press]
        options:
          "1": {queue: sales}
          "2": {flow: extra}
    """

SURVEY = """\
    campaigns:
      poll:
        mode: agentless
        trunk: carrier
        caller_id: "+15550100000"
        flow: survey
    """.rstrip(" ")


def _files(campaign: str) -> dict[str, str]:
    return {"trunks": TRUNKS, "flows": FLOWS, "menus": MENUS, "campaigns": campaign}


def _errors(tmp_path: Path, campaign: str) -> list[str]:
    return lines(errors(tmp_path, **_files(campaign)))


def test_an_agentless_survey_loads_with_one_line_and_every_answer(tmp_path: Path) -> None:
    config = load(tmp_path, **_files(SURVEY)).config
    poll = config.campaigns["poll"]
    assert (poll.flow, poll.lines, poll.answers, poll.message) == ("survey", 1, None, None)
    # The flow's own questions first, then the one the menu it reaches leads to.
    assert answer_variables(config, poll) == ("Q1", "Q2", "Q3")


def test_answers_named_are_the_ones_stored(tmp_path: Path) -> None:
    config = load(tmp_path, **_files(SURVEY + "        answers: [Q2]\n        lines: 5\n")).config
    assert answer_variables(config, config.campaigns["poll"]) == ("Q2",)
    assert config.campaigns["poll"].lines == 5


def test_a_message_alone_is_the_simple_case(tmp_path: Path) -> None:
    entry = "entry_points:\n  main: {numbers: ['100'], flow: start}\n  poll: {numbers: ['101'], flow: survey}\n"
    config = load(tmp_path, entry=entry,
                  **_files(SURVEY.replace("flow: survey", "message: vm-goodbye"))).config
    assert answer_variables(config, config.campaigns["poll"]) == ()


@pytest.mark.parametrize("extra, expected", [
    ("        flow: nope\n", ("campaigns.yaml:6:11: campaigns.poll.flow: unknown flow 'nope' "
     "(known: extra, lonely, start, survey)")),
    ("        answers: [Q1, ELSEWHERE]\n",
     ("campaigns.yaml:7:19: campaigns.poll.answers[1]: flow 'survey' collects no variable "
     "'ELSEWHERE' (known: Q1, Q2, Q3)")),
    ("        message: vm-goodbye\n",
     ("campaigns.yaml:7:14: campaigns.poll.message: give 'flow' or 'message', not both "
     "(play the message in the flow: a play step)")),
    ("        lines: 0\n", "campaigns.yaml:7:12: campaigns.poll.lines: input should be greater than or equal to 1"),
    ("        lines: 101\n", "campaigns.yaml:7:12: campaigns.poll.lines: input should be less than or equal to 100"),
    ("        answers: [q1]\n", "campaigns.yaml:7:15: campaigns.poll.answers[0]: "),
])
def test_agentless_mistakes_are_located(tmp_path: Path, extra: str, expected: str) -> None:
    campaign = SURVEY.replace("        flow: survey\n", "") if "flow:" in extra else SURVEY
    # A campaign that does not parse leaves its flow unreachable too: not this test's.
    got = [e for e in _errors(tmp_path, campaign + extra) if e.startswith("campaigns.yaml")]
    assert len(got) == 1 and got[0].startswith(expected), got


def test_answers_without_a_flow_and_flows_on_other_modes_are_refused(tmp_path: Path) -> None:
    got = [e for e in _errors(tmp_path, SURVEY.replace("flow: survey", "message: vm-goodbye")
                              + "        answers: [Q1]\n") if e.startswith("campaigns")]
    assert got == [("campaigns.yaml:7:14: campaigns.poll.answers: answers are collected by a "
                   "flow: give the campaign a 'flow'")]
    got = [e for e in _errors(tmp_path, SURVEY.replace("agentless", "preview")
                              + "        agents: [alice]\n") if e.startswith("campaigns")]
    assert got == [("campaigns.yaml:6:11: campaigns.poll.flow: 'flow' is for agentless "
                   "campaigns; this one is preview")]


# -- answers -------------------------------------------------------------------------------

ONE_TO_FIVE = CollectSpec.model_validate(
    {"variable": "Q1", "prompts": ["beep"], "max_digits": 1, "pattern": "^[1-5]$"})
TWO_TO_FOUR = CollectSpec.model_validate(
    {"variable": "Q3", "prompts": ["beep"], "min_digits": 2, "max_digits": 4})


@pytest.mark.parametrize("value, ok", [
    ("4", True), ("6", False), ("", False), ("44", False), ("4#", False), ("x", False),
])
def test_an_answer_is_what_its_collect_step_accepts(value: str, ok: bool) -> None:
    assert valid_answer([ONE_TO_FIVE], value) is ok


def test_an_answer_asked_in_two_places_may_pass_either() -> None:
    assert valid_answer([ONE_TO_FIVE, TWO_TO_FOUR], "77")
    assert not valid_answer([ONE_TO_FIVE, TWO_TO_FOUR], "7")
    assert not valid_answer([], "1")


@given(st.text(max_size=40))
def test_only_dtmf_within_the_step_lengths_is_ever_an_answer(value: str) -> None:
    if valid_answer([ONE_TO_FIVE, TWO_TO_FOUR], value):
        assert set(value) <= set("0123456789*#")
        assert 1 <= len(value) <= 4
        assert len(value) != 1 or value in "12345"


def test_a_survey_is_complete_when_every_wanted_answer_was_given() -> None:
    done = survey(("Q1", "Q2"), {"Q1": "4", "Q2": "2", "OTHER": "9"})
    assert done.complete and dict(done.answers) == {"Q1": "4", "Q2": "2"}
    half = survey(("Q1", "Q2"), {"Q2": "2"})
    assert not half.complete and half.missing == ("Q1",)


@given(st.integers(1, 100), st.integers(0, 200), st.booleans())
def test_never_more_calls_than_lines(lines: int, busy: int, stopping: bool) -> None:
    free = lines_free(lines, busy, stopping=stopping)
    assert 0 <= free <= lines and busy + free <= max(lines, busy)
    assert free == (0 if stopping else max(0, lines - busy))


# -- storage and the table -------------------------------------------------------------------

async def test_answers_are_stored_per_attempt_and_replaced_when_given_again(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from callcenter.storage import (
        default_sqlite_url,
        make_engine,
        make_sessionmaker,
        upgrade,
    )
    from callcenter.storage.answers import AnswerRepository
    from callcenter.storage.campaigns import CampaignRepository, NewContact

    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    url = default_sqlite_url(tmp_path)
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            campaigns = CampaignRepository(session)
            await campaigns.import_contacts("poll", [NewContact("+12125550100", "UTC"),
                                                     NewContact("+12125550101", "UTC")])
        async with sessions.begin() as session:
            campaigns = CampaignRepository(session)
            first, second = await campaigns.claim_due("poll", now, 2, claimer="t")
            one = await campaigns.start_attempt(first.id, at=now)
            two = await campaigns.start_attempt(second.id, at=now)
        async with sessions.begin() as session:
            answers = AnswerRepository(session)
            await answers.flow_started(one, at=now)
            await answers.record(one, variable="Q1", value="3", at=now)
            await answers.record(one, variable="Q1", value="4", at=now)  # asked again
            await answers.record(one, variable="Q2", value="2", at=now)
            await answers.record(two, variable="Q2", value="5", at=now)
            with pytest.raises(ValueError, match="too long"):
                await answers.record(two, variable="Q1", value="1" * 33, at=now)
            with pytest.raises(LookupError):
                await answers.record(999, variable="Q1", value="1", at=now)
        async with sessions() as session:
            answers = AnswerRepository(session)
            assert await answers.for_attempt(one) == {"Q1": "4", "Q2": "2"}
            rows = await answers.for_campaign("poll")
            assert await answers.for_campaign("other") == []
        assert answer_table(("Q1", "Q2"), rows) == [
            ["contact", "number", "attempt", "complete", "Q1", "Q2"],
            [str(first.id), "+12125550100", str(one), "yes", "4", "2"],
            [str(second.id), "+12125550101", str(two), "no", "", "5"],
        ]
    finally:
        await engine.dispose()


def test_the_answers_command_writes_a_header_and_refuses_other_modes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from callcenter.cli import main

    example = str(Path(__file__).parents[2] / "config" / "example")
    base = ["--home", str(tmp_path), "campaigns", "answers"]
    result = CliRunner().invoke(main, [*base, "renewals", "--config", example])
    assert result.exit_code == 1
    assert "campaign 'renewals' is progressive: only agentless campaigns collect answers" \
        in result.output
    result = CliRunner().invoke(main, [*base, "satisfaction", "--config", example])
    assert result.exit_code == 0, result.output
    assert result.output == "contact,number,attempt,complete,SCORE,RECOMMEND\n"
