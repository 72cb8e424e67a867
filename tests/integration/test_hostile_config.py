"""Hostile input against what Asterisk actually loaded, not only the text written.

- Config file and directory names come from outside. A file named
  ``queues${SHELL(touch ...)}.yaml`` once ran its command as root when a call
  reached the queue (the name was in a ``NoOp``); a newline in a name added
  dialplan lines. Here such a config is applied to a real Asterisk, a call is
  sent to the queue, and the test checks ``dialplan show`` and the file system.
- ``apply`` fails and rolls back when Asterisk refuses part of a generation.
- Digit patterns run through the real ``REGEX()`` exactly as the generator
  writes them, and match what Python's ``re`` matches (what ``simulate`` uses).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.apply import ApplyError, apply_files
from callcenter.config.loader import load_config
from callcenter.flows.digit_pattern import canonical_pattern
from dialplan.generator import pattern_mismatch
from tests.integration.scratch_pbx import ScratchPBX, scratch_pbx
from tests.passwords import instance_render

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def hostile_pbx(tmp_path_factory: pytest.TempPathFactory,
                      asterisk_installation) -> AsyncIterator[ScratchPBX]:
    async with scratch_pbx(tmp_path_factory.mktemp("hostile-home"), asterisk_installation) as pbx:
        yield pbx


# The marker path lives in a global: file names cannot hold '/'.
SHELL = "${SHELL(touch ${CC_TEST_MARKER})}"


def _hostile_config(root: Path) -> Path:
    shell = SHELL
    directory = root / f"cfg{shell}"
    directory.mkdir(parents=True)
    (directory / "main.yaml").write_text(dedent(f"""\
        entry_points:
          door:
            description: "entry {shell} ;-- \\nexten => 666,1,NoOp(injected)"
            numbers: ["7000"]
            flow: f
        flows:
          f:
            description: "{shell}"
            steps:
              - transfer: {{queue: q}}
        """))
    (directory / f"queues{shell}.yaml").write_text(
        "queues:\n  q:\n    fallback: {hangup: true, cause: 34}\n")
    (directory / "x\nexten => 666,1,NoOp(injected)\n;.yaml").write_text("skills: []\n")
    return directory


async def test_hostile_names_never_reach_what_asterisk_runs(
        hostile_pbx: ScratchPBX, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    await asyncio.to_thread(hostile_pbx.instance.cli,
                            f"dialplan set global CC_TEST_MARKER {marker}")
    loaded = load_config(_hostile_config(tmp_path))
    files = instance_render(hostile_pbx.instance, loaded)
    await asyncio.to_thread(apply_files, hostile_pbx.instance, files)

    _, show = await asyncio.to_thread(hostile_pbx.instance.cli, "dialplan show")
    assert "'7000' =>" in show  # the entry point loaded
    for needle in ("SHELL", "666", "injected", "CC_TEST_MARKER"):
        assert needle not in show, f"{needle!r} in the loaded dialplan"

    # A real call walks to the queue (no router: its fallback hangs up with 34).
    caller = "15550007000"
    originate = hostile_pbx.ami.action(
        "Originate", Channel="Local/7000@cc-entry", Application="Wait", Data="1",
        CallerID=f"<{caller}>", Async="true")
    trace = await hostile_pbx.trace(caller, originate, timeout=30)
    assert any(s.get("Application") == "Stasis" for s in trace.steps), trace.apps()
    assert trace.hangup is not None
    assert not marker.exists(), "a file name ran a shell command"
    assert await asyncio.to_thread(hostile_pbx.instance.wait_no_channels, 10) == 0


_GOOD = """\
entry_points:
  door: {numbers: ["7100"], flow: f}
flows:
  f:
    steps:
      - hangup: true
"""


async def test_apply_rolls_back_when_asterisk_refuses_a_line(
        hostile_pbx: ScratchPBX, tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(_GOOD)
    loaded = load_config(tmp_path)
    good = instance_render(hostile_pbx.instance, loaded)
    kept = await asyncio.to_thread(apply_files, hostile_pbx.instance, good)

    # Asterisk ignores '-' when it compares extension names: the second one is
    # refused ("already in use by aliased extension") while the file loads.
    bad = dict(good)
    bad["extensions_callcenter.conf"] += ("\n[cc-aliased]\nexten => a-1,1,Hangup()\n"
                                          "exten => a1,1,Hangup()\n")
    with pytest.raises(ApplyError, match=r"refused part of generation .*a1@cc-aliased: "
                                         r"0 of 1 priorities loaded; the previous generation "
                                         r"was restored"):
        await asyncio.to_thread(apply_files, hostile_pbx.instance, bad)
    _, show = await asyncio.to_thread(hostile_pbx.instance.cli,
                                      "dialplan show generation@cc-meta")
    assert f"NoOp({kept.generation})" in show
    _, show = await asyncio.to_thread(hostile_pbx.instance.cli, "dialplan show")
    assert "cc-aliased" not in show


PATTERNS = ["^[0-9]{6,8}$", "^1(2|3)*$", "^[*#]1$", "^(12|3*)$", "^0{1}9?", "[12]{2,}",
            "^(1+)+$", "^1{0,3}$"]
SAMPLES = ["", "1", "12", "123", "1233", "*1", "#1", "11", "3333", "09", "100200", "10020030",
           "111", "1111", "21"]


async def test_digit_patterns_match_in_asterisk_as_in_python(
        hostile_pbx: ScratchPBX, tmp_path: Path) -> None:
    """The generator's own ``$[${REGEX(...)}]`` line, run by Asterisk on each sample."""
    import re

    lines = ["[cc-regex-test]"]
    for i, pattern in enumerate(PATTERNS):
        canonical = canonical_pattern(pattern)
        lines += [f"exten => p{i},1,GotoIf({pattern_mismatch(canonical, 'D')}?bad)",
                  " same => n,UserEvent(ccregex,id: ${ID},match: 1)",
                  " same => n,Hangup()",
                  " same => n(bad),UserEvent(ccregex,id: ${ID},match: 0)",
                  " same => n,Hangup()"]
    custom = hostile_pbx.instance.etc / "extensions_custom.conf"
    custom.write_text("\n".join(lines) + "\n")
    try:
        await asyncio.to_thread(hostile_pbx.instance.cli, "dialplan reload")
        results: dict[str, str] = {}
        with hostile_pbx.ami.subscribe("UserEvent") as events:
            for i, pattern in enumerate(PATTERNS):
                for j, digits in enumerate(SAMPLES):
                    await hostile_pbx.ami.action(
                        "Originate", Channel=f"Local/p{i}@cc-regex-test/n",
                        Application="Wait", Data="0", Async="true",
                        Variable=[f"D={digits}", f"ID={i}-{j}"])
            while len(results) < len(PATTERNS) * len(SAMPLES):
                event = await events.get(timeout=20)
                if event.get("UserEvent") == "ccregex":
                    results[event["Id"]] = event["Match"]
    finally:
        custom.unlink()
        await asyncio.to_thread(hostile_pbx.instance.cli, "dialplan reload")
    for i, pattern in enumerate(PATTERNS):
        compiled = re.compile(canonical_pattern(pattern))
        for j, digits in enumerate(SAMPLES):
            expected = "1" if compiled.search(digits) else "0"
            assert results[f"{i}-{j}"] == expected, (pattern, digits)
    assert await asyncio.to_thread(hostile_pbx.instance.wait_no_channels, 10) == 0
