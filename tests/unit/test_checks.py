"""Every config cross-check fires, located at the YAML an admin has to fix.

Each test writes a small config directory into ``tmp_path``: a valid base
(:data:`BASE`) with one file replaced or added, loads it with
:func:`load_config` and looks at the ``file:line:col: path: message`` lines.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from callcenter.config.errors import ConfigError, ConfigErrors
from callcenter.config.loader import LoadedConfig, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"

#: A small valid center: one entry point, one flow, one menu, one queue.
BASE = {
    "entry.yaml": """\
        entry_points:
          main:
            numbers: ["100"]
            flow: start
        """,
    "flows.yaml": """\
        flows:
          start:
            steps:
              - play: hello-world
              - menu: main
        """,
    "menus.yaml": """\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
              "2": {voicemail: general}
        """,
    "queues.yaml": """\
        skills: [sales]
        queues:
          sales:
            skills: [sales]
        agents:
          alice:
            extension: "1001"
            skills: {sales: 5}
        voicemail:
          general:
            mailbox: "8000"
            name: General
        """,
}


def write(tmp_path: Path, **files: str) -> Path:
    """BASE with ``files`` (name without .yaml -> text) replacing or adding files."""
    directory = tmp_path / "cfg"
    directory.mkdir(exist_ok=True)
    contents = dict(BASE)
    contents.update({f"{name}.yaml": text for name, text in files.items()})
    for name, text in contents.items():
        (directory / name).write_text(dedent(text))
    return directory


def load(tmp_path: Path, **files: str) -> LoadedConfig:
    return load_config(write(tmp_path, **files))


def errors(tmp_path: Path, sounds: dict[str, Path] | None = None, **files: str) -> ConfigErrors:
    """The ConfigErrors raised by loading BASE + ``files``."""
    directory = write(tmp_path, **files)
    with pytest.raises(ConfigErrors) as info:
        load_config(directory, sounds=sounds)
    for error in info.value.errors:
        assert error.line > 0 and error.column > 0, f"unlocated: {error}"
    return info.value


def lines(errs: ConfigErrors) -> list[str]:
    """Errors as printed, with the tmp dir stripped: ``menus.yaml:5:12: ...``."""
    out = []
    for error in errs.errors:
        out.append(str(ConfigError(Path(error.file).name, error.line, error.column,
                                   error.path, error.message)))
    return out


def find(errs: ConfigErrors, path: str) -> ConfigError:
    hits = [e for e in errs.errors if e.path == path]
    assert hits, f"no error at {path}; got:\n" + "\n".join(lines(errs))
    return hits[0]


# -- the example and the base ------------------------------------------------------

def test_example_is_valid() -> None:
    loaded = load_config(EXAMPLE)
    assert set(loaded.config.menus) == {"language", "main", "tech_support", "speak_to_someone"}


def test_base_is_valid(tmp_path: Path) -> None:
    load(tmp_path)


# -- unknown targets ---------------------------------------------------------------

def test_unknown_targets_exact(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: salse}
              "2": {voicemail: general}
              "3": {menu: suport}
        """)
    assert lines(errs) == [
        "menus.yaml:5:20: menus.main.options.1.queue: unknown queue 'salse' (known: sales)",
        "menus.yaml:7:19: menus.main.options.3.menu: unknown menu 'suport' (known: main)",
    ]


def test_unknown_flow_and_voicemail_exact(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {flow: nowhere}
              "2": {voicemail: sales}
        """)
    assert lines(errs) == [
        "menus.yaml:5:19: menus.main.options.1.flow: unknown flow 'nowhere' (known: start)",
        ("menus.yaml:6:24: menus.main.options.2.voicemail: "
         "unknown voicemail box 'sales' (known: general)"),
    ]


def test_unknown_entry_flow(tmp_path: Path) -> None:
    errs = errors(tmp_path, entry="""\
        entry_points:
          main:
            numbers: ["100"]
            flow: strat
        """)
    assert "entry.yaml:4:11: entry_points.main.flow: unknown flow 'strat' (known: start)" \
        in lines(errs)


def test_unknown_goto_flow(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - play: hello-world
              - goto: nowhere
        """)
    assert "flows.yaml:5:15: flows.start.steps[1].goto: unknown flow 'nowhere' (known: start)" \
        in lines(errs)


