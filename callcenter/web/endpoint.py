"""Where a running service's HTTP API answers, written into the home: ``api.json``.

``callcenter serve`` / ``run`` write it once the API listens (URL and the service's
pid) and remove it on exit; ``callcenter agents ...`` read it, with the token from
``secrets.json``, so they need no config directory and follow a port chosen in
``settings.http_api``. The file holds no secret (mode 0644).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["ENDPOINT_FILE", "ApiEndpoint", "read_endpoint", "remove_endpoint", "write_endpoint"]

ENDPOINT_FILE: Final = "api.json"


@dataclass(frozen=True, slots=True)
class ApiEndpoint:
    """The API of the service running in a home: its URL and the service's pid."""

    url: str
    pid: int

    @property
    def alive(self) -> bool:
        """Whether the process that wrote it still exists (a killed service leaves its
        file behind)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def write_endpoint(home: Path, url: str, *, pid: int | None = None) -> Path:
    """Write ``api.json`` atomically (a reader never sees half a file)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ENDPOINT_FILE
    tmp = path.with_name(f".{ENDPOINT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"url": url, "pid": pid if pid is not None else os.getpid()}))
    os.replace(tmp, path)
    return path


def read_endpoint(home: Path) -> ApiEndpoint | None:
    """The endpoint written by a service, or ``None`` (no file, or not one of ours)."""
    try:
        data = json.loads((home / ENDPOINT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("url"), str)
            and isinstance(data.get("pid"), int)):
        return None
    return ApiEndpoint(data["url"], data["pid"])


def remove_endpoint(home: Path, url: str) -> None:
    """Remove ``api.json`` if it still names *url* from this process (a service started
    since in the same home keeps its own)."""
    found = read_endpoint(home)
    if found is not None and found.url == url and found.pid == os.getpid():
        (home / ENDPOINT_FILE).unlink(missing_ok=True)
