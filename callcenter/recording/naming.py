"""A recording's name and file, pure.

ARI's ``POST /bridges/{id}/record`` takes a *name* that Asterisk turns into the file
``<astspooldir>/recording/<name>.<format>`` (subdirectories created). The name is built
from two ids only, both checked here: the queue's name (the config's ``Name``:
``[a-z][a-z0-9_]*``) and the answered offer leg's channel id (``<caller channel
id>-o<n>``: Asterisk's ``UNIQUEID``, our suffix). Nothing the caller sends (caller ID,
DTMF) is part of it. An id that is not plainly safe (a client-chosen channel id could
hold anything) is replaced by a digest of it, so the name never holds ``/``, ``..``, a
blank or a control character, whatever the input.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = ["EXTENSIONS", "SAFE_SEGMENT", "file_of", "message_name", "recording_name",
           "safe_segment", "split_path"]

#: One path segment of a recording: letters, digits, ``.``, ``_``, ``-``; not starting
#: with a dot (no ``..``, no hidden file).
SAFE_SEGMENT: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}")

#: Asterisk's format name -> the extension of the file it writes.
EXTENSIONS: Final[dict[str, str]] = {"wav": "wav", "wav16": "wav16", "gsm": "gsm"}


#: Longest id kept as it is: room for the file's extension within one safe segment.
MAX_KEPT: Final = 64


def safe_segment(value: str) -> str:
    """*value* itself when it is a safe path segment that stays one once the file's
    extension is added (not ending in ``.``, at most :data:`MAX_KEPT` long), else ``x`` +
    a digest of it."""
    if (SAFE_SEGMENT.fullmatch(value) and ".." not in value and not value.endswith(".")
            and len(value) <= MAX_KEPT):
        return value
    return "x" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def recording_name(queue: str, leg_channel_id: str) -> str:
    """ARI's recording name for the call answered on *leg_channel_id* in *queue*:
    ``<queue>/<leg channel id>``, one directory per queue."""
    return f"{safe_segment(queue)}/{safe_segment(leg_channel_id)}"


def message_name(queue: str, caller_channel_id: str) -> str:
    """ARI's recording name for the message a caller of *queue* left after hours:
    ``<queue>/message-<caller channel id>``, beside the queue's call recordings."""
    return f"{safe_segment(queue)}/{safe_segment('message-' + caller_channel_id)}"


def file_of(name: str, format: str) -> str:
    """The file Asterisk writes for recording *name* in *format*, relative to the
    recordings directory."""
    return f"{name}.{EXTENSIONS[format]}"


def split_path(path: str) -> tuple[str, ...] | None:
    """*path* (relative, ``/``-separated) as its segments, or None unless every segment
    is safe: a stored path is checked again before any file operation."""
    parts = tuple(path.split("/"))
    if not 1 <= len(parts) <= 4:
        return None
    if any(not SAFE_SEGMENT.fullmatch(p) or ".." in p for p in parts):
        return None
    return parts
