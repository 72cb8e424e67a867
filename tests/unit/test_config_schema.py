"""``callcenter schema`` describes the YAML people write, checked with a standard validator.

yaml-language-server marks what the JSON Schema rejects, so the schema must accept every
valid config file on its own (a split config: any subset of the sections per file), in the
shorthands the models accept (one sound for a list, hours as ``"08:00-20:00"``, dates as
strings), and still reject what ``validate`` rejects for its shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from callcenter.cli import main
from callcenter.config.schema import json_schema
from callcenter.config.source import load_file
from tests.unit import test_checks, test_generator, test_simulate

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """The schema exactly as ``callcenter schema`` prints it."""
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def from_yaml(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "c.yaml"
    path.write_text(dedent(text))
    return load_file(path)[0]


def _test_configs() -> dict[str, str]:
    """Every valid config file the tests load, by name, as YAML text."""
    configs = {f"example/{p.name}": p.read_text() for p in sorted(EXAMPLE.glob("*.yaml"))}
    configs.update({f"test_checks/{name}": dedent(text)
                    for name, text in test_checks.BASE.items()})
    configs.update({f"test_generator/{name}": dedent(text).format(desc='"x"')
                    for name, text in test_generator._INJECT_CONFIG.items()})
    configs.update({f"test_simulate/{section}.yaml": json.dumps({section: value})
                    for section, value in test_simulate._small().items()})
    return configs


TEST_CONFIGS = _test_configs()


@pytest.mark.parametrize("name", TEST_CONFIGS)
def test_every_valid_config_file_passes_the_schema(
        tmp_path: Path, validator: jsonschema.Draft202012Validator, name: str) -> None:
    assert problems(validator, from_yaml(tmp_path, TEST_CONFIGS[name])) == []


def test_the_example_as_one_file_passes(validator: jsonschema.Draft202012Validator) -> None:
    merged: dict[str, Any] = {}
    for path in sorted(EXAMPLE.glob("*.yaml")):
        merged.update(load_file(path)[0])
    assert problems(validator, merged) == []


@pytest.mark.parametrize("text", [
    "flows: {a: {steps: [{play: hello-world}]}}",
    "flows: {a: {steps: [{play: [hello-world, digits/1]}]}}",
    "schedules: {s: {hours: {mon-fri: '08:00-12:00, 13:00-20:00', sun: closed}}}",
    "schedules: {s: {hours: {sat: [{start: '09:00', end: '13:00'}]}}}",
    "schedules: {s: {hours: {}, holidays: [{date: 2026-12-25, until: 2026-12-26}]}}",
    "schedules: {s: {hours: {}, special_days: [{date: 2026-12-24, hours: '08:00-12:00'}]}}",
    "settings: {failure_prompts: tt-somethingwrong}",
    "menus: {m: {prompts: vm-press, options: {'1': {hangup: true}, '*': {back: true}}}}",
    "skills: [sales]",
    "{}",
])
def test_shorthands_admins_write_pass(
        tmp_path: Path, validator: jsonschema.Draft202012Validator, text: str) -> None:
    assert problems(validator, from_yaml(tmp_path, text)) == []


@pytest.mark.parametrize("text", [
    "flows: {a: {steps: [{play: 'no spaces'}]}}",
    "flows: {a: {steps: [{play: hello}, ]}, b: 1}",
    "schedules: {s: {hours: {mon: '8-20'}}}",
    "schedules: {s: {hours: {monday: closed}}}",
    "schedules: {s: {hours: {mon: '08:00-25:00'}}}",
    "caller_id_rules: [{name: a, numbers: ['+15550100'], block: yes}]",
    "menus: {m: {prompts: vm-press, options: {'1': {hangup: 1}}}}",
    "menus: {m: {prompts: vm-press, options: {'10': {hangup: true}}}}",
    "menus: {m: {prompts: vm-press, options: {'1': {queue: sales}}, colour: red}}",
    "sections: {}",
    "flows: {Bad-Name: {steps: [{hangup: true}]}}",
])
def test_what_validate_rejects_for_its_shape_fails(
        tmp_path: Path, validator: jsonschema.Draft202012Validator, text: str) -> None:
    assert problems(validator, from_yaml(tmp_path, text)) != []


def test_lookup_variables_are_described_in_the_schema() -> None:
    """An editor shows, on a lookup or a branch, which variables a lookup sets."""
    text = json.dumps(json_schema())
    for name in ("CC_LOOKUP_STATUS", "CC_ACCOUNT_ID", "CC_ACCOUNT_NAME", "CC_ACCOUNT_LANGUAGE",
                 "CC_ACCOUNT_VIP"):
        assert name in text, name


@pytest.mark.parametrize("text, ok", [
    ("entry_points: {main: {numbers: [5551000, '+15551000'], flow: start}}", True),
    ("agents: {alice: {extension: 1001}}", True),
    ("voicemail: {general: {mailbox: 8000, name: General}}", True),
    ("agents: {alice: {extension: 7}}", False),       # 2 to 10 digits
    ("agents: {alice: {extension: -10}}", False),
])
def test_unquoted_numbers_as_validate_reads_them(
        tmp_path: Path, validator: jsonschema.Draft202012Validator, text: str, ok: bool) -> None:
    """``extension: 1001`` is the string "1001" to the models, so the schema takes it too."""
    assert (problems(validator, from_yaml(tmp_path, text)) == []) is ok
