"""Load a config directory: YAML -> validated models -> cross-checks.

The one entry point the CLI, the FastAGI server and the tests use. Every
problem found is raised together as :class:`ConfigErrors`, each located as
``file:line:col: key.path: message``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from callcenter.config.checks import check_config
from callcenter.config.errors import ConfigError, ConfigErrors
from callcenter.config.models import PATTERN_WORDS, CallCenterConfig
from callcenter.config.partial import Broken, partial_config
from callcenter.config.source import SourceMap, load_dir_partial
from callcenter.config.validate import located, parse_model

__all__ = ["LoadedConfig", "load_config"]


@dataclass(frozen=True)
class LoadedConfig:
    """A valid config and where each part of it came from."""

    config: CallCenterConfig
    sources: SourceMap
    directory: Path

    def where(self, path: tuple[str | int, ...]) -> str:
        """``file:line`` of a config path, relative to the config dir's parent,
        for comments in generated files (stable across machines)."""
        pos = self.sources.locate(path)
        try:
            rel = os.path.relpath(pos.file, self.directory.parent)
        except ValueError:
            rel = pos.file
        return f"{rel}:{pos.line}"


def _not_at(reported: list[ConfigError], found: Iterable[ConfigError]) -> list[ConfigError]:
    """``found`` without errors at a spot the YAML loader already reported.

    A number too large or a lone surrogate is kept as text after its error, so the models
    would only add "expected an integer" or "invalid key" about the same value.
    """
    spots = {(e.file, e.line, e.column) for e in reported}
    return [e for e in found if (e.file, e.line, e.column) not in spots]


def load_config(
    directory: str | Path,
    *,
    sounds: dict[str, Path] | None = None,
    agi_scripts: Iterable[str] | None = None,
) -> LoadedConfig:
    """Parse, validate and cross-check ``directory``; raise ConfigErrors."""
    directory = Path(directory)
    errors: list[ConfigError] = []
    data, smap, complete = load_dir_partial(directory, errors)
    if not complete:  # a file could not be parsed: validating the rest would only add noise
        raise ConfigErrors(errors)
    broken = Broken()
    try:
        config = parse_model(CallCenterConfig, data, smap, pattern_words=PATTERN_WORDS)
    except ConfigErrors as invalid:
        errors += _not_at(errors, invalid.errors)
        # Cross-check what is valid in the same round; consequences of what is not are muted.
        config, broken = partial_config(data)
    problems = check_config(config, sounds=sounds, agi_scripts=agi_scripts, broken=broken)
    errors += [located(smap, p.path, p.message) for p in problems]
    if errors:
        raise ConfigErrors(errors)
    return LoadedConfig(config, smap, directory.resolve())