def test_unknown_menu_step_path_names_the_step(tmp_path: Path) -> None:
    # The YAML is "- menu: mian": the path of the error is that key, nothing deeper.
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - menu: mian
        """)
    assert "flows.yaml:4:15: flows.start.steps[0].menu: unknown menu 'mian' (known: main)" \
        in lines(errs)


def test_unknown_schedule_and_lookup(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - check_schedule: {schedule: office, closed: {hangup: true}}
              - lookup: {lookup: crm}
              - menu: main
        """)
    sched = find(errs, "flows.start.steps[0].check_schedule.schedule")
    assert sched.message == "unknown schedule 'office' (none defined)"
    assert (sched.line, sched.column) == (4, 36)
    look = find(errs, "flows.start.steps[1].lookup.lookup")
    assert look.message == "unknown lookup 'crm' (none defined)"
    assert (look.line, look.column) == (5, 26)


# -- menus -----------------------------------------------------------------------------

def test_duplicate_menu_key(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              1: {queue: sales}
              "1": {voicemail: general}
        """)
    [error] = errs.errors
    assert error.path == "menus.main.options"
    assert (error.line, error.column) == (6, 7)
    assert error.message.startswith("duplicate key '1'")
    assert "line 5" in error.message


def test_unreachable_menu(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
          orphan:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
        """)
    assert lines(errs) == [
        "menus.yaml:7:5: menus.orphan: menu 'orphan' is unreachable from every entry point",
    ]


def test_unreachable_flow(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - menu: main
          unused:
            steps:
              - hangup: true
        """)
    assert find(errs, "flows.unused").message == \
        "flow 'unused' is unreachable from every entry point"


def test_menu_loop_with_no_exit(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {menu: other}
              "9": {repeat: true}
            on_exhausted: {menu: other}
          other:
            prompts: [vm-press]
            options:
              "1": {menu: main}
            on_exhausted: {menu: main}
        """)
    main = find(errs, "menus.main")
    assert main.message.startswith("menu 'main' loops with no exit")
    other = find(errs, "menus.other")
    assert other.message.startswith("menu 'other' loops with no exit")
    # The flow that only leads into the loop cannot leave either.
    assert find(errs, "flows.start").message.startswith("flow 'start' loops with no exit")


def test_menu_loop_whose_only_way_out_is_back(tmp_path: Path) -> None:
    """``back`` returns to the parent menu: it is no exit from a loop."""
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {menu: sub}
            on_exhausted: {menu: sub}
          sub:
            prompts: [vm-press]
            options:
              "*": {back: true}
            on_exhausted: {back: true}
        """)
    assert find(errs, "menus.sub").message.startswith("menu 'sub' loops with no exit")
    assert find(errs, "menus.main").message.startswith("menu 'main' loops with no exit")


def test_back_to_a_parent_with_an_exit_is_fine(tmp_path: Path) -> None:
    load(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {menu: sub}
              "2": {queue: sales}
          sub:
            prompts: [vm-press]
            options:
              "*": {back: true}
            on_exhausted: {back: true}
        """)


def test_flows_looping_unconditionally(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - play: hello-world
              - goto: b
          b:
            steps:
              - play: hello-world
              - goto: start
        """, menus="menus: {}")
    messages = [e.message for e in errs.errors]
    assert "flows loop forever without caller input: b -> start -> b" in messages
    assert any(m.startswith("flow 'start' loops with no exit") for m in messages)


def test_conditional_flow_cycle_with_exit_is_fine(tmp_path: Path) -> None:
    load(tmp_path, flows="""\
        flows:
          start:
            steps:
              - collect: {variable: PIN, prompts: [vm-press], on_failure: {hangup: true}}
              - branch: {variable: PIN, cases: {"1": {flow: start}}, default: {menu: main}}
        """)


def test_back_outside_a_menu(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - play: hello-world
              - transfer: {back: true}
        """, menus="menus: {}")
    error = find(errs, "flows.start.steps[1].transfer")
    assert error.message == "'back' is only allowed in menu options"
    assert (error.line, error.column) == (5, 19)


def test_repeat_outside_a_menu(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - transfer: {repeat: true}
        """, menus="menus: {}")
    assert find(errs, "flows.start.steps[0].transfer").message == \
        "'repeat' is only allowed in menu options"


def test_back_in_menu_without_parent(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
              "*": {back: true}
        """)
    assert lines(errs) == [
        ("menus.yaml:6:12: menus.main.options.*: "
         "'back' in menu 'main', but no other menu leads to it"),
    ]


def test_repeat_as_on_exhausted(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
            on_exhausted: {repeat: true}
        """)
    assert find(errs, "menus.main.on_exhausted").message.startswith(
        "'repeat' as on_exhausted would never end")


def test_back_in_sub_menu_is_fine(tmp_path: Path) -> None:
    load(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {menu: sub}
          sub:
            prompts: [vm-press]
            options:
              "1": {queue: sales}
              "*": {back: true}
        """)


