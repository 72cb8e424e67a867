"""A campaign's contacts imported as an operator does: ``callcenter contacts import
CAMPAIGN FILE.csv`` on a CSV file, against the node's config and database.

Every list a real-call dialer test dials arrives this way at least once per mode, with a
record the import must refuse, so the path from a spreadsheet to a dialled number is the
one tested (a bad line is reported as ``FILE:LINE: reason`` and skipped; exit 1 then).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from tests.conftest import PBX

__all__ = ["BAD_ROW", "assert_imported", "import_csv"]

#: A record no import may keep: not a phone number.
BAD_ROW = "not-a-number,UTC"


async def import_csv(pbx: PBX, campaign: str, rows: list[str], directory: Path,
                     *, header: str = "number,timezone") -> Result:
    """Write ``header`` and ``rows`` (with a UTF-8 BOM, as Excel saves) to a CSV file
    in ``directory`` and import it into ``campaign`` of ``pbx``; the CLI's result."""
    from callcenter.cli import main

    path = directory / f"{campaign}-contacts.csv"
    path.write_text("\ufeff" + "\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")
    return await asyncio.to_thread(
        CliRunner().invoke, main,
        ["--home", str(pbx.instance.home), "contacts", "import", campaign, str(path),
         "--config", str(pbx.config_dir), "--db", pbx.db_url])


def assert_imported(result: Result, path_line: int, imported: int) -> None:
    """``result`` imported ``imported`` contacts and reported line ``path_line`` bad."""
    assert result.exit_code == 1, result.output  # a record was skipped
    assert f"-contacts.csv:{path_line}: " in result.output, result.output
    assert f"imported {imported} contact" in result.output, result.output
