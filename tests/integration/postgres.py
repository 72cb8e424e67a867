"""A private, throw-away PostgreSQL cluster for tests (``initdb`` + ``pg_ctl``).

It listens on a free 127.0.0.1 port, runs as the ``postgres`` user when the tests run
as root (PostgreSQL refuses to run as root), and is stopped and deleted afterwards. It
needs the Debian package ``postgresql`` (server binaries under
``/usr/lib/postgresql/<version>/bin``) and the ``asyncpg`` driver (``pip install -e
.[postgres]``). When either is missing the tests FAIL: a PostgreSQL-ready claim that
silently skips is no claim at all.

The session fixture ``postgres_server`` (``tests/conftest.py``) runs one cluster for
every test that needs it (storage tests, several routers sharing one database); each
test gets a database of its own (:func:`new_database`), so tests cannot leak rows.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from callcenter.testing.ports import free_port

__all__ = ["PostgresServer", "new_database", "postgres_cluster"]

_COMMAND_TIMEOUT_S = 120


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"


def _server_bindir() -> Path:
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(
        versions,
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    pytest.fail("PostgreSQL server binaries not found: apt-get install -y postgresql")


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"PostgreSQL {what} failed: {exc}")
    if done.returncode != 0:
        server_log = (
            log.read_text(errors="replace") if log is not None and log.exists() else ""
        )
        pytest.fail(
            f"PostgreSQL {what} failed (exit {done.returncode}): {' '.join(argv)}\n"
            f"{done.stdout}{done.stderr}{server_log}"
        )


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster, stopped and deleted when the block ends."""
    bindir = _server_bindir()
    as_postgres: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="callcenter-pg-"))
    if os.geteuid() == 0:
        # The server refuses to run as root; hand the cluster to the system account.
        if shutil.which("runuser") is None:
            pytest.fail(
                "running as root needs runuser (util-linux) to start PostgreSQL"
            )
        try:
            shutil.chown(workdir, user="postgres", group="postgres")
        except (LookupError, OSError) as exc:
            pytest.fail(f"cannot hand {workdir} to the 'postgres' user: {exc}")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log, port = workdir / "data", workdir / "server.log", free_port()
    _run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        "initdb",
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={workdir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    _run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        "start",
        log,
    )
    try:
        yield PostgresServer("127.0.0.1", port, "postgres")
    finally:
        subprocess.run(
            [
                *as_postgres,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)


_database_numbers = itertools.count(1)


async def new_database(postgres_server: PostgresServer) -> str:
    """A new, empty database in the cluster (never migrated); its SQLAlchemy URL."""
    name = f"callcenter_test_{next(_database_numbers)}"
    admin = await asyncpg.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        database="postgres",
        timeout=30,
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return postgres_server.url(name)
