"""What the HTTP API says about a call's recordings, pure: the JSON of a recording, the
media type of its file, and the JSON Schema of both answers (OpenAPI components).

The routes (:mod:`callcenter.web.api`)::

    GET /api/v1/calls/{channel}/recordings    a call's recordings (linked or in progress)
    GET /api/v1/recordings/{recording}/audio  one recording's file (audio/wav, audio/x-gsm)

Who may: whoever may see the call (:meth:`callcenter.web.access.Access.may_see_call`):
an admin every call, a supervisor the calls of its queues, an agent the calls it
answered. The file is read below the recordings directory only, never through a
symlink (:func:`callcenter.recording.files.open_recording`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from callcenter.storage.models import QueuedCall, Recording

__all__ = ["AUDIO", "MEDIA_TYPES", "SCHEMAS", "parse_recording_id", "recording_json",
           "recordings_json"]

#: Asterisk's format -> the file's media type.
MEDIA_TYPES: Final[dict[str, str]] = {"wav": "audio/wav", "wav16": "audio/wav",
                                      "gsm": "audio/x-gsm"}
#: The media range the audio route is documented with.
AUDIO: Final = "audio/*"
_ID_MAX: Final = 18  # digits: below 2**63


def parse_recording_id(text: str) -> int | None:
    """The recording id in a path (decimal digits), or None for anything else."""
    if not text.isascii() or not text.isdigit() or len(text) > _ID_MAX:
        return None
    return int(text)


def recording_json(recording: Recording) -> dict[str, Any]:
    """One recording as the API shows it."""
    return {
        "id": recording.id,
        "queue": recording.queue,
        "agent": recording.agent,
        "format": recording.format,
        "started_at": recording.started_at.isoformat(),
        "ended_at": None if recording.ended_at is None else recording.ended_at.isoformat(),
        "path": recording.path,
        "duration": recording.duration,
        "size": recording.size,
        "audio": None if recording.path is None
        else f"/api/v1/recordings/{recording.id}/audio",
    }


def recordings_json(call: QueuedCall, recordings: Sequence[Recording]) -> dict[str, Any]:
    """A call's recordings, in the order they started."""
    return {"channel": call.channel_id, "queue": call.queue,
            "recordings": [recording_json(r) for r in recordings]}


_NUMBER_OR_NULL: Final = {"type": ["number", "null"], "minimum": 0}
_STR_OR_NULL: Final = {"type": ["string", "null"]}

#: Component name -> JSON Schema (merged into the document's components).
SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Recording": {
        "type": "object", "additionalProperties": False,
        "description": "A recording of a queued call, caller and agent mixed.",
        "required": ["id", "queue", "agent", "format", "started_at", "ended_at", "path",
                     "duration", "size", "audio"],
        "properties": {
            "id": {"type": "integer"},
            "queue": {"type": "string"},
            "agent": _STR_OR_NULL,
            "format": {"enum": sorted(MEDIA_TYPES)},
            "started_at": {"type": "string", "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time",
                         "description": "None while the call is still recorded."},
            "path": {**_STR_OR_NULL,
                     "description": "The file, relative to the recordings directory."},
            "duration": {**_NUMBER_OR_NULL, "description": "Seconds of audio."},
            "size": {"type": ["integer", "null"], "minimum": 0, "description": "Bytes."},
            "audio": {**_STR_OR_NULL, "description": "Where the file is fetched."},
        },
    },
    "RecordingList": {
        "type": "object", "additionalProperties": False,
        "description": "A call's recordings, in the order they started.",
        "required": ["channel", "queue", "recordings"],
        "properties": {
            "channel": {"type": "string"},
            "queue": {"type": "string"},
            "recordings": {"type": "array",
                           "items": {"$ref": "#/components/schemas/Recording"}},
        },
    },
}
