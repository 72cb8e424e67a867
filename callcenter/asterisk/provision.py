"""Provision a real Asterisk 22 with no Docker and no system package.

Debian 12 has no ``asterisk`` package, Debian unstable has 22.x. We resolve the
packages from unstable with apt using a *private* state directory and an empty
dpkg status (so the host's package database is never touched), download the
.debs, unpack each one with ``dpkg-deb -x`` into a cache directory keyed on the
Asterisk version, and run ``asterisk`` through the unpacked tree's own dynamic
loader (``ld-linux-x86-64.so.2 --library-path …``) so that unstable's libc and
libraries are used, not the host's.

The mirror URI is taken from the host's own apt sources; nothing here names a
package registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ASTERISK_PACKAGES",
    "AsteriskInstallation",
    "ProvisionError",
    "cache_root",
    "check_mirror",
    "download_progress",
    "find_debian_mirror",
    "find_installation",
    "install",
]

log = logging.getLogger(__name__)

#: What a call center needs: the PBX, its modules, its stock config (for the
#: XML documentation and defaults), the English and Spanish core prompts and
#: music on hold for queued callers.
ASTERISK_PACKAGES: tuple[str, ...] = (
    "asterisk",
    "asterisk-modules",
    "asterisk-config",
    "asterisk-core-sounds-en-gsm",
    "asterisk-core-sounds-es-gsm",
    "asterisk-moh-opsound-gsm",
)

_SUITE = "sid"
#: Seconds between two "MB downloaded" lines.
PROGRESS_EVERY = 3.0
_COMPLETE_MARK = ".complete"


class ProvisionError(RuntimeError):
    """Asterisk could not be installed or located."""


def cache_root() -> Path:
    """Where unpacked Asterisk trees live, shared by every instance and test run."""
    env = os.environ.get("CALLCENTER_CACHE")
    if env:
        return Path(env).expanduser() / "asterisk"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "callcenter" / "asterisk"


def _multiarch() -> str:
    machine = platform.machine()
    return {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(
        machine, f"{machine}-linux-gnu"
    )


def _dpkg_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _loader_name() -> str:
    return {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}[
        platform.machine()
    ]


@dataclass(frozen=True)
class AsteriskInstallation:
    """An unpacked Asterisk tree and how to execute its binary."""

    version: str
    root: Path

    @property
    def libdir(self) -> Path:
        return self.root / "usr" / "lib" / _multiarch()

    @property
    def moddir(self) -> Path:
        return self.libdir / "asterisk" / "modules"

    @property
    def sharedir(self) -> Path:
        return self.root / "usr" / "share" / "asterisk"

    @property
    def sounds_dir(self) -> Path:
        return self.sharedir / "sounds"

    @property
    def sbin(self) -> Path:
        return self.root / "usr" / "sbin"

    def command(self, *args: str) -> list[str]:
        """argv that runs this tree's asterisk with its own loader and libraries."""
        return [
            str(self.libdir / _loader_name()),
            "--library-path",
            str(self.libdir),
            str(self.sbin / "asterisk"),
            *args,
        ]

    def sound_languages(self) -> dict[str, Path]:
        """Language code -> sounds directory, e.g. ``en`` -> ``en_US_f_Allison``.

        The packages install ``en_US_f_Allison`` and ``es_MX_f_Allison``; Debian
        points ``sounds/en`` at them with a maintainer script, which we never run.
        """
        out: dict[str, Path] = {}
        if not self.sounds_dir.is_dir():
            return out
        for entry in sorted(self.sounds_dir.iterdir()):
            m = re.fullmatch(r"([a-z]{2})_[A-Z]{2}_.+", entry.name)
            if m and entry.is_dir() and m.group(1) not in out:
                out[m.group(1)] = entry
        return out


def find_debian_mirror(sources_dirs: tuple[Path, ...] = (Path("/etc/apt"),)) -> str:
    """Return the URI of the Debian archive the host's apt already uses.

    Reads both one-line ``sources.list`` entries and deb822 ``.sources`` files
    and picks the first URI serving a plain Debian suite (not -security).
    """
    candidates: list[Path] = []
    for d in sources_dirs:
        candidates.append(d / "sources.list")
        part = d / "sources.list.d"
        if part.is_dir():
            candidates.extend(sorted(part.iterdir()))
    for path in candidates:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for uri, suites in _parse_sources(text):
            if uri.rstrip("/").endswith("/debian") and any(
                s and "security" not in s for s in suites
            ):
                return uri.rstrip("/")
    raise ProvisionError(
        "no Debian archive found in the host's apt sources (/etc/apt); "
        "set CALLCENTER_DEBIAN_MIRROR to the URI of a Debian mirror"
    )


_MIRROR = re.compile(r"(https?|file)://[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]+")


