"""Supervisors: who is one (``role: supervisor`` + ``supervises``, validated and located),
their codes (``*80``/``*81``/``*82`` + the agent's digits) in the generated dialplan, and
the Stasis args contract between that dialplan and the agent app (property-tested)."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.asterisk.stasis_args import (
    SUPERVISE_MODES,
    StasisArgsError,
    SuperviseCommand,
    supervise_dialplan_args,
)
from callcenter.config.loader import load_config
from callcenter.flows.callflow import FeatureCode, compile_callflow
from dialplan.generator import AGENT_FEATURES_CONTEXT
from tests.conftest import EXAMPLE
from tests.unit.test_checks import errors, lines, load
from tests.unit.test_feature_codes import context, extensions, queues, settings

SUPERVISOR = """\
      sam:
        extension: "1009"
        role: supervisor
        supervises: {supervises}
"""


def with_supervisor(supervises: str = "[sales]", extra: str = "") -> str:
    """The feature-code test's queues.yaml with supervisor sam added to its agents."""
    text = queues()
    sam = dedent(SUPERVISOR.format(supervises=supervises)).replace("\n", "\n  ") + extra
    return text.replace("agents:\n", "agents:\n  " + sam.rstrip(" ") , 1)


# -- config -----------------------------------------------------------------------------

def test_defaults_and_role() -> None:
    config = load_config(EXAMPLE).config
    fc = config.settings.feature_codes
    assert fc.supervisor_codes() == {"listen": "*80", "whisper": "*81", "barge": "*82"}
    assert {a.role for a in config.agents.values()} == {"agent"}
    features = compile_callflow(config).agent_features
    assert features is not None
    assert features.supervise == (FeatureCode("*80", "listen"), FeatureCode("*81", "whisper"),
                                  FeatureCode("*82", "barge"))


def test_a_supervisor_loads(tmp_path: Path) -> None:
    config = load(tmp_path, queues=with_supervisor()).config
    sam = config.agents["sam"]
    assert (sam.role, sam.supervises) == ("supervisor", ("sales",))


def test_unknown_queue_is_located(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=with_supervisor("[sales, sale]"))
    assert ("queues.yaml:12:25: agents.sam.supervises[1]: unknown queue 'sale' "
            "(known: sales)") in lines(errs), lines(errs)


def test_supervisor_without_queues_and_agent_with_queues(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=with_supervisor("[]").replace(
        '    extension: "1004"', '    extension: "1004"\n    supervises: [sales]'))
    got = lines(errs)
    assert any(line.startswith("queues.yaml:11:11: agents.sam.role: supervisor sam "
                               "supervises no queue") for line in got), got
    assert any(line.startswith("queues.yaml:18:17: agents.dora.supervises: only a supervisor "
                               "supervises queues")
               for line in got), got


def test_unknown_role_is_explained(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=with_supervisor().replace("role: supervisor", "role: boss"))
    (line,) = lines(errs)
    assert line.startswith("queues.yaml:11:11: agents.sam.role:"), line
    assert "expected one of: agent, supervisor" in line


def test_supervisor_needs_an_endpoint(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues=with_supervisor(
        extra="  device: PJSIP/1009@office\n"))
    assert any("agents.sam.device: supervisor sam's device 'PJSIP/1009@office' is no PJSIP "
               "endpoint" in line for line in lines(errs)), lines(errs)


def test_supervisor_codes_clash(tmp_path: Path) -> None:
    got = lines(errors(tmp_path, settings=settings(whisper="*80"), queues=queues()))
    assert "settings.yaml:3:14: settings.feature_codes.whisper: '*80' is already the listen code" \
        in got, got
    # listen *7 + digits would read *721 (pause, lunch) as "listen to extension 21".
    got = lines(errors(tmp_path, settings=settings(listen="*7"), queues=queues()))
    assert ("settings.yaml:3:13: settings.feature_codes.listen: the listen code '*7' is followed "
            "by an agent's extension, but the login code '*70' starts with it: pick codes "
            "where neither starts with the other") in got, got


