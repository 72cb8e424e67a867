"""The pydantic bridge: validation errors located at the YAML that caused them."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from textwrap import dedent
from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    field_validator,
    model_validator,
)

from callcenter.config.errors import ConfigError, ConfigErrors
from callcenter.config.source import load_dir, load_file
from callcenter.config.validate import located, parse_model


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy(str, Enum):
    RINGALL = "ringall"
    LEASTRECENT = "leastrecent"


class Queue(_Model):
    name: str
    skills: list[str] = []
    strategy: Literal["ringall", "leastrecent"] = "ringall"
    timeout: int = 30
    wrapup: float = 0.0

    @field_validator("skills")
    @classmethod
    def _known_skills(cls, skills: list[str]) -> list[str]:
        if "frnch" in skills:
            raise ValueError("unknown skill 'frnch' (known: english, french)")
        return skills


class Settings(_Model):
    language: str = Field("en", alias="lang")
    strategy: Strategy = Strategy.RINGALL


# One-key destinations, as admins write them: {menu: main}, {queue: sales} ...
class MenuDest(_Model):
    menu: str


class QueueDest(_Model):
    queue: str
    priority: int = 0


class FlowDest(_Model):
    flow: str

    @model_validator(mode="after")
    def _not_self(self) -> FlowDest:
        if self.flow == "loop":
            raise ValueError("a flow cannot go to 'loop'")
        return self


def _dest_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in value if key in ("menu", "queue", "flow")), None)
    return None


Destination = Annotated[
    Annotated[MenuDest, Tag("menu")]
    | Annotated[QueueDest, Tag("queue")]
    | Annotated[FlowDest, Tag("flow")],
    Discriminator(_dest_kind),
]
PlainDestination = MenuDest | QueueDest | FlowDest


class PlayStep(_Model):
    type: Literal["play"]
    sound: str


class QueueStep(_Model):
    type: Literal["queue"]
    queue: str
    timeout: int = 60


Step = Annotated[PlayStep | QueueStep, Field(discriminator="type")]


class Menu(_Model):
    options: dict[Literal["0", "1", "2", "#", "*"], Destination] = {}
    timeout: int = 5
    on_timeout: PlainDestination | None = None
    fallback: Literal["hangup"] | PlainDestination = "hangup"
    prompt: str | list[str] = ""


class Root(_Model):
    queues: dict[str, Queue] = {}
    menus: dict[str, Menu] = {}
    steps: list[Step] = []
    settings: Settings = Settings()
    numbers: dict[int, str] = {}


def parse_text(tmp_path: Path, text: str, model: type[BaseModel] = Root) -> list[str]:
    """Errors from loading ``text`` as ``c.yaml`` and parsing it as ``model``."""
    (tmp_path / "c.yaml").write_text(dedent(text), encoding="utf-8")
    data, smap = load_file(tmp_path / "c.yaml")
    with pytest.raises(ConfigErrors) as caught:
        parse_model(model, data, smap)
    return [str(error).replace(f"{tmp_path}/", "") for error in caught.value.errors]


def test_valid_data_gives_the_model(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "queues:\n  sales: {name: Sales, skills: [english]}\n"
    )
    data, smap = load_file(tmp_path / "c.yaml")
    root = parse_model(Root, data, smap)
    assert root.queues["sales"].skills == ["english"]


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        queues:
          sales:
            name: Sales
            colour: red
        """,
    )
    assert errors == [
        "c.yaml:4:5: queues.sales: unknown key 'colour' (allowed: name, skills, strategy, timeout, wrapup)"
    ]


def test_unknown_key_lists_aliases(tmp_path: Path) -> None:
    assert parse_text(tmp_path, "settings: {language: en}\n") == [
        "c.yaml:1:12: settings: unknown key 'language' (allowed: lang, strategy)"
    ]


def test_missing_key_points_at_the_parent(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        queues:
          sales:
            skills: [english]
        """,
    )
    assert errors == ["c.yaml:2:3: queues.sales: missing required key 'name'"]


def test_wrong_type_points_at_the_value(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        queues:
          sales:
            name: Sales
            timeout: soon
            wrapup: [1]
        """,
    )
    assert errors == [
        "c.yaml:4:14: queues.sales.timeout: expected an integer, got 'soon'",
        "c.yaml:5:13: queues.sales.wrapup: expected a number, got a list",
    ]


