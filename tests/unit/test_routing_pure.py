"""``callcenter.routing`` is pure: it imports no I/O library (the style's one-way imports:
apps -> routing -> config), so decisions are testable on a fake clock and cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import callcenter.routing

ROUTING = Path(callcenter.routing.__file__).parent
#: Everything a routing module may import.
ALLOWED = {"__future__", "re", "bisect", "collections.abc", "dataclasses", "itertools",
           "callcenter.config.models"}


def test_routing_modules_import_only_pure_modules() -> None:
    found = set()
    for path in ROUTING.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    assert {m for m in found if not m.startswith("callcenter.routing")} <= ALLOWED


def test_importing_routing_loads_no_io_library() -> None:
    code = ("import sys, callcenter.routing; "
            "print(' '.join(m for m in ('aiohttp', 'asyncio', 'sqlalchemy', 'yaml', 'click') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60, cwd=ROUTING.parents[1])
    assert out.stdout.strip() == ""