def check_mirror(uri: str) -> None:
    """A mirror URI becomes one line of an apt sources file: a space would add a
    suite, a newline another source. Only a plain URI passes."""
    if not _MIRROR.fullmatch(uri):
        raise ProvisionError(
            f"invalid Debian mirror {uri!r} (CALLCENTER_DEBIAN_MIRROR or the host's apt "
            "sources): expected a URI such as http://HOST/debian, without spaces")


def _parse_sources(text: str) -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    # deb822 stanzas
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "uris" in fields and "deb" in fields.get("types", "deb").split():
            for uri in fields["uris"].split():
                found.append((uri, fields.get("suites", "").split()))
    # one-line format
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("deb "):
            continue
        parts = re.sub(r"\[[^\]]*\]", "", line).split()
        if len(parts) >= 3:
            found.append((parts[1], [parts[2]]))
    return found


def find_installation(version: str | None = None) -> AsteriskInstallation | None:
    """The newest complete cached tree (or the one for ``version``), if any."""
    root = cache_root()
    if not root.is_dir():
        return None
    trees = sorted(
        (p for p in root.iterdir() if (p / _COMPLETE_MARK).exists()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for tree in trees:
        tree_version = (tree / _COMPLETE_MARK).read_text().strip()
        if version is None or tree_version == version:
            return AsteriskInstallation(tree_version, tree / "root")
    return None


class _PrivateApt:
    """apt-get / apt-cache with their own state, cache and sources: the host's
    dpkg database and apt lists are never read or written."""

    def __init__(self, workdir: Path, mirror: str) -> None:
        self.workdir = workdir
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                    "etc/preferences.d", "etc/apt.conf.d"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "state" / "status").touch()
        keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
        signed = f"[signed-by={keyring}] " if keyring.exists() else ""
        (workdir / "etc" / "sources.list").write_text(f"deb {signed}{mirror} {_SUITE} main\n")

    def _options(self) -> list[str]:
        w = self.workdir
        opts = {
            "Dir::State": w / "state",
            "Dir::State::status": w / "state" / "status",
            "Dir::Cache": w / "cache",
            "Dir::Etc::SourceList": w / "etc" / "sources.list",
            "Dir::Etc::SourceParts": w / "etc" / "sources.list.d",
            "Dir::Etc::Preferences": w / "etc" / "preferences",
            "Dir::Etc::PreferencesParts": w / "etc" / "preferences.d",
            "Dir::Etc::Parts": w / "etc" / "apt.conf.d",
            "APT::Architecture": _dpkg_arch(),
            "APT::Install-Recommends": "false",
            "Debug::NoLocking": "true",
        }
        out: list[str] = []
        for key, value in opts.items():
            out += ["-o", f"{key}={value}"]
        return out

    def run(self, tool: str, *args: str, on_line: Callable[[str], None] | None = None) -> str:
        """Run ``tool``; with ``on_line``, hand it each line of output as it comes."""
        cmd = [tool, *self._options(), *args]
        if on_line is None:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            stdout, stderr = proc.stdout, proc.stderr
        else:
            with tempfile.TemporaryFile("w+") as err, subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=err, text=True, errors="replace"
            ) as proc:
                assert proc.stdout is not None
                lines = []
                for line in proc.stdout:
                    lines.append(line)
                    on_line(line)
                proc.wait()
                err.seek(0)
                stdout, stderr = "".join(lines), err.read()
        if proc.returncode != 0:
            raise ProvisionError(
                f"{tool} {' '.join(args)} failed (exit {proc.returncode}):\n{stderr[-2000:]}"
            )
        return stdout

    def candidate_version(self, package: str) -> str:
        out = self.run("apt-cache", "policy", package)
        m = re.search(r"Candidate:\s*(\S+)", out)
        if not m or m.group(1) == "(none)":
            raise ProvisionError(f"package {package!r} not found in Debian {_SUITE}")
        return m.group(1)

    @property
    def archives(self) -> Path:
        return self.workdir / "cache" / "archives"


def _cache_key(version: str) -> str:
    """A directory name from the Debian version (``1:22.10.1+dfsg+…-1``) and
    the package set, so adding a package to the set unpacks a new tree."""
    upstream = version.split(":", 1)[-1]
    upstream = upstream.split("+", 1)[0].split("~", 1)[0].rsplit("-", 1)[0]
    packages = hashlib.sha256(" ".join(ASTERISK_PACKAGES).encode()).hexdigest()[:8]
    return f"asterisk-{re.sub(r'[^A-Za-z0-9.]+', '_', upstream)}-{_dpkg_arch()}-{packages}"


