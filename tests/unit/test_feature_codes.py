"""Agents' feature codes and queues' overflow labels: config, validation (located), the
generated dialplan, and the agent app's Stasis args contract (property-tested)."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.asterisk.stasis_args import (
    AGENT_ACTIONS,
    AgentCommand,
    StasisArgsError,
    agent_dialplan_args,
    overflow_label,
)
from callcenter.config.loader import load_config
from callcenter.flows.callflow import (
    FeatureCode,
    ToQueue,
    ToVoicemail,
    compile_callflow,
)
from dialplan.generator import AGENT_FEATURES_CONTEXT, render
from tests.conftest import EXAMPLE
from tests.passwords import fake_passwords
from tests.unit.test_checks import errors, lines, load

SETTINGS = """\
    settings:
      feature_codes:
{codes}
    """

QUEUES = """\
    skills: [sales]
    queues:
      sales:
        skills: [sales]
        relax:
          - {{after: 60, any_agent: true}}
          - {{after: 120, overflow: {{voicemail: general}}}}
    agents:
      alice:
        extension: "{alice}"
        skills: {{sales: 5}}
      dora:
        extension: "1004"
        skills: {{sales: 5}}
        device: PJSIP/desk_4
      emil:
        extension: "1005"
        skills: {{sales: 5}}
        device: PJSIP/1005@office
    voicemail:
      general:
        mailbox: "8000"
        name: General
    pause_reasons:
      lunch: {{code: "1"}}
      meeting: {{code: "42"}}
      coaching: {{}}
    """


def settings(**codes: str) -> str:
    body = "\n".join(f'        {key}: "{value}"' for key, value in codes.items())
    return dedent(SETTINGS.format(codes=body))


def queues(alice: str = "1001") -> str:
    return dedent(QUEUES.format(alice=alice))


def extensions(tmp_path: Path, **files: str) -> str:
    config = load(tmp_path, **files).config
    return render(config, agent_passwords=fake_passwords(config))["extensions_callcenter.conf"]


def context(text: str, name: str) -> str:
    start = text.index(f"[{name}]\n")
    end = text.find("\n[", start + 1)
    return text[start:end if end != -1 else None]


# -- config and compiled model --------------------------------------------------------

def test_defaults_and_the_example() -> None:
    config = load_config(EXAMPLE).config
    fc = config.settings.feature_codes
    assert (fc.login, fc.logout, fc.pause, fc.unpause, fc.end_wrapup) == (
        "*70", "*71", "*72", "*73", "*74")
    assert config.settings.agent_app == "cc-agent"
    features = compile_callflow(config).agent_features
    assert features is not None
    assert features.endpoints == {"alice": "alice", "bob": "bob", "carmen": "carmen"}
    assert FeatureCode("*721", "pause", "lunch") in features.codes
    assert FeatureCode("*722", "pause", "break") in features.codes
    # settings.feature_codes.pause_reason: break, so a bare *72 pauses for a break
    assert FeatureCode("*72", "pause", "break") in features.codes
    assert [c.code for c in features.codes] == sorted(c.code for c in features.codes)


def test_overflow_targets_resolved_per_relax_step() -> None:
    flow = compile_callflow(load_config(EXAMPLE).config)
    assert flow.queue_overflows["customer_service"] == {3: ToVoicemail("general", "8000",
                                                                       "unavailable")}
    assert flow.queue_overflows["tech_support"] == {
        1: ToQueue("customer_service", ("billing",), 0)}


def test_agents_are_known_by_endpoint_not_by_other_devices(tmp_path: Path) -> None:
    features = compile_callflow(load(tmp_path, queues=queues()).config).agent_features
    assert features is not None
    # dora's desk phone is endpoint desk_4; emil's PJSIP/1005@office names no endpoint of his.
    assert features.endpoints == {"alice": "alice", "desk_4": "dora"}


# -- validation, located ---------------------------------------------------------------

def test_codes_must_differ(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings=settings(unpause="*70"))
    assert "settings.yaml:3:14: settings.feature_codes.unpause: '*70' is already the login code" \
        in lines(errs)


def test_code_shape_is_explained(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings=settings(login="*7a"))
    (line,) = lines(errs)
    assert line.startswith("settings.yaml:3:12: settings.feature_codes.login:")
    assert "a feature code: an optional * or #, then 1 to 6 digits" in line


def test_code_after_the_pause_code_is_a_reason_code(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings=settings(unpause="*721"), queues=queues())
    assert ("settings.yaml:3:14: settings.feature_codes.unpause: '*721' is the pause code "
            "'*72' followed by reason code '1' (pause_reasons.lunch)") in lines(errs)


def test_agent_extension_equal_to_a_code_or_after_the_pause_code(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings=settings(login="1001", pause="10"), queues=queues(alice="1001"))
    got = lines(errs)
    assert ("queues.yaml:10:16: agents.alice.extension: extension '1001' is the login feature "
            "code (settings.feature_codes)") in got
    # 1004 = pause code 10 + "04", no reason's code: still refused, it would read as one.
    assert any(line.startswith("queues.yaml:13:16: agents.dora.extension: '1004' starts with "
                               "the pause code '10'") for line in got)


def test_default_pause_reason_must_exist(tmp_path: Path) -> None:
    text = SETTINGS.format(codes="        pause_reason: lnch")
    errs = errors(tmp_path, settings=text, queues=queues())
    assert ("settings.yaml:3:19: settings.feature_codes.pause_reason: unknown pause reason "
            "'lnch' (known: coaching, lunch, meeting)") in lines(errs)


def test_agent_app_is_not_the_queue_app(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings="settings:\n  agent_app: cc-queue\n")
    assert lines(errs) == [("settings.yaml:2:14: settings.agent_app: agent_app 'cc-queue' is "
                            "also the queue_app: feature codes and queued callers need two "
                            "Stasis apps")]


# -- generated dialplan ---------------------------------------------------------------

def test_feature_codes_generated_into_the_agents_context(tmp_path: Path) -> None:
    text = extensions(tmp_path, queues=queues())
    assert context(text, "cc-extensions").splitlines()[2] == f"include => {AGENT_FEATURES_CONTEXT}"
    features = context(text, AGENT_FEATURES_CONTEXT)
    assert ("exten => *70,1,NoOp(callcenter agent feature login)\n"
            " same => n,Answer()\n"
            " same => n,Gosub(cc-agent-identify,s,1)\n"
            " same => n,Stasis(cc-agent,login,agent=${CC_AGENT},reason=)\n"
            ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?cc-agent-identify,failed,1)\n'
            " same => n,Hangup(16)\n") in features
    assert "Stasis(cc-agent,pause,agent=${CC_AGENT},reason=lunch)" in features
    assert "exten => *7242,1," in features
    # No default reason: bare *72 is an error, as is *72 + a code no reason has.
    for number in ("*72", "_*72X."):
        assert (f"exten => {number},1,NoOp(callcenter agent feature: no such pause reason "
                "code)\n same => n,Answer()\n same => n,Playback(pbx-invalid)\n") in features
    identify = context(text, "cc-agent-identify")
    assert 'ExecIf($["${CC_AGENT_ENDPOINT}" = "desk_4"]?Set(CC_AGENT=dora))' in identify
    assert "emil" not in identify
    assert "Playback(agent-incorrect)" in identify
    assert "Playback(tt-somethingwrong)" in identify


def test_no_feature_codes_without_agents_with_endpoints(tmp_path: Path) -> None:
    text = extensions(tmp_path, queues=queues().replace(
        "extension: \"1001\"\n    skills: {sales: 5}",
        "extension: \"1001\"\n    skills: {sales: 5}\n    device: SIP/1001").replace(
        "device: PJSIP/desk_4", "device: SIP/desk_4"))
    assert AGENT_FEATURES_CONTEXT not in text
    assert "include =>" not in text


def test_overflow_labels_in_the_queue_extension(tmp_path: Path) -> None:
    text = extensions(tmp_path, queues=queues())
    queue = context(text, "cc-queue")
    label = overflow_label(2)
    assert label == "overflow2"
    assert (f" same => n({label}),NoOp(callcenter queue sales overflow at relax step 2)\n"
            " same => n,Goto(cc-voicemail,general,1)\n") in queue
    assert "overflow1" not in queue  # step 1 is any_agent, no overflow


def test_overflow_to_an_external_number_gets_its_trunk_extension(tmp_path: Path) -> None:
    text = extensions(tmp_path, settings="settings:\n  outbound_trunk: trunk\n", queues=queues().replace("{voicemail: general}", "{external: \"15550100\"}"))
    assert "Goto(cc-external,15550100,1)" in context(text, "cc-queue")
    assert "exten => 15550100,1,Dial(PJSIP/15550100@trunk,60)" in context(text, "cc-external")


@pytest.mark.parametrize("stage", [0, 100, -1])
def test_overflow_label_out_of_range(stage: int) -> None:
    with pytest.raises(ValueError):
        overflow_label(stage)


# -- the agent app's args contract --------------------------------------------------------

names = st.from_regex(r"\A[a-z][a-z0-9_]{0,47}\Z")
commands = st.one_of(
    st.builds(AgentCommand, action=st.sampled_from([a for a in AGENT_ACTIONS if a != "pause"]),
              agent=names),
    st.builds(AgentCommand, action=st.just("pause"), agent=names, reason=names),
)


@given(commands)
def test_agent_command_parse_of_format_is_identity(command: AgentCommand) -> None:
    args = command.format()
    assert ",".join(args).split(",") == args  # Asterisk's split gives the same list
    assert AgentCommand.parse(args) == command


@given(st.lists(st.text(max_size=30), max_size=5))
def test_any_args_parse_or_raise_stasis_args_error(args: list[str]) -> None:
    try:
        command = AgentCommand.parse(args)
    except StasisArgsError as exc:
        assert str(exc).startswith("Stasis args")
    else:
        assert AgentCommand.parse(command.format()) == command


@pytest.mark.parametrize(("args", "index", "fragment"), [
    ([], None, "empty"),
    (["shutdown", "agent=alice", "reason="], 0, "is not one of"),
    (["login", "agent=", "reason="], 1, "the calling endpoint is no agent"),
    (["login", "agent=alice;System(id)", "reason="], 1, "is not an agent name"),
    (["login", "agent=${SHELL(id)}", "reason="], 1, "is not an agent name"),
    (["pause", "agent=alice", "reason="], 2, "pause needs a reason"),
    (["login", "agent=alice", "reason=lunch"], 2, "only pause takes one"),
    (["login", "agent=alice", "agent=bob"], 2, "duplicate key"),
    (["login", "agent=alice", "queue=sales"], 2, "unknown key"),
    (["login", "alice"], 1, "is not key=value"),
])
def test_hostile_args_refused(args: list[str], index: int | None, fragment: str) -> None:
    with pytest.raises(StasisArgsError) as info:
        AgentCommand.parse(args)
    assert info.value.index == index and fragment in info.value.message


def test_generator_writes_what_the_contract_formats() -> None:
    assert agent_dialplan_args("pause", "${CC_AGENT}", "lunch") == [
        "pause", "agent=${CC_AGENT}", "reason=lunch"]
    with pytest.raises(ValueError):
        agent_dialplan_args("login", "${CC_AGENT}", "lunch")
    with pytest.raises(StasisArgsError):
        AgentCommand("login", "alice", "lunch")


def test_two_agents_on_one_endpoint(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=queues().replace("device: PJSIP/desk_4", "device: PJSIP/alice"))
    assert ("queues.yaml:15:13: agents.dora.device: PJSIP endpoint 'alice' is also agent "
            "alice's phone: calls and feature codes could not tell the two apart") in lines(errs)
