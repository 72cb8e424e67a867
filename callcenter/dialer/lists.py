"""Reading and writing the spreadsheets contact and do-not-call lists arrive as (pure).

Lists come from CRMs and from Excel, so :func:`read_table` takes the bytes as they are:

* **Encoding**: UTF-8 (with or without Excel's byte-order mark), UTF-16 with a BOM
  (Excel's "Unicode text"), else Windows-1252, else Latin-1 (which reads any byte);
* **Delimiter**: the one of ``,`` ``;`` tab ``|`` the header line uses most (Excel in
  much of Europe writes ``;``);
* **Quoting**: RFC 4180, strict: a quoted field may hold newlines (a record then spans
  lines and is reported at its first line); a quote left open is an error at the line
  where it opened, never a record swallowing the rest of the file.

Every record comes with its line number; a record that cannot be read is a
:class:`RowProblem` (line and reason), and reading goes on. :func:`write_table` writes
CSV that a spreadsheet opens safely: a cell starting with ``=`` ``+`` ``-`` ``@``, tab or
carriage return is prefixed with ``'``, so it is shown as text, never run as a formula
(CSV injection).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DELIMITERS",
    "RowProblem",
    "Table",
    "decode",
    "neutralise",
    "read_table",
    "write_table",
]

DELIMITERS = (",", ";", "\t", "|")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Header names longer than this are cut (they become JSON keys of contact data).
MAX_COLUMN_NAME = 64


@dataclass(frozen=True)
class RowProblem:
    """A line of the file that was not imported, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class Table:
    """A list read from a file: its header, its records with their first line numbers,
    and the records that could not be read."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    header_line: int
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    problems: tuple[RowProblem, ...]


def decode(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` of a file's bytes; never fails (Latin-1 reads anything)."""
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(name), "utf-16"
            except UnicodeDecodeError:
                break
    for name in ("utf-8", "cp1252"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _sniff(header_line: str) -> str:
    """The delimiter the header line uses most, outside quotes; ``,`` when none."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _quote_problem(line: int, last_line: int, exc: csv.Error) -> RowProblem:
    if "unexpected end of data" in str(exc):
        swallowed = f"line {line}" if last_line <= line else f"lines {line}-{last_line}"
        return RowProblem(line, "unclosed quote: the quoted field that starts here runs to "
                                f"the end of the file ({swallowed} not imported)")
    if "NUL" in str(exc):
        return RowProblem(line, "the line holds a NUL byte (a binary file, or a wrong encoding)")
    return RowProblem(line, f"bad quoting ({exc}): is a quote left open on this line?")


def _header(cells: Sequence[str]) -> tuple[str, ...]:
    """Header cells as column names: blanks trimmed, an empty one named by position."""
    names = []
    for i, cell in enumerate(cells):
        name = cell.strip().lstrip("\ufeff")[:MAX_COLUMN_NAME]
        names.append(name or f"column_{i + 1}")
    return tuple(names)


def read_table(data: bytes) -> Table:
    """Records of a delimited file (see the module docstring); the first non-blank record
    is the header. Blank records are skipped without a word."""
    text, encoding = decode(data)
    delimiter = _sniff(_first_line(text))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: tuple[str, ...] = ()
    header_line = 0
    rows: list[tuple[int, tuple[str, ...]]] = []
    problems: list[RowProblem] = []
    line_end = 0
    while True:
        line = line_end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(_quote_problem(line, max(reader.line_num, line), exc))
            # The reader may not have moved on (a NUL byte): skip the line ourselves.
            line_end = max(reader.line_num, line)
            continue
        line_end = reader.line_num
        if not record or all(not cell.strip() for cell in record):
            continue
        if not header:
            header, header_line = _header(record), line
            continue
        rows.append((line, tuple(record)))
    return Table(encoding, delimiter, header, header_line, tuple(rows), tuple(problems))


def neutralise(cell: str) -> str:
    """``cell`` as a spreadsheet shows it as text: a leading formula character gets ``'``."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def write_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text (``,``, CRLF, minimal quoting) with every cell :func:`neutralise` d."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([neutralise(str(h)) for h in header])
    for row in rows:
        writer.writerow([neutralise("" if cell is None else str(cell)) for cell in row])
    return out.getvalue()
