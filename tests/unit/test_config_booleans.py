"""Only ``true``/``false`` are booleans, in every field, as the README says.

The YAML loader keeps ``yes``, ``on``, ``1`` as strings or numbers, but pydantic's lax mode
used to turn them into ``True`` in some fields (``block:``) while others rejected them, and
``Literal[True]`` took ``1`` and ``1.0``. Every boolean field now takes ``true``/``false``
only, with the same message.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from callcenter.config import campaign, models
from tests.unit.test_checks import errors, find, load

NOT_BOOLEANS = ["yes", "on", "1", '"true"', "1.0", "y", "True_"]

#: Every boolean field, with YAML that puts ``{value}`` in it and the error path.
FIELDS = {
    "CallerIdRule.block": (
        {"entry": """\
            entry_points:
              main: {numbers: ["100"], flow: start}
            caller_id_rules:
              - {name: spam, numbers: ["+15550100"], block: {value}}
            """},
        "caller_id_rules[0].block"),
    "HangupDest.hangup": (
        {"menus": """\
            menus:
              main:
                prompts: [vm-press]
                options: {"1": {queue: sales}, "2": {voicemail: general}, "3": {hangup: {value}}}
            """},
        'menus.main.options.3.hangup'),
    "BackDest.back": (
        {"menus": """\
            menus:
              main:
                prompts: [vm-press]
                options: {"1": {queue: sales}, "2": {voicemail: general}, "*": {back: {value}}}
            """},
        'menus.main.options.*.back'),
    "RepeatDest.repeat": (
        {"menus": """\
            menus:
              main:
                prompts: [vm-press]
                options: {"1": {queue: sales}, "2": {voicemail: general}, "9": {repeat: {value}}}
            """},
        'menus.main.options.9.repeat'),
    "HangupStep.hangup": (
        {"flows": """\
            flows:
              start:
                steps:
                  - play: hello-world
                  - menu: main
              other:
                steps: [{hangup: {value}}]
            """},
        "flows.other.steps[0].hangup"),
    "Announce.position": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], announce: {position: {value}}}
            agents:
              alice: {extension: "1001", skills: {sales: 5}}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.announce.position"),
    "Announce.wait": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], announce: {wait: {value}}}
            agents:
              alice: {extension: "1001", skills: {sales: 5}}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.announce.wait"),
    "Queue.language_required": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], language_required: {value}}
            agents:
              alice: {extension: "1001", skills: {sales: 5}, languages: [en]}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.language_required"),
    "RelaxStep.any_agent": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], relax: [{after: 30, any_agent: {value}}]}
            agents:
              alice: {extension: "1001", skills: {sales: 5}}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.relax[0].any_agent"),
    "ServiceLevel.count_short_abandons": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], service_level: {count_short_abandons: {value}}}
            agents:
              alice: {extension: "1001", skills: {sales: 5}}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.service_level.count_short_abandons"),
    "Record.enabled": (
        {"queues": """\
            skills: [sales]
            queues:
              sales: {skills: [sales], record: {enabled: {value}}}
            agents:
              alice: {extension: "1001", skills: {sales: 5}}
            voicemail:
              general: {mailbox: "8000", name: General}
            """},
        "queues.sales.record.enabled"),
    "Trunk.registration": (
        {"trunks": """\
            trunks:
              carrier: {host: 127.0.0.2, auth: {username: cc}, registration: {value}}
            """},
        "trunks.carrier.registration"),
    **{f"{model}.{key}": (
        {"trunks": """\
            trunks:
              carrier: {host: 127.0.0.2}
            """,
         "campaigns": """\
            campaigns:
              renewals:
                mode: preview
                agents: [alice]
                trunk: carrier
                caller_id: ["+15550100000", "+12125550100"]
                """ + yaml_line + "\n"},
        f"campaigns.renewals.{path}")
       for model, key, yaml_line, path in [
           ("Campaign", "local_presence", "local_presence: {value}", "local_presence"),
           ("Campaign", "allow_short_ring", "allow_short_ring: {value}", "allow_short_ring"),
           ("Amd", "enabled", "amd: {enabled: {value}}", "amd.enabled"),
           ("RetryRule", "retry", "retry: {busy: {retry: {value}}}", "retry.busy.retry"),
           ("Disposition", "final", "dispositions: {do_not_call: {label: DNC, final: {value}}}",
            "dispositions.do_not_call.final"),
           ("Disposition", "retry",
            "dispositions: {do_not_call: {label: DNC, final: true, retry: {value}}}",
            "dispositions.do_not_call.retry"),
       ]},
}


def _fill(files: dict[str, str], value: str) -> dict[str, str]:
    return {name: text.replace("{value}", value) for name, text in files.items()}


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("field", FIELDS)
def test_only_true_and_false_are_booleans(tmp_path: Path, field: str, value: str) -> None:
    files, path = FIELDS[field]
    error = find(errors(tmp_path, **_fill(files, value)), path)
    assert "true" in error.message and "only true/false are booleans" in error.message, error


@pytest.mark.parametrize("field", FIELDS)
def test_true_is_accepted(tmp_path: Path, field: str) -> None:
    files, path = FIELDS[field]
    try:
        load(tmp_path, **_fill(files, "true"))
    except Exception as exc:  # other checks (e.g. unreachable 'other') may object: not the field
        assert path not in str(exc), exc


def test_block_false_is_a_boolean(tmp_path: Path) -> None:
    files, _ = FIELDS["CallerIdRule.block"]
    rules = _fill(files, "false")["entry"].replace("block: false", "block: false, priority: 5")
    assert load(tmp_path, entry=rules).config.caller_id_rules[0].block is False


def _bool_fields() -> set[str]:
    """``Model.field`` for every field of every config model that can hold a bool."""
    found = set()
    for model in [*vars(models).values(), *vars(campaign).values()]:
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel:
            for name, info in model.model_fields.items():
                if _mentions_bool(info.annotation):
                    found.add(f"{model.__name__}.{name}")
    return found


def _mentions_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(arg, bool) for arg in typing.get_args(annotation))
    return any(_mentions_bool(arg) for arg in typing.get_args(annotation))


def test_every_boolean_field_is_tested() -> None:
    """A new boolean field must join FIELDS, so it is proven strict too."""
    assert _bool_fields() == set(FIELDS)
