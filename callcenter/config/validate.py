"""Validate loaded config data with pydantic models, reporting errors at their YAML source.

:func:`parse_model` runs ``model_validate`` and turns a pydantic ``ValidationError`` into
:class:`ConfigErrors` an admin can act on::

    config/queues.yaml:7:5: queues.sales: unknown key 'colour' (allowed: name, skills, strategy)

What it does to pydantic's errors:

* **Paths** are data paths (``queues.sales.skills[0]``): the segments pydantic adds for union
  members (``Menu``, ``function-after[check(), Menu]``, a discriminator tag) are removed. They
  are recognised by walking the model's core schema alongside the error's ``loc``, so a tag
  that happens to equal a data key is still told apart.
* **Positions**: an unknown key points at the key itself; a missing key at the key of the
  mapping that lacks it; everything else at the offending value.
* **Messages** name key, value and expectation: ``unknown key 'colour' (allowed: ...)``,
  ``missing required key 'name'``, ``expected an integer, got 'ten'``,
  ``invalid value 'rr' (expected one of: ringall, leastrecent)``. Custom validators'
  ``ValueError`` text is kept as written, without pydantic's ``Value error,`` prefix.
* **Unions**: a plain ``Union`` reports every member's errors; they are collapsed to the
  member the admin evidently meant. A member is dropped when the value is not even of its
  kind (a mapping given to a ``str`` member); among models, the one whose ``Literal`` field
  matches the value (``type: queue``), or the only one having a key the mapping uses
  (``queue: sales``), wins. When no single member is evident, one error
  ``expected one of: menu, queue, flow (got ...)`` replaces them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, SchemaError, SchemaValidator

from callcenter.config.errors import ConfigError, ConfigErrors, format_path
from callcenter.config.source import ConfigPath, Position, SourceMap

__all__ = ["located", "parse_model"]

ModelT = TypeVar("ModelT", bound=BaseModel)
Schema = dict[
    str, Any
]  # a pydantic-core schema; its shape is pydantic-core's, not ours

# Schema types that only wrap another schema without adding a loc segment, and where it is.
_WRAPPED = {
    "default": "schema",
    "nullable": "schema",
    "function-after": "schema",
    "function-before": "schema",
    "function-wrap": "schema",
    "model": "schema",
    "lax-or-strict": "lax_schema",
    "json-or-python": "python_schema",
    "definitions": "schema",
}
_SEQUENCES = frozenset({"list", "set", "frozenset"})

# Errors meaning "the value is not of the expected kind", and that kind for the admin.
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "no value",
}
# Errors whose text a model author wrote, and the prefix pydantic puts before it.
_AUTHORED = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}
# How a union member that is not a model is named in "expected one of: ...".
_MEMBER_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true/false",
    "list": "a list",
    "dict": "a mapping",
}
_ABSENT = object()  # the data has nothing at this path


def parse_model(
    model_cls: type[ModelT],
    data: Any,
    smap: SourceMap,
    *,
    pattern_words: Mapping[str, str] | None = None,
) -> ModelT:
    """Validate ``data`` (from :mod:`callcenter.config.source`) as ``model_cls``.

    Raises :class:`ConfigErrors` with every validation error located via ``smap``.
    ``pattern_words`` says each string pattern in words, for the messages.
    """
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        translator = _Translator(model_cls, data, smap, pattern_words or {})
        raise ConfigErrors(
            translator.translate(exc.errors(include_url=False))
        ) from None


def located(
    smap: SourceMap, path: ConfigPath, message: str, *, at_key: bool = False
) -> ConfigError:
    """A :class:`ConfigError` for ``path``, for checks that run after the models.

    It points at the value, or with ``at_key`` at the mapping key (e.g. for a name that is
    defined twice); a path that is not in the data points at its deepest existing ancestor.
    """
    return _error(smap.locate_key(path) if at_key else smap.locate(path), path, message)


def _error(position: Position, path: ConfigPath, message: str) -> ConfigError:
    return ConfigError(
        position.file, position.line, position.column, format_path(path), message
    )


@dataclass(frozen=True)
class _Choice:
    """A plain union an error passed through, and the member (by pydantic label) it is about."""

    at: ConfigPath
    union: Schema
    label: str


@dataclass
class _Issue:
    """One pydantic error with its loc mapped onto the data and the schema."""

    error: ErrorDetails
    path: ConfigPath = ()
    choices: list[_Choice] = field(default_factory=list)
    owner: Schema | None = None  # schema the last path segment was looked up in
    schema: Schema | None = None  # schema of the value at path
    key_error: bool = False  # the error is about a dict key, not its value


class _Translator:
    """Turns one ``ValidationError``'s errors into located :class:`ConfigError` objects."""

    def __init__(
        self,
        model_cls: type[BaseModel],
        data: Any,
        smap: SourceMap,
        pattern_words: Mapping[str, str],
    ) -> None:
        self._words = pattern_words
        self._root: Schema = model_cls.__pydantic_core_schema__
        self._data = data
        self._smap = smap
        self._refs: dict[str, Schema] = {}
        self._labels: dict[int, str | None] = {}
        self._resolve(self._root)  # registers the top-level definitions

    def translate(self, errors: Sequence[ErrorDetails]) -> list[ConfigError]:
        issues = [self._walk(error) for error in errors]
        return self._collapse(_without_knock_ons(issues), 0)

    # -- schema navigation ------------------------------------------------------------------

    def _resolve(self, schema: Schema | None) -> Schema | None:
        """Unwrap ``schema`` down to the node that decides the next loc segment."""
        while schema is not None:
            kind = schema["type"]
            if kind == "definitions":
                self._refs.update((item["ref"], item) for item in schema["definitions"])
            if kind == "definition-ref":
                schema = self._refs.get(schema["schema_ref"])
            elif kind in _WRAPPED:
                schema = schema.get(_WRAPPED[kind])
            else:
                return schema
        return None

    def _label(self, choice: Schema | tuple[Schema, str]) -> str | None:
        """The loc segment pydantic-core uses for a union member: its custom label or name."""
        if isinstance(choice, tuple):
            return choice[1]
        if id(choice) not in self._labels:
            wrapped = {
                "type": "definitions",
                "schema": choice,
                "definitions": list(self._refs.values()),
            }
            try:
                self._labels[id(choice)] = SchemaValidator(wrapped).title
            except SchemaError:
                self._labels[id(choice)] = None
        return self._labels[id(choice)]

    def _member(self, union: Schema, label: str) -> Schema | None:
        for choice in union["choices"]:
            if self._label(choice) == label:
                return choice[0] if isinstance(choice, tuple) else choice
        return None

    def _walk(self, error: ErrorDetails) -> _Issue:
        """Follow ``error["loc"]`` through schema and data, dropping union-member segments."""
        issue = _Issue(error)
        loc = error["loc"]
        schema: Schema | None = self._root
        node = self._data
        path: list[str | int] = []
        index = 0
        while index < len(loc):
            segment = loc[index]
            index += 1
            resolved = self._resolve(schema)
            kind = resolved["type"] if resolved else None
            if kind == "union" and "custom_error_type" not in resolved:
                issue.choices.append(_Choice(tuple(path), resolved, str(segment)))
                schema = self._member(resolved, str(segment))
                continue
            if kind == "tagged-union":
                tags = {str(tag): tag for tag in resolved["choices"]}
                if str(segment) in tags:
                    schema = resolved["choices"][tags[str(segment)]]
                    continue
            if kind == "model-fields":
                schema = _field(resolved, segment)
            elif kind in _SEQUENCES:
                schema = resolved.get("items_schema")
            elif kind == "tuple":
                schema = _tuple_item(resolved, segment)
            elif kind == "dict" and loc[index : index + 1] == ("[key]",):
                issue.key_error = True
                index += 1
                schema = resolved.get("keys_schema")
            elif kind == "dict":
                schema = resolved.get("values_schema")
            elif segment == "[key]":
                issue.key_error = True
                continue
            elif _child(node, segment) is _ABSENT and index < len(loc):
                continue  # schema unknown here: a segment neither in the data nor last is a label
            else:
                schema = None
            issue.owner = resolved
            path.append(segment)
            node = _child(node, segment)
        issue.path = tuple(path)
        issue.schema = self._resolve(schema)
        return issue

    def _keys(self, model_fields: Schema) -> list[str]:
        """The keys a model accepts in YAML: each field's alias, or its name."""
        return [_key(name, spec) for name, spec in model_fields["fields"].items()]

    def _models(self, union: Schema, labels: Sequence[str]) -> dict[str, Schema]:
        """The members among ``labels`` that are models, by label, as model-fields schemas."""
        models = {}
        for label in labels:
            resolved = self._resolve(self._member(union, label))
            if resolved is not None and resolved["type"] == "model-fields":
                models[label] = resolved
        return models

    # -- union collapse ---------------------------------------------------------------------

    def _collapse(self, issues: list[_Issue], depth: int) -> list[ConfigError]:
        """Errors for ``issues``, keeping per plain union only the member the admin meant."""
        errors = []
        unions: dict[tuple[ConfigPath, int], list[_Issue]] = {}
        for issue in issues:
            if len(issue.choices) <= depth:
                errors.append(self._located(issue))
            else:
                choice = issue.choices[depth]
                unions.setdefault((choice.at, id(choice.union)), []).append(issue)
        for group in unions.values():
            by_label: dict[str, list[_Issue]] = {}
            for issue in group:
                by_label.setdefault(issue.choices[depth].label, []).append(issue)
            choice = group[0].choices[depth]
            label = self._pick(choice, by_label)
            if label is None:
                errors.append(self._no_member(choice))
            else:
                errors.extend(self._collapse(by_label[label], depth + 1))
        return errors

    def _pick(self, choice: _Choice, by_label: dict[str, list[_Issue]]) -> str | None:
        """The union member the value was evidently meant to be, if exactly one is."""
        fitting = [
            label
            for label, issues in by_label.items()
            if not all(
                issue.path == choice.at and issue.error["type"] in _EXPECTED
                for issue in issues
            )
        ]
        if len(fitting) == 1:
            return fitting[0]
        value = _lookup(self._data, choice.at)
        if not isinstance(value, dict):
            return None
        models = self._models(choice.union, fitting)
        by_literal = [
            label
            for label, model in models.items()
            if any(
                key in value and value[key] in expected
                for key, expected in self._literals(model).items()
            )
        ]
        if len(by_literal) == 1:
            return by_literal[0]
        by_key = [
            label for label in models if set(value) & self._own_keys(models, label)
        ]
        return by_key[0] if len(by_key) == 1 else None

    def _own_keys(self, models: dict[str, Schema], label: str) -> set[str]:
        """Keys the model ``label`` accepts and no other model in ``models`` does."""
        others = {
            key
            for other, model in models.items()
            if other != label
            for key in self._keys(model)
        }
        return set(self._keys(models[label])) - others

    def _literals(self, model_fields: Schema) -> dict[str, list[Any]]:
        """The model's ``Literal`` fields: key -> allowed values (typical discriminators)."""
        literals = {}
        for name, spec in model_fields["fields"].items():
            resolved = self._resolve(spec["schema"])
            if resolved is not None and resolved["type"] == "literal":
                literals[_key(name, spec)] = resolved["expected"]
        return literals

    def _no_member(self, choice: _Choice) -> ConfigError:
        """One error replacing all members' errors when no member is evidently meant."""
        labels = [
            label
            for label in map(self._label, choice.union["choices"])
            if label is not None
        ]
        models = self._models(choice.union, labels)
        names = []
        for label in labels:
            if label in models:
                names.append(self._model_name(models, label))
            else:
                resolved = self._resolve(self._member(choice.union, label))
                names.append(_member_name(resolved, label))
        value = _lookup(self._data, choice.at)
        message = f"expected one of: {', '.join(names)} (got {_describe_input(value)})"
        return _error(self._smap.locate(choice.at), choice.at, message)

    def _model_name(self, models: dict[str, Schema], label: str) -> str:
        """How an admin tells this model apart: ``type: menu``, its own key, or its name."""
        model = models[label]
        others = [
            self._literals(other)
            for other_label, other in models.items()
            if other_label != label
        ]
        for key, expected in self._literals(model).items():
            if len(expected) == 1 and all(
                other.get(key) != expected for other in others
            ):
                return f"{key}: {_scalar(expected[0])}"
        own = self._own_keys(models, label)
        for name, spec in model["fields"].items():
            if spec["schema"]["type"] != "default" and _key(name, spec) in own:
                return _key(name, spec)
        return model.get("model_name", label)

    # -- messages ---------------------------------------------------------------------------

    def _located(self, issue: _Issue) -> ConfigError:
        error, path = issue.error, issue.path
        kind = error["type"]
        parent = path[:-1]
        if kind == "extra_forbidden":
            message = f"unknown key {path[-1]!r}"
            if issue.owner is not None and issue.owner["type"] == "model-fields":
                allowed = self._keys(issue.owner)
                close = _close(str(path[-1]), allowed)
                if close:
                    message += f" (did you mean {close!r}?)"
                else:
                    message += f" (allowed: {', '.join(sorted(allowed))})"
            return _error(self._smap.locate_key(path), parent, message)
        if kind == "missing":
            return _error(
                self._smap.locate_key(parent),
                parent,
                f"missing required key {path[-1]!r}",
            )
        if issue.key_error:
            message = f"invalid key {path[-1]!r}: {self._message(issue)}"
            return _error(self._smap.locate_key(path), parent, message)
        if kind.startswith("union_tag_") and _field_discriminator(issue.schema):
            # The union picks its member by a field (type: queue): talk about that field.
            discriminator, tags = issue.schema["discriminator"], _tags(issue.schema)
            if kind == "union_tag_invalid":
                tag_path = (*path, discriminator)
                message = f"invalid value {_describe(error['ctx']['tag'])} (expected one of: {tags})"
                return _error(self._smap.locate(tag_path), tag_path, message)
            message = (
                f"missing required key {discriminator!r} (expected one of: {tags})"
            )
            return _error(self._smap.locate_key(path), path, message)
        return _error(self._smap.locate(path), path, self._message(issue))

    def _message(self, issue: _Issue) -> str:
        error, schema = issue.error, issue.schema
        kind, value = error["type"], error["input"]
        if kind in ("bool_type", "bool_parsing"):
            return f"expected true or false, got {_describe(value)} (only true/false are booleans)"
        if kind in _EXPECTED:
            return f"expected {_EXPECTED[kind]}, got {_describe(value)}"
        if kind in ("literal_error", "enum"):
            if schema is not None and schema["type"] == "literal":
                allowed = [_scalar(item) for item in schema["expected"]]
            elif schema is not None and schema["type"] == "enum":
                allowed = [_scalar(member.value) for member in schema["members"]]
            else:
                allowed = [error.get("ctx", {}).get("expected", "?")]
            return f"invalid value {_describe(value)} (expected one of: {', '.join(allowed)})"
        if kind.startswith("union_tag_") and schema is not None:
            return f"expected one of: {_tags(schema)} (got {_describe_input(value)})"
        if kind == "string_pattern_mismatch":
            words = self._words.get(str(error.get("ctx", {}).get("pattern")))
            if words:
                return f"expected {words}; got {_describe(value)}"
        if kind in _AUTHORED:
            return error["msg"].removeprefix(_AUTHORED[kind])
        return f"{error['msg'][:1].lower()}{error['msg'][1:]} (got {_describe(value)})"