# -- schedules ----------------------------------------------------------------------

def _with_schedule(schedule: str) -> dict[str, str]:
    return {
        "flows": """\
            flows:
              start:
                steps:
                  - check_schedule: {schedule: office, closed: {hangup: true}}
                  - menu: main
            """,
        "schedules": schedule,
    }


def test_schedule_is_valid(tmp_path: Path) -> None:
    load(tmp_path, **_with_schedule("""\
        schedules:
          office:
            timezone: Europe/Paris
            hours: {mon-fri: "08:00-12:00, 13:00-18:00", fri-mon: "19:00-20:00"}
            holidays: [{date: "2026-12-25"}]
            special_days: [{date: "2026-12-24", hours: "08:00-12:00"}]
        """))


def test_invalid_time_zone(tmp_path: Path) -> None:
    errs = errors(tmp_path, **_with_schedule("""\
        schedules:
          office:
            timezone: Mars/Olympus_Mons
            hours: {mon-fri: "08:00-18:00"}
        """))
    assert lines(errs) == [
        ("schedules.yaml:3:15: schedules.office.timezone: unknown time zone "
         "'Mars/Olympus_Mons' (expected an IANA name such as America/New_York)"),
    ]


def test_invalid_settings_time_zone(tmp_path: Path) -> None:
    errs = errors(tmp_path, settings="settings: {timezone: EST5EDT_nope}\n")
    assert find(errs, "settings.timezone").message.startswith("unknown time zone 'EST5EDT_nope'")


def test_overlapping_weekly_hours(tmp_path: Path) -> None:
    errs = errors(tmp_path, **_with_schedule("""\
        schedules:
          office:
            hours:
              mon-fri: "08:00-12:00"
              mon: "11:00-13:00"
        """))
    assert lines(errs) == [
        ("schedules.yaml:5:12: schedules.office.hours.mon: "
         "mon 11:00-13:00 overlaps 08:00-12:00 (from 'mon-fri')"),
    ]


def test_adjacent_weekly_hours_do_not_overlap(tmp_path: Path) -> None:
    load(tmp_path, **_with_schedule("""\
        schedules:
          office:
            hours:
              mon-fri: "08:00-12:00"
              mon: "12:00-13:00"
        """))


def test_special_day_on_a_holiday(tmp_path: Path) -> None:
    errs = errors(tmp_path, **_with_schedule("""\
        schedules:
          office:
            hours: {mon-fri: "08:00-18:00"}
            holidays:
              - {date: "2026-12-24", until: "2026-12-26"}
            special_days:
              - {date: "2026-12-25", hours: "08:00-12:00"}
        """))
    error = find(errs, "schedules.office.special_days[0].date")
    assert error.message == ("special day 2026-12-25 falls on holidays[0] "
                             "(2026-12-24..2026-12-26): the center is closed all day then")
    assert error.line == 7


def test_overlapping_holidays(tmp_path: Path) -> None:
    errs = errors(tmp_path, **_with_schedule("""\
        schedules:
          office:
            hours: {mon-fri: "08:00-18:00"}
            holidays:
              - {date: "2026-12-31", until: "2027-01-02"}
              - {date: "2027-01-01"}
        """))
    assert lines(errs) == [
        ("schedules.yaml:6:9: schedules.office.holidays[1]: "
         "holiday 2027-01-01..2027-01-01 overlaps holidays[0] 2026-12-31..2027-01-02"),
    ]


@pytest.mark.parametrize("hours, path, at, message", [
    ('{mon: closed, monday: "08:00-18:00"}', "schedules.office.hours", "monday",
     "invalid key 'monday': expected a day or a range of days"),
    ('{mon: closed, tue: "18:00-08:00"}', "schedules.office.hours.tue", '"18:00',
     "time range '18:00-08:00' ends before it starts"),
    ('{mon: closed, wed: "8-9"}', "schedules.office.hours.wed", '"8-9',
     "invalid time '8': expected HH:MM"),
])
def test_invalid_day_and_time(tmp_path: Path, hours: str, path: str, at: str,
                              message: str) -> None:
    """Located at the bad day's key or value, not at ``hours:``."""
    errs = errors(tmp_path, **_with_schedule(f"""\
        schedules:
          office:
            hours: {hours}
        """))
    [error] = errs.errors
    assert error.path == path
    assert (error.line, error.column) == (3, len("    hours: ") + hours.index(at) + 1)
    assert message in error.message


# -- skills, agents, transfers ----------------------------------------------------

