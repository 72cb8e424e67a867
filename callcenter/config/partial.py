"""The valid part of an invalid config, so its cross-checks still run in the same round.

pydantic validates a whole :class:`CallCenterConfig` or nothing, so one typo in a menu used to
hide every unknown queue, dead step and missing sound elsewhere until the next run. When the
whole fails, :func:`partial_config` validates each section on its own, and each entry of a
mapping section (one flow, one menu ...) on its own, keeps what is valid and records in
:class:`Broken` what is not. The checks run on the kept part and stay quiet about what only
follows from a broken entry: a reference to a flow that failed to parse is not "unknown", a
menu that only a broken flow leads to is not "unreachable".
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from callcenter.config.models import CallCenterConfig

__all__ = ["Broken", "partial_config"]


@dataclass(frozen=True)
class Broken:
    """What failed validation: whole sections, and entries of mapping sections by name."""

    sections: frozenset[str] = frozenset()
    entries: frozenset[tuple[str, str]] = frozenset()

    def has(self, section: str, name: str) -> bool:
        """Whether ``section.name`` may exist in the YAML but failed to parse."""
        return section in self.sections or (section, name) in self.entries

    def touches(self, *sections: str) -> bool:
        """Whether any of ``sections`` lost a part (so whole-graph checks would mislead)."""
        return any(
            s in self.sections or any(e[0] == s for e in self.entries) for s in sections
        )

    def __bool__(self) -> bool:
        return bool(self.sections or self.entries)


_ADAPTERS: dict[str, tuple[str, TypeAdapter[Any]]] = {}


def _adapter(section: str) -> tuple[str, TypeAdapter[Any]]:
    """(kind, adapter): ``entry`` adapters validate a one-entry mapping, ``whole`` the value.

    A field's ``annotation`` leaves out its ``Field(min_length=...)``, so an adapter does not
    complain about a section left empty by broken entries; the full run reported that.
    """
    if section not in _ADAPTERS:
        annotation = CallCenterConfig.model_fields[section].annotation
        kind = "entry" if typing.get_origin(annotation) is dict else "whole"
        _ADAPTERS[section] = (kind, TypeAdapter(annotation))
    return _ADAPTERS[section]


def partial_config(data: Any) -> tuple[CallCenterConfig, Broken]:
    """A config of the sections and entries of ``data`` that are valid on their own.

    Missing or invalid sections take their defaults (required ones: empty) and are recorded
    as broken, as is a required section that is missing or a section an unknown key was
    probably meant to be (``flow:`` for ``flows:``).
    """
    if not isinstance(data, dict):
        data = {}
    fields = CallCenterConfig.model_fields
    broken_sections: set[str] = set()
    broken_entries: set[tuple[str, str]] = set()
    for key in data:
        if key not in fields:
            broken_sections.update(difflib.get_close_matches(key, list(fields), n=1, cutoff=0.75))
    values: dict[str, Any] = {}
    for section, info in fields.items():
        if section not in data:
            if info.is_required():
                broken_sections.add(section)
                values[section] = {}
            continue
        kind, adapter = _adapter(section)
        value = data[section]
        if kind == "entry" and isinstance(value, Mapping):
            kept: dict[str, Any] = {}
            for name, entry in value.items():
                try:
                    kept.update(adapter.validate_python({name: entry}))
                except ValidationError:
                    broken_entries.add((section, str(name)))
            values[section] = kept
            continue
        try:
            values[section] = adapter.validate_python(value)
        except ValidationError:
            broken_sections.add(section)
            values[section] = {} if info.is_required() else info.get_default(
                call_default_factory=True)
    config = CallCenterConfig.model_construct(**values)
    return config, Broken(frozenset(broken_sections), frozenset(broken_entries))
