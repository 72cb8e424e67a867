"""All problems in one round: a schema error no longer hides the cross-checks of the rest,
and one typo gives one error, not its knock-on "unknown" or "unreachable" lines."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_checks import errors, lines


def test_schema_error_and_cross_reference_error_in_one_round(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - play: hello-world
              - menu: main
          orphan_typo:
            steps:
              - play: hello-world
              - transfer: {queue: salez}
        """, menus="""\
        menus:
          main:
            prompts: [vm-press]
            timeout: soon
            options:
              "1": {queue: sales}
        """)
    assert lines(errs) == [
        # the menu's own error does not hide an unknown queue in another flow
        # ('orphan_typo' is unreachable too, but reachability waits for a config where every
        # flow and menu parsed: it cannot tell what a broken menu would lead to)
        "flows.yaml:9:27: flows.orphan_typo.steps[1].transfer.queue: unknown queue 'salez' "
        "(known: sales)",
        "menus.yaml:4:14: menus.main.timeout: expected a number, got 'soon'",
    ]


def test_reference_to_a_broken_entry_is_not_unknown(tmp_path: Path) -> None:
    """'main' is in menus.yaml, just invalid: no "unknown menu 'main'", no "unreachable"."""
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
              "2": {voicemail: general}
              "3": {vomail: general}
        """)
    assert lines(errs) == [
        "menus.yaml:7:12: menus.main.options.3: expected a destination: one of the keys menu, "
        "flow, queue, extension, external, voicemail, hangup, back, repeat (got a mapping)",
    ]


def test_misspelt_key_is_one_error(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            stepz:
              - play: hello-world
              - menu: main
        """)
    assert lines(errs) == [
        "flows.yaml:3:5: flows.start: unknown key 'stepz' (did you mean 'steps'?)",
    ]


def test_misspelt_section_is_one_error(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flow:
          start:
            steps:
              - play: hello-world
              - menu: main
        """)
    assert lines(errs) == ["flows.yaml:1:1: unknown key 'flow' (did you mean 'flows'?)"]


def test_sounds_are_checked_while_another_section_is_invalid(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds" / "en"
    sounds.mkdir(parents=True)
    for sound in ("vm-press", "tt-somethingwrong", "pbx-invalid", "vm-goodbye"):
        (sounds / f"{sound}.gsm").write_bytes(b"")
    errs = errors(tmp_path, sounds={"en": sounds}, queues="""\
        skills: [sales]
        queues:
          sales: {skills: [sales], priority: high}
        agents:
          alice: {extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert lines(errs) == [
        "flows.yaml:4:15: flows.start.steps[0].play[0]: sound 'hello-world' is not installed "
        "for language(s) en",
        "queues.yaml:3:38: queues.sales.priority: expected an integer, got 'high'",
    ]


def test_dead_step_and_bad_agent_in_one_round(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - menu: main
              - play: hello-world
        """, queues="""\
        skills: [sales]
        queues:
          sales: {skills: [sales]}
        agents:
          alice: {extension: "1", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert [e.split(": ", 1)[0] for e in lines(errs)] == [
        "flows.yaml:5:9", "queues.yaml:5:22"]
    # agent 'alice' is broken, so "no agent has skill 'sales'" would be a knock-on
    assert not any("no agent has skill" in line for line in lines(errs))


def test_misspelt_reference_is_not_also_unreachable(tmp_path: Path) -> None:
    """{menu: mian}: the unknown menu, not also "menu 'main' is unreachable"."""
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - play: hello-world
              - menu: mian
        """)
    assert lines(errs) == [
        "flows.yaml:5:15: flows.start.steps[1].menu: unknown menu 'mian' (known: main)",
    ]