def test_nested_list_index_path(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        queues:
          sales:
            name: Sales
            skills:
              - english
              - {french: 1}
        """,
    )
    assert errors == [
        "c.yaml:6:9: queues.sales.skills[1]: expected a string, got a mapping"
    ]


def test_validator_message_kept_without_prefix(tmp_path: Path) -> None:
    assert parse_text(tmp_path, "queues:\n  sales: {name: S, skills: [frnch]}\n") == [
        "c.yaml:2:28: queues.sales.skills: unknown skill 'frnch' (known: english, french)"
    ]


def test_literal_and_enum_list_expected_values(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        queues:
          sales: {name: S, strategy: random}
        settings:
          strategy: fewest
        """,
    )
    assert errors == [
        "c.yaml:2:30: queues.sales.strategy: invalid value 'random' (expected one of: ringall, leastrecent)",
        "c.yaml:4:13: settings.strategy: invalid value 'fewest' (expected one of: ringall, leastrecent)",
    ]


def test_yaml_booleans_stay_strings_for_str_fields(tmp_path: Path) -> None:
    """The Norway problem: ``no`` is a string, so a str field accepts it."""
    (tmp_path / "c.yaml").write_text("queues:\n  norway: {name: NO}\n")
    data, smap = load_file(tmp_path / "c.yaml")
    assert parse_model(Root, data, smap).queues["norway"].name == "NO"


def test_constraint_message_names_the_value(tmp_path: Path) -> None:
    class Bounded(_Model):
        timeout: Annotated[int, Field(gt=0)]

    assert parse_text(tmp_path, "timeout: -5\n", Bounded) == [
        "c.yaml:1:10: timeout: input should be greater than 0 (got -5)"
    ]


def test_invalid_dict_key_points_at_the_key(tmp_path: Path) -> None:
    assert parse_text(tmp_path, "numbers:\n  '100': a\n  ten: b\n") == [
        "c.yaml:3:3: numbers: invalid key 'ten': expected an integer, got 'ten'"
    ]


def test_menu_option_keys_are_strings(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        menus:
          main:
            options:
              1: {queue: sales}
              "#": {menu: main}
              7: {menu: main}
        """,
    )
    assert errors == [
        (
            "c.yaml:6:7: menus.main.options: invalid key '7': "
            "invalid value '7' (expected one of: 0, 1, 2, #, *)"
        )
    ]


def test_missing_top_level_key_of_a_directory_points_at_the_directory(
    tmp_path: Path,
) -> None:
    class Required(_Model):
        menus: dict[str, Menu]
        queues: dict[str, Queue]

    (tmp_path / "menus.yaml").write_text("menus: {}\n")
    data, smap = load_dir(tmp_path)
    with pytest.raises(ConfigErrors) as caught:
        parse_model(Required, data, smap)
    assert str(caught.value) == f"{tmp_path}: missing required key 'queues'"


def test_errors_across_files_point_into_each_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("queues:\n  sales: {name: 1}\n")
    (tmp_path / "b.yaml").write_text("queues:\n  support: {nme: x}\n")
    data, smap = load_dir(tmp_path)
    with pytest.raises(ConfigErrors) as caught:
        parse_model(Root, data, smap)
    assert str(caught.value).replace(f"{tmp_path}/", "").splitlines() == [
        "a.yaml:2:17: queues.sales.name: expected a string, got 1",
        # one typo, one error: the "missing required key 'name'" it causes is not repeated
        "b.yaml:2:13: queues.support: unknown key 'nme' (did you mean 'name'?)",
    ]


# -- discriminated unions (callable discriminator with tags) ---------------------------------


def test_tagged_union_tag_equal_to_a_key_is_not_doubled(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        menus:
          main:
            options:
              "1": {queue: [sales]}
              "2": {queue: sales, priority: high}
        """,
    )
    assert errors == [
        "c.yaml:4:20: menus.main.options.1.queue: expected a string, got a list",
        "c.yaml:5:37: menus.main.options.2.priority: expected an integer, got 'high'",
    ]


def test_tagged_union_member_extra_key(tmp_path: Path) -> None:
    assert parse_text(
        tmp_path, "menus:\n  main:\n    options:\n      '1': {menu: a, flow: b}\n"
    ) == ["c.yaml:4:22: menus.main.options.1: unknown key 'flow' (allowed: menu)"]


def test_tagged_union_without_a_known_tag(tmp_path: Path) -> None:
    assert parse_text(
        tmp_path, "menus:\n  main:\n    options:\n      '1': {colour: red}\n"
    ) == [
        (
            "c.yaml:4:12: menus.main.options.1: expected one of: menu, queue, flow "
            "(got a mapping with keys: colour)"
        )
    ]


def test_field_discriminator_union(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        steps:
          - type: queue
            queue: sales
            timeout: long
          - type: dance
          - sound: beep
        """,
    )
    assert errors == [
        "c.yaml:4:14: steps[0].timeout: expected an integer, got 'long'",
        "c.yaml:5:11: steps[1].type: invalid value 'dance' (expected one of: play, queue)",
        "c.yaml:6:5: steps[2]: missing required key 'type' (expected one of: play, queue)",
    ]


# -- plain unions: collapsed to the member the admin meant -----------------------------------


def test_plain_union_picks_the_member_by_its_own_key(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        menus:
          main:
            on_timeout: {queue: sales, priority: urgent}
        """,
    )
    assert errors == [
        "c.yaml:3:42: menus.main.on_timeout.priority: expected an integer, got 'urgent'"
    ]


