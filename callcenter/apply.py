"""Install generated config into an Asterisk and prove it loaded, or roll back.

Order, and why:

1. validate (a broken config never touches the PBX);
2. write the new generation into ``etc/callcenter.new`` (every file 0600: the
   agents' softphone passwords are part of it) and swap directories
   with two renames, keeping the previous generation in ``etc/callcenter.prev``;
3. reload the dialplan, PJSIP and voicemail;
4. ask Asterisk for the generation marker (``cc-meta``, extension
   ``generation``) and compare it with the hash of what we wrote — the proof
   that Asterisk parsed *this* dialplan, since ``dialplan reload`` says
   "reloaded" even when a file was rejected;
5. compare every generated context, extension and priority count with what
   Asterisk shows (``dialplan show``): a file can load while single lines are
   refused (``Unable to register extension ... already in use`` for two names
   Asterisk considers equal), and then calls go where nobody wrote;
6. on any mismatch, put the previous generation back, reload again and fail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from callcenter.asterisk.instance import AsteriskInstance

__all__ = [
    "ApplyError",
    "ApplyResult",
    "apply_files",
    "dialplan_differences",
    "generated_dialplan",
    "generation_marker",
    "loaded_dialplan",
    "write_generation",
    "write_private",
]

log = logging.getLogger(__name__)

META_CONTEXT = "cc-meta"


class ApplyError(RuntimeError):
    """Asterisk did not load the new generation; the previous one is back."""


@dataclass(frozen=True)
class ApplyResult:
    generation: str
    reloaded: bool
    directory: Path


def generation_marker(files: dict[str, str]) -> str:
    """Short hash of a generation, the same for the same files."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:16]


def with_marker(files: dict[str, str]) -> tuple[dict[str, str], str]:
    """Append the ``cc-meta`` context that carries the generation hash."""
    marker = generation_marker(files)
    out = dict(files)
    out["extensions_callcenter.conf"] = (
        files["extensions_callcenter.conf"]
        + f"\n[{META_CONTEXT}]\n; Generation marker, checked by 'callcenter apply'.\n"
        + f"exten => generation,1,NoOp({marker})\n"
    )
    return out, marker


def write_generation(target: Path, files: dict[str, str]) -> None:
    """Replace ``target`` with ``files``; keep the old one as ``<target>.prev``."""
    new = target.with_name(target.name + ".new")
    prev = target.with_name(target.name + ".prev")
    if new.exists():
        shutil.rmtree(new)
    new.mkdir(parents=True)
    for name, text in files.items():
        # 0600: the agents' softphone passwords are in the generation (and Asterisk
        # runs as our user); the others follow, so no file is ever forgotten.
        write_private(new / name, text)
    if target.exists():
        if prev.exists():
            shutil.rmtree(prev)
        target.rename(prev)
    new.rename(target)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that is mode 0600 from its first byte."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _rollback(target: Path) -> bool:
    prev = target.with_name(target.name + ".prev")
    if not prev.exists():
        return False
    failed = target.with_name(target.name + ".failed")
    if failed.exists():
        shutil.rmtree(failed)
    target.rename(failed)
    prev.rename(target)
    return True


def _reload(instance: AsteriskInstance) -> None:
    for command in ("dialplan reload", "module reload res_pjsip.so", "voicemail reload"):
        instance.cli(command, check=False)


def _loaded_marker(instance: AsteriskInstance) -> str | None:
    _, out = instance.cli(f"dialplan show generation@{META_CONTEXT}", check=False)
    for line in out.splitlines():
        if "NoOp(" in line:
            return line.split("NoOp(", 1)[1].split(")", 1)[0]
    return None


#: context -> extension -> number of priorities.
Dialplan = dict[str, dict[str, int]]

_CONTEXT = re.compile(r"^\[(?P<name>[^\]\s]+)\]")
_EXTEN = re.compile(r"^exten\s*=>\s*(?P<name>[^,]+),")
_SAME = re.compile(r"^\s*same\s*=>")


def generated_dialplan(text: str) -> Dialplan:
    """Contexts, extensions and priority counts of a generated extensions file.

    Reads only the regular shape the generator writes (``[ctx]``,
    ``exten => name,1,...``, `` same => n,...``), not any dialplan.
    """
    out: Dialplan = {}
    context: dict[str, int] | None = None
    exten = ""
    for line in text.splitlines():
        if m := _CONTEXT.match(line):
            context = out.setdefault(m["name"], {})
        elif context is not None and (m := _EXTEN.match(line)):
            exten = m["name"].strip()
            context[exten] = context.get(exten, 0) + 1
        elif context is not None and exten and _SAME.match(line):
            context[exten] += 1
    return out


_SHOW_CONTEXT = re.compile(r"^\[ Context '(?P<name>[^']+)' created by '[^']*' \]")
_SHOW_PRIORITY = re.compile(
    r"^\s+(?:'(?P<exten>[^']*)' =>)?\s*(?:\[[^\]]*\])?\s*(?P<prio>\d+)\.\s")


def loaded_dialplan(show: str) -> Dialplan:
    """The same shape, from ``dialplan show`` output: what Asterisk really has."""
    out: Dialplan = {}
    context: dict[str, int] | None = None
    exten = ""
    for line in show.splitlines():
        if m := _SHOW_CONTEXT.match(line):
            context = out.setdefault(m["name"], {})
            exten = ""
        elif context is not None and (m := _SHOW_PRIORITY.match(line)):
            if m["exten"] is not None:
                exten = m["exten"]
            if exten:
                context[exten] = context.get(exten, 0) + 1
    return out


def dialplan_differences(expected: Dialplan, loaded: Dialplan, limit: int = 10) -> list[str]:
    """What was generated but is not loaded (missing contexts, extensions, priorities)."""
    problems: list[str] = []
    for ctx, extens in expected.items():
        have = loaded.get(ctx)
        if have is None:
            problems.append(f"context {ctx} not loaded")
            continue
        for exten, count in extens.items():
            got = have.get(exten, 0)
            if got != count:
                problems.append(f"{exten}@{ctx}: {got} of {count} priorities loaded")
    if len(problems) > limit:
        problems = problems[:limit] + [f"... and {len(problems) - limit} more"]
    return problems


def _unloaded(instance: AsteriskInstance, files: dict[str, str]) -> list[str]:
    expected = generated_dialplan(files["extensions_callcenter.conf"])
    _, show = instance.cli("dialplan show", check=False)
    return dialplan_differences(expected, loaded_dialplan(show))


def apply_files(instance: AsteriskInstance, files: dict[str, str]) -> ApplyResult:
    """Write ``files`` into the instance's Asterisk config and reload it."""
    files, marker = with_marker(files)
    target = instance.generated_dir
    write_generation(target, files)
    if not instance.is_running():
        log.info("generation %s written to %s; Asterisk is not running", marker, target)
        return ApplyResult(marker, False, target)
    _reload(instance)
    loaded = _loaded_marker(instance)
    if loaded != marker:
        problem = f"Asterisk did not load generation {marker} (it reports {loaded or 'none'})"
    else:
        missing = _unloaded(instance, files)
        problem = ("Asterisk refused part of generation " + marker + ": " + "; ".join(missing)
                   if missing else "")
    if problem:
        restored = _rollback(target)
        if restored:
            _reload(instance)
        raise ApplyError(
            problem + "; "
            + ("the previous generation was restored" if restored else "no previous generation")
            + f"; the rejected files are in {target.with_name(target.name + '.failed')}; "
            f"see {instance.log_dir / 'messages.log'}"
        )
    log.info("generation %s loaded by Asterisk", marker)
    return ApplyResult(marker, True, target)
