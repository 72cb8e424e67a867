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