def test_plain_union_member_with_model_validator_label_is_dropped(
    tmp_path: Path,
) -> None:
    """Pydantic labels that member ``function-after[_not_self(), FlowDest]``."""
    assert parse_text(tmp_path, "menus:\n  main:\n    on_timeout: {flow: loop}\n") == [
        "c.yaml:3:17: menus.main.on_timeout: a flow cannot go to 'loop'"
    ]


def test_plain_union_without_an_evident_member(tmp_path: Path) -> None:
    errors = parse_text(
        tmp_path,
        """\
        menus:
          a: {on_timeout: {colour: red}}
          b: {on_timeout: {menu: x, queue: y}}
          c: {on_timeout: main}
        """,
    )
    assert errors == [
        "c.yaml:2:19: menus.a.on_timeout: expected one of: menu, queue, flow (got a mapping with keys: colour)",
        "c.yaml:3:19: menus.b.on_timeout: expected one of: menu, queue, flow (got a mapping with keys: menu, queue)",
        "c.yaml:4:19: menus.c.on_timeout: expected one of: menu, queue, flow (got 'main')",
    ]


def test_plain_union_with_literal_member(tmp_path: Path) -> None:
    """A scalar cannot be meant as a model member, so the Literal member's error is the one."""
    errors = parse_text(
        tmp_path,
        """\
        menus:
          a: {fallback: hangpu}
          b: {fallback: {menu: 5}}
        """,
    )
    assert errors == [
        "c.yaml:2:17: menus.a.fallback: invalid value 'hangpu' (expected one of: hangup)",
        "c.yaml:3:24: menus.b.fallback.menu: expected a string, got 5",
    ]


def test_plain_union_scalar_member_chosen_for_a_scalar(tmp_path: Path) -> None:
    class Limited(_Model):
        prompt: Annotated[str, Field(max_length=3)] | list[str]

    assert parse_text(tmp_path, "prompt: toolong\n", Limited) == [
        "c.yaml:1:9: prompt: string should have at most 3 characters (got 'toolong')"
    ]
    assert parse_text(tmp_path, "prompt: [a, 1]\n", Limited) == [
        "c.yaml:1:13: prompt[1]: expected a string, got 1"
    ]


def test_plain_union_picks_the_member_by_literal_field(tmp_path: Path) -> None:
    class Steps(_Model):
        steps: list[PlayStep | QueueStep]

    errors = parse_text(
        tmp_path, "steps:\n  - {type: queue, timeout: 5}\n  - {type: jump}\n", Steps
    )
    assert errors == [
        "c.yaml:2:5: steps[0]: missing required key 'queue'",
        "c.yaml:3:5: steps[1]: expected one of: type: play, type: queue (got a mapping with keys: type)",
    ]


def test_root_model_and_root_level_errors(tmp_path: Path) -> None:
    class Queues(RootModel[dict[str, Queue]]):
        pass

    assert parse_text(tmp_path, "sales: {name: [x]}\n", Queues) == [
        "c.yaml:1:15: sales.name: expected a string, got a list"
    ]
    assert parse_text(tmp_path, "- a\n", Queues) == [
        "c.yaml:1:1: expected a mapping, got a list"
    ]


# -- located() -------------------------------------------------------------------------------


def test_located_for_later_checks(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "queues:\n  sales:\n    skills: [english, frnch]\n"
    )
    _, smap = load_file(tmp_path / "c.yaml")
    file = str(tmp_path / "c.yaml")
    error = located(
        smap,
        ("queues", "sales", "skills", 1),
        "unknown skill 'frnch' (known: english, french)",
    )
    assert error == ConfigError(
        file,
        3,
        23,
        "queues.sales.skills[1]",
        "unknown skill 'frnch' (known: english, french)",
    )
    assert located(
        smap, ("queues", "sales"), "defined twice", at_key=True
    ) == ConfigError(file, 2, 3, "queues.sales", "defined twice")


def test_tag_equal_to_key_inside_a_tuple(tmp_path: Path) -> None:
    """Tuples are walked by schema too, so the tag is not mistaken for the data key."""

    class Flow(_Model):
        steps: tuple[Destination, ...]

    assert parse_text(
        tmp_path, "steps:\n  - {menu: main}\n  - {queue: [x]}\n", Flow
    ) == ["c.yaml:3:13: steps[1].queue: expected a string, got a list"]
