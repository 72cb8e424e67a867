"""The account dip done the native Asterisk way: ``func_odbc`` on the same SQLite file.

This is what a telephony engineer writes instead of a FastAGI script: a dialplan
function defined in ``func_odbc.conf`` whose ``readsql`` runs inside Asterisk through
``res_odbc``'s connection pool and unixODBC's SQLite driver (Debian ``libsqliteodbc``).
It reads the same ``accounts`` table the FastAGI ``account_lookup`` reads (the database
``callcenter db seed-demo`` filled) and sets the same channel variables::

    same => n,Set(ARRAY(CC_ACCOUNT_ID,CC_ACCOUNT_NAME,CC_ACCOUNT_LANGUAGE,CC_ACCOUNT_VIP)=
                  ${ODBC_CC_ACCOUNT(${FILTER(0-9,${CALLERID(num)})})})
    same => n,Set(CC_LOOKUP_STATUS=${IF($[0${ODBCROWS} > 0]?found:not_found)})

Only the bench uses this: the product's modules.conf does not load ``res_odbc`` /
``func_odbc`` (``noload``), so the bench writes ``res_odbc.conf`` and ``func_odbc.conf``
into the instance's etc dir, points unixODBC at its own ``odbc.ini`` (``ODBCSYSINI`` in
the environment Asterisk inherits) and runs the instance with those three ``noload``
lines dropped (:class:`OdbcAsteriskInstance`). The key reaches SQL through ``SQL_ESC``
after ``FILTER(0-9,...)``.

Text builders are pure; :func:`install_files`, :class:`OdbcAsteriskInstance` and
:func:`check_loaded` do the I/O.
"""

from __future__ import annotations

from pathlib import Path

from callcenter.asterisk import variables as V
from callcenter.asterisk.instance import AsteriskInstance

__all__ = ["DSN", "FUNCTION", "OdbcAsteriskInstance", "OdbcTwinError", "allow_modules",
           "check_loaded", "dip_lines", "find_driver", "func_odbc_conf", "install_files",
           "odbc_ini", "res_odbc_conf"]

DSN = "cc-accounts"
#: func_odbc prefixes ``ODBC_``: the dialplan calls ``ODBC_CC_ACCOUNT(key)``.
FUNCTION = "CC_ACCOUNT"
_MODULES = ("res_odbc.so", "res_odbc_transaction.so", "func_odbc.so")

#: Where Debian's ``libsqliteodbc`` puts the SQLite 3 driver.
_DRIVER_PATHS = tuple(
    Path(f"/usr/lib/{arch}/odbc/libsqlite3odbc.so")
    for arch in ("x86_64-linux-gnu", "aarch64-linux-gnu")
)


class OdbcTwinError(RuntimeError):
    """The func_odbc twin cannot run here (driver missing, module not loaded)."""


def find_driver(candidates: tuple[Path, ...] = _DRIVER_PATHS) -> Path:
    """The SQLite ODBC driver, or a clear error naming the package to install."""
    for path in candidates:
        if path.exists():
            return path
    raise OdbcTwinError("the SQLite ODBC driver (libsqlite3odbc.so) is missing: "
                        "apt-get install -y libsqliteodbc")


def odbc_ini(database: Path, driver: Path) -> str:
    """unixODBC DSN for the SQLite file; read-only, no file created if it is missing."""
    return (f"[{DSN}]\nDescription = callcenter accounts (bench)\nDriver = {driver}\n"
            f"Database = {database}\nTimeout = 5000\nNoCreat = 1\nReadOnly = 1\n")


def res_odbc_conf(connections: int = 4) -> str:
    """res_odbc's pool: connected at load, a few connections so dips do not queue."""
    return (f"[{DSN}]\nenabled => yes\ndsn => {DSN}\npre-connect => yes\n"
            f"max_connections => {connections}\nlogging => no\n")


def func_odbc_conf() -> str:
    """The read function: the columns ``account_lookup`` returns, active accounts only."""
    return (
        f"[{FUNCTION}]\n"
        f"dsn = {DSN}\n"
        "synopsis = Account by account number (bench twin of the FastAGI account_lookup)\n"
        "readsql = SELECT id, name, COALESCE(language, ''), CASE WHEN vip THEN 1 ELSE 0 END"
        " FROM accounts WHERE account_number = '${SQL_ESC(${ARG1})}'"
        " AND status = 'active'\n"
    )


def dip_lines(key: str) -> str:
    """Dialplan lines (``same => n,...``) doing the dip on ``key`` (already FILTERed)."""
    fields = ",".join((V.ACCOUNT_ID, V.ACCOUNT_NAME, V.ACCOUNT_LANGUAGE, V.ACCOUNT_VIP))
    return (f" same => n,Set(ARRAY({fields})=${{ODBC_{FUNCTION}({key})}})\n"
            f" same => n,Set({V.LOOKUP_STATUS}=${{IF($[0${{ODBCROWS}} > 0]?found:not_found)}})\n")


def install_files(etc: Path, odbc_dir: Path, database: Path, driver: Path) -> dict[str, str]:
    """Write the module configs into ``etc`` and ``odbc.ini`` into ``odbc_dir``.

    Returns the environment Asterisk must start with (unixODBC reads
    ``$ODBCSYSINI/odbc.ini``); the caller passes it on, this module changes no
    process state.
    """
    odbc_dir.mkdir(parents=True, exist_ok=True)
    (odbc_dir / "odbc.ini").write_text(odbc_ini(database, driver))
    (odbc_dir / "odbcinst.ini").write_text("")
    (etc / "res_odbc.conf").write_text(res_odbc_conf())
    (etc / "func_odbc.conf").write_text(func_odbc_conf())
    return {"ODBCSYSINI": str(odbc_dir)}


def allow_modules(modules_conf: str) -> str:
    """The product's modules.conf minus the ``noload`` of the three ODBC modules.

    They must load at start-up: res_odbc and res_odbc_transaction require each other,
    so ``module load`` one at a time fails ("unknown dependencies").
    """
    for module in _MODULES:
        line = f"noload => {module}\n"
        if modules_conf.count(line) != 1:
            raise OdbcTwinError(f"modules.conf: expected {line.strip()!r} once: update the bench")
        modules_conf = modules_conf.replace(line, "")
    return modules_conf


class OdbcAsteriskInstance(AsteriskInstance):
    """The product's instance, with the ODBC modules loaded at start-up (bench only).

    ``start()`` rewrites the runtime config, so the edit hooks in there.
    """

    def write_runtime_config(self) -> None:
        super().write_runtime_config()
        path = self.etc / "modules.conf"
        path.write_text(allow_modules(path.read_text()))


def check_loaded(instance: AsteriskInstance, key: str) -> str:
    """Run the function once through the CLI; its row for ``key`` (must be found)."""
    _, out = instance.cli(f"dialplan eval function ODBC_{FUNCTION}({key})", check=False)
    row = out.partition("Result:")[2].strip()
    if "Success" not in out or not row:
        _, mods = instance.cli("module show like odbc", check=False)
        raise OdbcTwinError(f"ODBC_{FUNCTION}({key}) found nothing:\n{out.strip()[:300]}\n"
                            f"{mods.strip()[:600]}")
    return row