def install(
    *,
    force: bool = False,
    mirror: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> AsteriskInstallation:
    """Resolve, download and unpack Asterisk from Debian unstable into the cache.

    Idempotent: when the current candidate version is already unpacked, this
    costs one ``apt-get update`` of a private list. When the archive cannot be
    reached but a tree is cached, the cached tree is used.

    ``progress`` gets a line per step and per package downloaded (the first
    install fetches some 80 packages, a minute or more on a slow line).
    """
    say = progress or (lambda line: None)
    for tool in ("apt-get", "apt-cache", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise ProvisionError(f"{tool} not found: provisioning needs a Debian-based host")
    mirror = mirror or os.environ.get("CALLCENTER_DEBIAN_MIRROR") or find_debian_mirror()
    check_mirror(mirror)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    # Two processes provisioning at once (pytest-xdist workers) would share the
    # private apt state and unpack the same tree: the second waits for the first,
    # then finds the tree complete.
    with _cache_lock(root):
        return _install_locked(root, mirror, force=force, say=say)


@contextlib.contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    """An exclusive flock on ``root/.lock`` for the time of one install."""
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install_locked(root: Path, mirror: str, *, force: bool,
                    say: Callable[[str], None]) -> AsteriskInstallation:
    apt = _PrivateApt(root / "apt", mirror)
    try:
        say(f"Asterisk: reading the package list of Debian {_SUITE} from {mirror}")
        apt.run("apt-get", "-q", "update")
        version = apt.candidate_version("asterisk")
    except ProvisionError:
        cached = find_installation()
        if cached is not None and not force:
            log.warning("Debian archive unreachable; using cached Asterisk %s", cached.version)
            return cached
        raise
    tree = root / _cache_key(version)
    if (tree / _COMPLETE_MARK).exists() and not force:
        log.info("Asterisk %s already unpacked in %s", version, tree)
        os.utime(tree)  # newest first for find_installation()
        return AsteriskInstallation(version, tree / "root")

    log.info("downloading Asterisk %s and its libraries from Debian %s", version, _SUITE)
    say(f"Asterisk {version}: downloading it and its libraries into {root}")
    with _ByteCounter(apt.archives, say):
        apt.run("apt-get", "-q", "-y", "install", "--download-only", *ASTERISK_PACKAGES,
                on_line=lambda line: _report_download(line, say))
    debs = sorted(apt.archives.glob("*.deb"))
    if not debs:
        raise ProvisionError("apt resolved no packages to unpack")
    say(f"Asterisk {version}: unpacking {len(debs)} packages")
    # Unpack into a temporary sibling and rename: a half-unpacked tree is never
    # mistaken for a complete one, even if this process is killed.
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging / "root")], check=True)
        (staging / _COMPLETE_MARK).write_text(version + "\n")
        if tree.exists():
            shutil.rmtree(tree)
        staging.rename(tree)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for deb in debs:  # the unpacked tree is the cache; keep no second copy
        deb.unlink(missing_ok=True)
    installation = AsteriskInstallation(version, tree / "root")
    if not Path(installation.command()[0]).exists():
        raise ProvisionError(f"unpacked tree has no dynamic loader at {installation.command()[0]}")
    log.info("Asterisk %s unpacked in %s", version, tree)
    say(f"Asterisk {version}: ready in {tree}")
    return installation


def download_progress(line: str) -> str | None:
    """apt-get's output line -> a progress line, or None for the rest.

    ``Get:12 http://… sid/main amd64 libssl3t64 amd64 3.3.2-2 [2,240 kB]`` becomes
    ``  [12] libssl3t64 3.3.2-2 (2,240 kB)``; ``Need to get 85.2 MB of archives.``
    is kept as it is.
    """
    line = line.strip()
    if line.startswith("Need to get "):
        return line
    m = re.match(r"Get:(\d+)\s+\S+\s+\S+\s+\S+\s+(\S+)\s+\S+\s+(\S+)(?:\s+\[(.+)\])?", line)
    if m is None:
        return None
    size = f" ({m.group(4)})" if m.group(4) else ""
    return f"  [{m.group(1)}] {m.group(2)} {m.group(3)}{size}"


class _ByteCounter:
    """While apt downloads, say every few seconds how many MB are on disk (complete and
    partial .debs): progress even if apt holds its own lines back in a pipe buffer."""

    def __init__(self, archives: Path, say: Callable[[str], None]) -> None:
        self.archives, self.say, self.every = archives, say, PROGRESS_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="download-progress", daemon=True)

    def __enter__(self) -> _ByteCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def downloaded(self) -> int:
        total = 0
        for d in (self.archives, self.archives / "partial"):
            for deb in d.glob("*.deb"):
                with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
                    total += deb.stat().st_size
        return total

    def _run(self) -> None:
        shown = 0
        while not self._stop.wait(self.every):
            now = self.downloaded()
            if now != shown:
                self.say(f"  {now / 1e6:.1f} MB downloaded")
                shown = now


def _report_download(line: str, say: Callable[[str], None]) -> None:
    shown = download_progress(line)
    if shown is not None:
        say(shown)