def test_queue_skill_no_agent_has(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues="""\
        skills: [sales, french]
        queues:
          sales:
            skills: [sales, french]
        agents:
          alice:
            extension: "1001"
            skills: {sales: 5}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert lines(errs) == [
        ("queues.yaml:4:21: queues.sales.skills[1]: no agent has skill 'french': "
         "calls to queue 'sales' could never be answered"),
    ]


def test_unknown_skill(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues="""\
        skills: [sales, french]
        queues:
          sales:
            skills: [sales, frnch]
        agents:
          alice:
            extension: "1001"
            skills: {sales: 5, french: 2, englsh: 3}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert "queues.yaml:4:21: queues.sales.skills[1]: unknown skill 'frnch' " \
        "(known: french, sales)" in lines(errs)
    assert find(errs, "agents.alice.skills.englsh").message == \
        "unknown skill 'englsh' (known: french, sales)"


def test_unknown_skill_in_queue_destination(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: sales, skills: [sails]}
        """)
    assert "menus.yaml:5:36: menus.main.options.1.skills[0]: unknown skill 'sails' " \
        "(known: sales)" in lines(errs)


def test_external_transfer_without_trunk(tmp_path: Path) -> None:
    menus = """\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {external: "+15551234567"}
        """
    errs = errors(tmp_path, menus=menus)
    assert lines(errs) == [
        ("menus.yaml:5:23: menus.main.options.1.external: "
         "external transfer needs settings.outbound_trunk (a PJSIP endpoint)"),
    ]


def test_external_transfer_with_trunk(tmp_path: Path) -> None:
    load(tmp_path, settings="settings: {outbound_trunk: carrier}\n", menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {external: "+15551234567"}
        """)


def test_extension_not_belonging_to_an_agent(tmp_path: Path) -> None:
    menus = """\
        menus:
          main:
            prompts: [vm-press]
            options:
              "0": {extension: "2000"}
        """
    errs = errors(tmp_path, menus=menus)
    error = find(errs, "menus.main.options.0.extension")
    assert error.message.startswith("extension '2000' belongs to no agent (known: 1001)")
    assert (error.line, error.column) == (5, 24)


