"""Configuration errors that point at the YAML an admin has to fix.

Every problem found in the config directory, from a YAML syntax error to an unknown skill in a
queue, is reported as a :class:`ConfigError` carrying ``file:line:column`` and the dotted path of
the offending value, so an admin can jump straight to it::

    config/queues.yaml:14:9: queues.sales.skills[0]: unknown skill 'frnch' (known: english, french)

Loading and checking collect every error they find and raise them together as one
:class:`ConfigErrors`, so one run shows everything that needs fixing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigErrors", "format_path"]

# Keys that read unambiguously after a dot; anything else is written as ["key"].
_BARE_KEY = re.compile(r"[^\s.\[\]'\"]+")


@dataclass(frozen=True, order=True)
class ConfigError:
    """One problem in the configuration, located in its source file.

    ``line`` and ``column`` are 1-based. ``line == 0`` means the error concerns the file or
    directory as a whole (it does not exist, is too large, ...) and no position is printed.
    Field order makes errors sort by file, then position.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = (
            self.file if self.line == 0 else f"{self.file}:{self.line}:{self.column}"
        )
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        # A message quoting what the admin wrote must still print: a lone surrogate
        # (YAML "\ud800") cannot be encoded, so it is shown as an escape.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ConfigErrors(Exception):
    """Every error found in one load or check, sorted by file and position, duplicates removed."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors: list[ConfigError] = sorted(set(errors))
        if not self.errors:
            raise ValueError("ConfigErrors needs at least one ConfigError")
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def format_path(path: Sequence[str | int]) -> str:
    """Render a data path the way an admin reads it: ``queues.sales.skills[0]``.

    Integers are list indexes. Keys containing dots, brackets, quotes or blanks are written
    as ``["key"]`` so the rendering stays unambiguous.
    """
    out = ""
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif _BARE_KEY.fullmatch(segment) and segment.isprintable():
            out += f".{segment}" if out else segment
        else:
            # Unprintable characters and lone surrogates (from a "\ud800" escape) escaped,
            # so the path prints on any terminal.
            ascii_only = not segment.isprintable() or _has_surrogate(segment)
            out += f"[{json.dumps(segment, ensure_ascii=ascii_only)}]"
    return out


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)
