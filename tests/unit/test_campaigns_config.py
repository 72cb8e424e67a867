"""Campaigns in YAML: defaults, located errors, unsafe settings refused; phone numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config.campaign import DEFAULT_DISPOSITIONS
from callcenter.config.schema import json_schema
from callcenter.phone_numbers import (
    PhoneNumberError,
    area_code,
    is_e164,
    time_zones,
    to_e164,
)
from tests.unit.test_checks import errors, find, lines, load

TRUNKS = """\
    trunks:
      carrier: {host: 127.0.0.2, port: 5070, ring_timeout: 40}
    """

CAMPAIGN = """\
    campaigns:
      renewals:
        mode: progressive
        agents: [alice]
        trunk: carrier
        caller_id: "+15550100000"
        safe_harbor: tt-weasels
    """.rstrip(" ")


def _load(tmp_path: Path, campaign: str = CAMPAIGN):  # type: ignore[no-untyped-def]
    return load(tmp_path, trunks=TRUNKS, campaigns=campaign)


def _errors(tmp_path: Path, campaign: str) -> list[str]:
    return lines(errors(tmp_path, trunks=TRUNKS, campaigns=campaign))


def test_a_campaign_loads_with_its_defaults(tmp_path: Path) -> None:
    c = _load(tmp_path).config.campaigns["renewals"]
    assert c.caller_id == ("+15550100000",)
    assert (c.ring_seconds, c.max_attempts, c.region, c.assume_timezone) == (25, 5, "US", None)
    assert c.abandon is not None and (c.abandon.rule, c.abandon.max_percent) == ("us_30_days", 3.0)
    assert c.abandon.window_seconds == 30 * 86400
    assert c.dispositions == DEFAULT_DISPOSITIONS
    assert {"sale", "meeting_booked", "warm_transfer_sales", "promise_to_pay", "callback",
            "not_interested", "wrong_number", "do_not_call"} <= set(c.dispositions)
    assert (c.retry.busy.delay, c.retry.failed.max_attempts) == (900, 2)
    assert set(c.weekly_windows()) == {0, 1, 2, 3, 4, 5}


def test_durations_pools_windows_and_uk_rule(tmp_path: Path) -> None:
    c = _load(tmp_path, CAMPAIGN.replace('"+15550100000"', '["+15550100000", "+12125550100"]')
              + """\
        local_presence: true
        assume_timezone: Europe/London
        calling_windows: {mon-sun: "10:00-12:00, 14:00-18:00"}
        abandon: {rule: uk_24_hours}
        retry: {busy: 90s, no_answer: {delay: 2h, max_attempts: 3}, machine: false}
        amd: {enabled: true, on_machine: leave_message, message: vm-goodbye}
    """).config.campaigns["renewals"]
    assert len(c.caller_id) == 2 and c.local_presence
    assert c.abandon is not None and c.abandon.window_seconds == 86400
    assert (c.retry.busy.delay, c.retry.no_answer.delay, c.retry.no_answer.max_attempts) == (
        90, 7200, 3)
    assert c.retry.machine.retry is False
    assert [len(c.weekly_windows()[d]) for d in range(7)] == [2] * 7
    assert c.amd.message == "vm-goodbye"


def test_the_example_campaign_is_valid() -> None:
    from callcenter.config.loader import load_config
    loaded = load_config(Path(__file__).parents[2] / "config" / "example")
    renewals = loaded.config.campaigns["renewals"]
    assert renewals.trunk in loaded.config.trunks


def test_an_unknown_trunk_agent_and_skill_are_located(tmp_path: Path) -> None:
    got = _errors(tmp_path, CAMPAIGN.replace("trunk: carrier", "trunk: carier")
                  .replace("agents: [alice]", "agents: [alise]\n        skills: [sails]"))
    assert got == [
        "campaigns.yaml:4:14: campaigns.renewals.agents[0]: unknown agent 'alise' (known: alice)",
        "campaigns.yaml:5:14: campaigns.renewals.skills[0]: unknown skill 'sails' (known: sales)",
        "campaigns.yaml:6:12: campaigns.renewals.trunk: unknown trunk 'carier' (known: carrier)",
    ]


def test_ring_under_15_seconds_is_refused_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    errs = errors(tmp_path / "a", trunks=TRUNKS, campaigns=CAMPAIGN + "        ring_seconds: 10\n")
    error = find(errs, "campaigns.renewals.ring_seconds")
    assert (error.line, error.column) == (8, 19)
    assert error.message.startswith("10 s is under 15 s")
    loaded = _load(tmp_path / "b", CAMPAIGN + "        ring_seconds: 10\n        allow_short_ring: true\n")
    assert loaded.config.campaigns["renewals"].ring_seconds == 10


def test_ring_longer_than_the_trunk_allows_is_refused(tmp_path: Path) -> None:
    error = find(errors(tmp_path, trunks=TRUNKS, campaigns=CAMPAIGN + "        ring_seconds: 45\n"),
                 "campaigns.renewals.ring_seconds")
    assert "ring_timeout: 40" in error.message


def test_predictive_without_abandon_rule_or_safe_harbor_is_refused(tmp_path: Path) -> None:
    got = _errors(tmp_path, CAMPAIGN.replace("progressive", "predictive")
                  .replace("        safe_harbor: tt-weasels\n", "        abandon: null\n"))
    assert got == [
        ("campaigns.yaml:3:5: campaigns.renewals: a predictive campaign needs 'safe_harbor': the "
        "message a live answer hears when no agent is free within 2 s"),
        ("campaigns.yaml:7:14: campaigns.renewals.abandon: a predictive campaign needs an abandon "
        "rule (us_30_days or uk_24_hours): a live answer may find no free agent"),
    ]


def test_a_preview_campaign_needs_no_abandon_rule(tmp_path: Path) -> None:
    loaded = _load(tmp_path, CAMPAIGN.replace("progressive", "preview")
                   .replace("        safe_harbor: tt-weasels\n", "        abandon: null\n"))
    assert loaded.config.campaigns["renewals"].abandon is None


def test_an_abandon_limit_over_3_percent_is_refused(tmp_path: Path) -> None:
    error = find(errors(tmp_path, trunks=TRUNKS,
                        campaigns=CAMPAIGN + "        abandon: {max_percent: 5}\n"),
                 "campaigns.renewals.abandon.max_percent")
    assert "less than or equal to 3" in error.message


@pytest.mark.parametrize("extra, path, words", [
    ("        retry: {busy: 10}\n", "campaigns.renewals.retry.busy.delay",
     "invalid duration 10: write the unit (e.g. 10m)"),
    ("        retry: {busy: soon}\n", "campaigns.renewals.retry.busy.delay", "invalid duration 'soon'"),
    ("        mode: blast\n", "campaigns.renewals.mode", "invalid value 'blast'"),
    ("        amd: {enabled: true, on_machine: leave_message}\n", "campaigns.renewals.amd",
     "needs 'message'"),
    ("        assume_timezone: Mars/Olympus\n", "campaigns.renewals.assume_timezone",
     "unknown time zone"),
    ("        calling_windows: {mon-fri: \"20:00-09:00\"}\n", "campaigns.renewals.calling_windows.mon-fri",
     "ends before it starts"),
    ("        dispositions: {sale: {label: Sale, final: true}}\n", "campaigns.renewals.dispositions",
     "no 'do_not_call' disposition"),
    ("        dispositions: {do_not_call: {label: DNC, final: true, retry: true}}\n",
     "campaigns.renewals.dispositions.do_not_call", "final or retried, not both"),
    ("        local_presence: true\n", "campaigns.renewals.local_presence", "pool of caller IDs"),
    ("        colour: red\n", "campaigns.renewals", "unknown key 'colour'"),
    ("        region: ZZ\n", "campaigns.renewals.region", "unknown region 'ZZ'"),
    ("        region: us\n", "campaigns.renewals.region", "two uppercase letters"),
])
def test_bad_values_are_located(tmp_path: Path, extra: str, path: str, words: str) -> None:
    text = CAMPAIGN.replace("        mode: progressive\n", "") if "mode:" in extra else CAMPAIGN
    error = find(errors(tmp_path, trunks=TRUNKS, campaigns=text + extra), path)
    assert words in error.message
    assert error.file.endswith("campaigns.yaml") and error.line > 0


def test_agentless_needs_a_flow_or_a_message_and_no_agents(tmp_path: Path) -> None:
    got = _errors(tmp_path, CAMPAIGN.replace("progressive", "agentless"))
    assert [g.split(": ", 2)[2] for g in got] == [
        "an agentless campaign has no agents: remove 'agents' and 'skills', or pick another mode",
        ("an agentless campaign needs 'flow' (the call flow whoever answers goes through) "
         "or 'message' (the sound they hear)"),
    ]


def test_the_schema_describes_campaigns() -> None:
    schema = json_schema()
    assert "campaigns" in schema["properties"]


# -- phone numbers --------------------------------------------------------------------------

@pytest.mark.parametrize("text, region, e164", [
    ("(212) 555-0100", "US", "+12125550100"),
    ("+1 212 555 0100", None, "+12125550100"),
    ("020 7946 0000", "GB", "+442079460000"),
    ("0044 20 7946 0000", "GB", "+442079460000"),
    (" +33 1 23 45 67 89 ", "US", "+33123456789"),
])
def test_numbers_become_e164(text: str, region: str | None, e164: str) -> None:
    assert to_e164(text, region) == e164
    assert is_e164(e164)


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("call me", "letters"), ("123", "too short"),
    ("2125550100", "no country code"), ("+999 1234 5678", "unknown country code"),
    ("555-0100", "local number"), ("9" * 50, "too long"),
])
def test_what_is_not_a_number_says_why(text: str, reason: str) -> None:
    with pytest.raises(PhoneNumberError, match=reason):
        to_e164(text, None if reason == "no country code" else "US")


def test_time_zones_and_area_codes() -> None:
    assert time_zones("+12125550100") == ("America/New_York",)
    assert time_zones("+13125550100") == ("America/Chicago",)
    assert time_zones("not a number") == ()
    assert area_code("+12125550100") == "+1212"
    assert area_code("junk") is None


def test_campaign_sounds_must_be_installed(tmp_path: Path) -> None:
    root = tmp_path / "sounds" / "en"
    root.mkdir(parents=True)
    for name in ("hello-world", "vm-press", "tt-somethingwrong", "tt-weasels"):
        (root / f"{name}.gsm").write_bytes(b"\0" * 33)
    errs = errors(tmp_path, sounds={"en": root}, trunks=TRUNKS, campaigns=CAMPAIGN + (
        "        amd: {enabled: true, on_machine: leave_message, message: campaign/renewal-vm}\n"))
    assert [line for line in lines(errs) if "campaigns" in line] == [
        ("campaigns.yaml:8:62: campaigns.renewals.amd.message: sound 'campaign/renewal-vm' is "
        "not installed for language(s) en")]


def test_calling_windows_are_in_the_contacts_time(tmp_path: Path) -> None:
    import datetime as dt

    c = _load(tmp_path).config.campaigns["renewals"]  # mon-fri 09-20, sat 10-16
    utc = dt.UTC
    monday_14_utc = dt.datetime(2026, 11, 30, 14, 0, tzinfo=utc)  # 09:00 in New York
    assert c.window_open("America/New_York", monday_14_utc)
    assert not c.window_open("America/Los_Angeles", monday_14_utc)  # 06:00 there
    assert not c.window_open(None, monday_14_utc)  # unknown zone, no assume_timezone
    saturday_night = dt.datetime(2026, 12, 6, 0, 30, tzinfo=utc)  # Sat 19:30 in New York
    assert not c.window_open("America/New_York", saturday_night)
    assert c.window_open("Asia/Tokyo", dt.datetime(2026, 12, 5, 3, 0, tzinfo=utc))  # Sat 12:00
    assumed = c.model_copy(update={"assume_timezone": "America/New_York"})
    assert assumed.window_open(None, monday_14_utc)
    with pytest.raises(ValueError, match="aware"):
        c.window_open("America/New_York", dt.datetime(2026, 11, 30, 14, 0))


def test_local_presence_picks_the_contacts_area_code(tmp_path: Path) -> None:
    c = _load(tmp_path, CAMPAIGN.replace(
        '"+15550100000"', '["+15550100000", "+13125550100", "+12125550100"]')
        + "        local_presence: true\n").config.campaigns["renewals"]
    assert c.caller_id_for("+12125550177") == "+12125550100"
    assert c.caller_id_for("+13125550177") == "+13125550100"
    assert c.caller_id_for("+442079460000") == "+15550100000"  # no local number: the first
    assert c.model_copy(update={"local_presence": False}).caller_id_for(
        "+12125550177") == "+15550100000"
