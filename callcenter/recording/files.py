"""The recordings directory (``<astspooldir>/recording``), read and pruned safely.

Every operation walks from the directory itself, one segment at a time, with
``O_NOFOLLOW`` and directory file descriptors (``dir_fd``): a symlink planted anywhere
below it (``sales -> /etc``, ``x.wav -> /etc/passwd``) is refused, never followed, so
nothing outside the directory is read or removed, and a path is re-checked segment by
segment (:func:`~callcenter.recording.naming.split_path`) before it is used.
"""

from __future__ import annotations

import contextlib
import os
import stat
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from callcenter.recording.naming import EXTENSIONS, SAFE_SEGMENT, split_path

__all__ = ["FileInfo", "StoredFile", "measure", "open_recording", "remove", "scan"]

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: GSM 06.10 as Asterisk writes it: 33 bytes per 20 ms frame.
_GSM_FRAME: Final = (33, 0.020)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What the call record keeps of a finished recording's file."""

    path: str
    size: int
    #: Seconds of audio (from the WAV header, or the size for headerless formats).
    duration: float


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A recording file found on disk (retention judges it by its mtime)."""

    path: str
    queue: str
    modified: datetime


@contextlib.contextmanager
def _parent(root: Path, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor of the directory that holds ``parts[-1]``, reached without
    following a symlink below *root*."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_recording(root: Path, path: str) -> BinaryIO | None:
    """The regular file *path* below *root*, open for reading; None when it is missing,
    unsafe, a symlink or not a regular file."""
    parts = split_path(path)
    if parts is None:
        return None
    try:
        with _parent(root, parts) as parent:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=parent)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def measure(root: Path, path: str, format: str) -> FileInfo | None:
    """Size and duration of the recording file *path* (None: no such regular file)."""
    handle = open_recording(root, path)
    if handle is None:
        return None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        return FileInfo(path, size, _duration(handle, size, format))


def _duration(handle: BinaryIO, size: int, format: str) -> float:
    if format in ("wav", "wav16"):
        try:
            with wave.open(handle, "rb") as audio:
                rate = audio.getframerate()
                if rate > 0:
                    return audio.getnframes() / rate
        except (wave.Error, EOFError):
            pass
        # A header never finalised (Asterisk stopped mid-write): 16-bit mono PCM.
        rate = 16000 if format == "wav16" else 8000
        return max(size - 44, 0) / (2 * rate)
    frame_bytes, frame_seconds = _GSM_FRAME
    return size // frame_bytes * frame_seconds


def remove(root: Path, path: str) -> bool:
    """Remove the regular file *path* below *root*; False when it was missing, unsafe,
    a symlink or not a regular file (nothing is removed then)."""
    parts = split_path(path)
    if parts is None:
        return False
    try:
        with _parent(root, parts) as parent:
            info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                return False
            os.unlink(parts[-1], dir_fd=parent)
    except OSError:
        return False
    return True


def scan(root: Path, queues: frozenset[str], limit: int) -> list[StoredFile]:
    """Recording files directly in ``<root>/<queue>/`` for *queues* (at most *limit*
    entries looked at, so one pass is bounded however many files lie there)."""
    found: list[StoredFile] = []
    seen = 0
    extensions = {f".{ext}" for ext in EXTENSIONS.values()}
    for queue in sorted(queues):
        if not SAFE_SEGMENT.fullmatch(queue):
            continue
        try:
            with _parent(root, (queue, "")) as directory, os.scandir(directory) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        return found
                    if not SAFE_SEGMENT.fullmatch(entry.name) or \
                            os.path.splitext(entry.name)[1] not in extensions:
                        continue
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISREG(info.st_mode):
                        found.append(StoredFile(f"{queue}/{entry.name}", queue,
                                                datetime.fromtimestamp(info.st_mtime, UTC)))
        except OSError:
            continue  # no such directory (nothing recorded yet) or not a real one
    return found