def _without_knock_ons(issues: list[_Issue]) -> list[_Issue]:
    """Drop errors that are consequences of another error, so one typo is one error.

    * "too short" on a list or mapping whose items have errors of their own: pydantic
      counts only the items that validated, so one bad step also reported
      "steps: tuple should have at least 1 item";
    * "missing required key 'steps'" next to an unknown key that is its misspelling
      (``stepz``): the unknown key's "did you mean 'steps'?" says it all.
    """
    # every path that has an error below it; one pass, as a file may hold thousands of errors
    above_errors = {i.path[:depth] for i in issues for depth in range(len(i.path))}

    def has_inner_error(outer: _Issue) -> bool:
        return outer.path in above_errors

    unknown: dict[ConfigPath, list[str]] = {}
    for issue in issues:
        if issue.error["type"] == "extra_forbidden" and issue.path:
            unknown.setdefault(issue.path[:-1], []).append(str(issue.path[-1]))

    def misspelt(missing: _Issue) -> bool:
        key = str(missing.path[-1]) if missing.path else ""
        return any(_close(typo, [key]) for typo in unknown.get(missing.path[:-1], []))

    return [
        i for i in issues
        if not (i.error["type"] == "too_short" and has_inner_error(i))
        and not (i.error["type"] == "missing" and misspelt(i))
    ]