def test_extension_after_a_supervisor_code(tmp_path: Path) -> None:
    got = lines(errors(tmp_path, settings=settings(listen="10"), queues=queues(alice="1001")))
    assert ("queues.yaml:10:16: agents.alice.extension: extension '1001' starts with the listen "
            "code '10' (settings.feature_codes)") in got, got


# -- generated dialplan -----------------------------------------------------------------

def test_supervisor_codes_generated(tmp_path: Path) -> None:
    text = extensions(tmp_path, queues=queues())
    features = context(text, AGENT_FEATURES_CONTEXT)
    assert ("exten => _*81X.,1,NoOp(callcenter supervisor whisper)\n"
            " same => n,Answer()\n"
            " same => n,Gosub(cc-agent-identify,s,1)\n"
            " same => n,Set(CC_SUPERVISE_TARGET=${FILTER(0-9,${EXTEN:3})})\n"
            " same => n,GotoIf($[${LEN(${CC_SUPERVISE_TARGET})} != ${LEN(${EXTEN:3})}]?invalid)\n"
            " same => n,Stasis(cc-agent,whisper,supervisor=${CC_AGENT},"
            "target=${CC_SUPERVISE_TARGET})\n"
            ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?cc-agent-identify,failed,1)\n'
            " same => n,Hangup(16)\n"
            " same => n(invalid),Playback(pbx-invalid)\n"
            " same => n,Hangup(16)\n") in features
    assert "exten => _*80X.,1," in features and "exten => _*82X.,1," in features


def test_code_length_follows_the_config(tmp_path: Path) -> None:
    text = extensions(tmp_path, settings=settings(barge="#9"), queues=queues())
    features = context(text, AGENT_FEATURES_CONTEXT)
    assert "exten => _#9X.,1,NoOp(callcenter supervisor barge)" in features
    assert "${FILTER(0-9,${EXTEN:2})}" in features


# -- Stasis args contract ---------------------------------------------------------------

def test_dialplan_args_shape() -> None:
    assert supervise_dialplan_args("listen", "${CC_AGENT}", "${CC_SUPERVISE_TARGET}") == [
        "listen", "supervisor=${CC_AGENT}", "target=${CC_SUPERVISE_TARGET}"]
    with pytest.raises(ValueError):
        supervise_dialplan_args("spy", "sam", "1000")


@given(st.sampled_from(SUPERVISE_MODES), st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
       st.from_regex(r"[0-9]{1,48}", fullmatch=True))
def test_format_parse_round_trip(mode: str, supervisor: str, target: str) -> None:
    command = SuperviseCommand(mode, supervisor, target)
    assert SuperviseCommand.parse(command.format()) == command


@pytest.mark.parametrize(("args", "index", "fragment"), [
    ((), None, "empty"),
    (("spy", "supervisor=sam", "target=1000"), 0, "not one of listen, whisper, barge"),
    (("listen", "supervisor=", "target=1000"), 1, "missing"),
    (("listen", "supervisor=Sam;x", "target=1000"), 1, "not an agent name"),
    (("listen", "supervisor=sam", "target="), 2, "not 1 to 48 digits"),
    (("listen", "supervisor=sam", "target=10a0"), 2, "not 1 to 48 digits"),
    (("listen", "supervisor=sam", "target=1", "target=2"), 3, "duplicate key"),
    (("listen", "supervisor=sam", "agent=carmen"), 2, "unknown key"),
    (("listen", "sam"), 1, "not key=value"),
])
def test_parse_refuses_with_position(args: tuple[str, ...], index: int | None,
                                     fragment: str) -> None:
    with pytest.raises(StasisArgsError) as info:
        SuperviseCommand.parse(args)
    assert info.value.index == index
    assert fragment in str(info.value)