def test_extension_allowed_with_pbx_context(tmp_path: Path) -> None:
    load(tmp_path, settings="settings: {extensions_context: from-internal}\n", menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "0": {extension: "2000"}
        """)


def test_duplicate_extension_and_number(tmp_path: Path) -> None:
    errs = errors(tmp_path, entry="""\
        entry_points:
          main:
            numbers: ["100", "100"]
            flow: start
        """, queues="""\
        skills: [sales]
        queues:
          sales: {skills: [sales]}
        agents:
          alice: {extension: "1001", skills: {sales: 5}}
          bob: {extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert find(errs, "entry_points.main.numbers[1]").message == \
        "number '100' is already used by entry_points.main"
    assert find(errs, "agents.bob.extension").message == \
        "extension '1001' is already used by agents.alice"


def test_lookup_input_never_collected(tmp_path: Path) -> None:
    errs = errors(tmp_path, flows="""\
        flows:
          start:
            steps:
              - collect: {variable: PIN, prompts: [vm-press]}
              - lookup: {lookup: account, input: ACCOUNT, not_found: {hangup: true}}
              - menu: main
        """, lookups="lookups: {account: {source: database, by: account_number}}\n")
    assert lines(errs) == [
        ("flows.yaml:5:42: flows.start.steps[1].lookup.input: variable 'ACCOUNT' is never "
         "collected (collected: PIN; or CALLERID)"),
    ]


def test_lookup_on_caller_id_needs_no_collect(tmp_path: Path) -> None:
    load(tmp_path, flows="""\
        flows:
          start:
            steps:
              - lookup: {lookup: account, input: CALLERID}
              - menu: main
        """, lookups="lookups: {account: {source: database, by: phone}}\n")


# -- YAML and model errors ------------------------------------------------------

def test_norway_words_stay_strings(tmp_path: Path) -> None:
    loaded = load(tmp_path, menus="""\
        menus:
          main:
            description: NO
            prompts: [vm-press]
            options:
              "1": {queue: sales}
        """, queues="""\
        skills: [sales]
        queues:
          sales: {description: on, skills: [sales]}
        agents:
          alice: {name: off, extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: yes}
        """)
    c = loaded.config
    assert c.menus["main"].description == "NO"
    assert c.queues["sales"].description == "on"
    assert c.agents["alice"].name == "off"
    assert c.voicemail["general"].name == "yes"


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues="""\
        skills: [sales]
        queues:
          sales:
            skills: [sales]
            colour: red
        agents:
          alice: {extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    [error] = errs.errors
    assert (Path(error.file).name, error.line, error.column) == ("queues.yaml", 5, 5)
    assert error.path == "queues.sales"
    assert error.message.startswith("unknown key 'colour' (allowed: ")
    assert "skills" in error.message


def test_wrong_type(tmp_path: Path) -> None:
    errs = errors(tmp_path, queues="""\
        skills: [sales]
        queues:
          sales:
            skills: [sales]
            priority: high
        agents:
          alice: {extension: "1001", skills: {sales: 5}}
        voicemail:
          general: {mailbox: "8000", name: General}
        """)
    assert lines(errs) == [
        "queues.yaml:5:15: queues.sales.priority: expected an integer, got 'high'",
    ]


def test_config_errors_collected_together(tmp_path: Path) -> None:
    errs = errors(tmp_path, menus="""\
        menus:
          main:
            prompts: [vm-press]
            options:
              "1": {queue: nope1}
              "2": {queue: nope2}
        """)
    assert len(errs.errors) == 2
    assert str(errs).count("\n") == 1


# -- sounds ------------------------------------------------------------------------

@pytest.fixture
def sounds_en(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "sounds" / "en"
    (root / "digits").mkdir(parents=True)
    for name in ("hello-world", "vm-press", "pbx-invalid", "vm-goodbye", "tt-somethingwrong",
                 "digits/1"):
        (root / f"{name}.gsm").write_bytes(b"\0" * 33)
    return {"en": root}


def test_sounds_all_installed(tmp_path: Path, sounds_en: dict[str, Path]) -> None:
    load_config(write(tmp_path), sounds=sounds_en)


def test_missing_sound(tmp_path: Path, sounds_en: dict[str, Path]) -> None:
    errs = errors(tmp_path, sounds=sounds_en, menus="""\
        menus:
          main:
            prompts: [vm-press, digits/1, digits/2]
            options:
              "1": {queue: sales}
        """)
    assert lines(errs) == [
        ("menus.yaml:3:35: menus.main.prompts[2]: "
         "sound 'digits/2' is not installed for language(s) en"),
    ]


def test_missing_sound_in_flow(tmp_path: Path, sounds_en: dict[str, Path]) -> None:
    errs = errors(tmp_path, sounds=sounds_en, flows="""\
        flows:
          start:
            steps:
              - play: [hello-world, welcome-custom]
              - collect: {variable: PIN, prompts: enter-pin, invalid_prompts: [vm-press]}
              - menu: main
        """)
    assert find(errs, "flows.start.steps[0].play[1]").message == \
        "sound 'welcome-custom' is not installed for language(s) en"
    assert find(errs, "flows.start.steps[1].collect.prompts[0]").message == \
        "sound 'enter-pin' is not installed for language(s) en"


def test_language_without_sounds(tmp_path: Path, sounds_en: dict[str, Path]) -> None:
    directory = write(tmp_path, flows="""\
        flows:
          start:
            steps:
              - set_language: fr
              - menu: main
        """)
    with pytest.raises(ConfigErrors) as info:
        load_config(directory, sounds=sounds_en)
    [error] = [e for e in info.value.errors if "language 'fr'" in e.message]
    assert error.message == "no sounds installed for language 'fr' (installed: en)"
    # Located at the YAML that makes calls speak French, not at the directory.
    assert (Path(error.file).name, error.line) == ("flows.yaml", 4), str(error)


def test_site_recordings_beside_the_language_dirs_count_for_every_language(
    tmp_path: Path,
) -> None:
    """sounds/custom/welcome.gsm serves every language, as Asterisk's lookup does."""
    sounds = tmp_path / "sounds"
    for lang in ("en",):
        (sounds / lang).mkdir(parents=True)
        for name in ("hello-world", "vm-press", "tt-somethingwrong", "pbx-invalid",
                     "vm-goodbye"):
            (sounds / lang / f"{name}.gsm").write_bytes(b"")
    (sounds / "custom").mkdir()
    (sounds / "custom" / "welcome.gsm").write_bytes(b"")
    flows = """\
        flows:
          start:
            steps:
              - play: [custom/welcome, hello-world]
              - menu: main
        """
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    load_config(write(tmp_path / "ok", flows=flows), sounds={"en": sounds / "en"})
    errs = errors(tmp_path / "bad", sounds={"en": sounds / "en"},
                  flows=flows.replace("custom/welcome", "custom/missing"))
    assert "sound 'custom/missing' is not installed" in str(errs)