def _close(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``word`` is evidently a misspelling of, if any."""
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return found[0] if found else None


def _key(name: str, spec: Schema) -> str:
    """The key a model field is written with in YAML: its validation alias if it is a name."""
    alias = spec.get("validation_alias")
    return alias if isinstance(alias, str) else name


def _field(model_fields: Schema, segment: str | int) -> Schema | None:
    for name, spec in model_fields["fields"].items():
        if segment in (name, _key(name, spec)):
            return spec["schema"]
    return None


def _tuple_item(tuple_schema: Schema, index: str | int) -> Schema | None:
    """Schema of item ``index``; ``tuple[X, ...]`` is one variadic item schema."""
    items = tuple_schema["items_schema"]
    variadic = tuple_schema.get("variadic_item_index")
    if not isinstance(index, int):
        return None
    if variadic is not None and index >= variadic:
        return items[variadic]
    return items[index] if index < len(items) else None


def _field_discriminator(schema: Schema | None) -> bool:
    """Whether a tagged union picks its member by a field (``type: queue``), not a function."""
    return (
        schema is not None
        and schema["type"] == "tagged-union"
        and isinstance(schema["discriminator"], str)
    )


def _tags(tagged_union: Schema) -> str:
    return ", ".join(map(str, tagged_union["choices"]))


def _member_name(resolved: Schema | None, label: str) -> str:
    if resolved is not None and resolved["type"] == "literal":
        return ", ".join(_scalar(item) for item in resolved["expected"])
    return _MEMBER_NAMES.get(resolved["type"] if resolved else "", label)


def _child(node: Any, segment: str | int) -> Any:
    if isinstance(node, dict) and segment in node:
        return node[segment]
    if isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
        return node[segment]
    return _ABSENT


def _lookup(data: Any, path: ConfigPath) -> Any:
    for segment in path:
        data = _child(data, segment)
    return data


def _scalar(value: Any) -> str:
    """A scalar as an admin would write it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe(value: Any) -> str:
    """A value for a message: its kind for containers, quoted text for strings."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return _scalar(value)


def _describe_input(value: Any) -> str:
    """Like :func:`_describe`, naming a mapping's keys, which is what tells union members apart."""
    if isinstance(value, dict) and value:
        return f"a mapping with keys: {', '.join(map(str, value))}"
    return _describe(value)
