"""JSON Schema of the config, for editors (yaml-language-server).

Add to the top of a YAML file::

    # yaml-language-server: $schema=./callcenter.schema.json

after ``callcenter schema > config/callcenter.schema.json``.
"""

from __future__ import annotations

from typing import Any

from callcenter.config.models import CallCenterConfig

__all__ = ["json_schema"]


def json_schema() -> dict[str, Any]:
    """Schema of one config file: any subset of the top-level sections."""
    schema = CallCenterConfig.model_json_schema(mode="validation")
    # Sections may be split across files, so no single file must have them all.
    schema.pop("required", None)
    _closed_maps(schema)
    _unquoted_numbers(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "callcenter configuration file"
    return schema


def _closed_maps(node: Any) -> None:
    """Name-keyed maps (``flows``, ``menus`` ...) reject keys their pattern does not match.

    pydantic writes ``dict[Name, X]`` as ``patternProperties`` only, which lets
    ``Bad-Name:`` through; ``validate`` rejects it, so the editor must mark it too.
    """
    if isinstance(node, dict):
        if "patternProperties" in node and "properties" not in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _closed_maps(value)
    elif isinstance(node, list):
        for value in node:
            _closed_maps(value)


# Digit-string patterns and the integers that, written unquoted, pass them: the models
# take ``extension: 1001`` as "1001" (coerce_numbers_to_str), so the editor must too.
# A leading zero or + keeps a YAML value a string, hence the lower bounds.
_NUMERIC_PATTERNS: dict[str, tuple[int, int]] = {
    r"^[0-9]{2,10}$": (10, 10**10 - 1),
    r"^[0-9]{1,15}$": (0, 10**15 - 1),
    r"^[0-9*#+]{1,32}$|^s$": (0, 10**32 - 1),
    r"^\+?[0-9]{3,20}$": (100, 10**20 - 1),
}


def _unquoted_numbers(node: Any) -> Any:
    """Let a digit-string field also be written as an unquoted integer; returns ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _unquoted_numbers(value)
        if node.get("type") == "string" and node.get("pattern") in _NUMERIC_PATTERNS:
            low, high = _NUMERIC_PATTERNS[node["pattern"]]
            return {"anyOf": [node, {"type": "integer", "minimum": low, "maximum": high}]}
    elif isinstance(node, list):
        node[:] = [_unquoted_numbers(value) for value in node]
    return node
