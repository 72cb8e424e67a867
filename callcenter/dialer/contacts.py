"""Contact and do-not-call lists: a file's records -> numbers to call or never call (pure).

A contact list is a spreadsheet with a number column (``number``, ``phone``,
``phone_number``, ``telephone`` or ``mobile``, any case), an optional ``timezone`` column
(IANA, e.g. ``America/Chicago``) and any other columns, kept as the contact's data (the
agent script's ``{first_name}``)::

    number,first_name,plan
    (212) 555-0100,Ann,gold
    +44 20 7946 0000,Bob,silver

Every record is checked on its own: a number that is not a possible phone number, a
timezone that is not a zone, a record with more fields than the header -- each is a
:class:`~callcenter.dialer.lists.RowProblem` with its line, and the record is skipped;
the good ones are imported together. A number given twice is one contact (the later
record's data wins column by column), counted in ``merged``. Numbers become E.164 with
the campaign's ``region`` for those written without a country code; the zone comes from
the ``timezone`` column, else from the number when it has exactly one.

A do-not-call list is the same with a number column and an optional ``reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from callcenter.config.models import check_timezone
from callcenter.dialer.lists import RowProblem, Table, read_table
from callcenter.phone_numbers import PhoneNumberError, time_zones, to_e164

__all__ = [
    "NUMBER_COLUMNS",
    "ContactList",
    "ContactRow",
    "DncList",
    "parse_contacts",
    "parse_dnc",
]

NUMBER_COLUMNS = ("number", "phone", "phone_number", "telephone", "mobile")
_TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
_REASON_COLUMNS = ("reason", "note", "comment")


@dataclass(frozen=True)
class ContactRow:
    """A contact read from ``line``: E.164 number, zone (None: unknown), other columns."""

    line: int
    number: str
    timezone: str | None
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContactList:
    """What a contact file holds: contacts (one per number), records merged into an
    earlier one (line -> first line of that number), and records not imported."""

    contacts: tuple[ContactRow, ...]
    merged: Mapping[int, int]
    problems: tuple[RowProblem, ...]
    encoding: str = "utf-8"
    delimiter: str = ","


@dataclass(frozen=True)
class DncList:
    """Numbers (E.164 -> reason or None) and records not imported."""

    numbers: Mapping[str, str | None]
    problems: tuple[RowProblem, ...]
    lines: Mapping[str, int] = field(default_factory=dict)


def _column(header: tuple[str, ...], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower().replace(" ", "_") for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _number(cell: str, region: str | None) -> str:
    # Our own export writes '+1555... (see lists.neutralise): read it back as the number.
    return to_e164(cell.strip().removeprefix("'"), region)


def _zone(cell: str | None, number: str) -> str | None:
    if cell is not None and cell.strip():
        name = cell.strip()
        check_timezone(name)  # ValueError with the reason
        return name
    zones = time_zones(number)
    return zones[0] if len(zones) == 1 else None


def _fields(table: Table, line: int, record: tuple[str, ...]) -> tuple[str, ...] | RowProblem:
    """The record padded to the header's width (spreadsheets drop trailing empty cells);
    more non-empty fields than the header has is a problem."""
    width = len(table.header)
    if len(record) > width:
        if any(cell.strip() for cell in record[width:]):
            return RowProblem(line, f"expected {width} fields (the header's), got {len(record)}")
        record = record[:width]
    return record + ("",) * (width - len(record))


def _no_header(table: Table) -> ContactList | None:
    if not table.header:
        problem = RowProblem(1, "empty file: expected a header row")
        return ContactList((), {}, (*table.problems, problem), table.encoding, table.delimiter)
    return None


def parse_contacts(data: bytes, *, region: str | None = "US") -> ContactList:
    """The contacts of a contact file's bytes (see the module docstring)."""
    table = read_table(data)
    empty = _no_header(table)
    if empty is not None:
        return empty
    number_at = _column(table.header, NUMBER_COLUMNS)
    if number_at is None:
        problem = RowProblem(table.header_line, "no number column: name one of "
                             f"{', '.join(NUMBER_COLUMNS)} (got: {', '.join(table.header)})")
        return ContactList((), {}, (*table.problems, problem), table.encoding, table.delimiter)
    zone_at = _column(table.header, _TIMEZONE_COLUMNS)
    data_columns = [(i, name) for i, name in enumerate(table.header)
                    if i not in (number_at, zone_at)]
    problems = list(table.problems)
    by_number: dict[str, ContactRow] = {}
    merged: dict[int, int] = {}
    for line, record in table.rows:
        cells = _fields(table, line, record)
        if isinstance(cells, RowProblem):
            problems.append(cells)
            continue
        try:
            number = _number(cells[number_at], region)
        except PhoneNumberError as exc:
            problems.append(RowProblem(line, f"column '{table.header[number_at]}': {exc}"))
            continue
        try:
            zone = _zone(cells[zone_at] if zone_at is not None else None, number)
        except ValueError as exc:
            problems.append(RowProblem(line, f"column '{table.header[zone_at or 0]}': {exc}"))
            continue
        values = {name: cells[i] for i, name in data_columns if cells[i] != ""}
        earlier = by_number.get(number)
        if earlier is None:
            by_number[number] = ContactRow(line, number, zone, values)
        else:
            merged[line] = earlier.line
            by_number[number] = ContactRow(earlier.line, number, zone or earlier.timezone,
                                           {**earlier.data, **values})
    problems.sort(key=lambda p: p.line)
    return ContactList(tuple(by_number.values()), merged, tuple(problems),
                       table.encoding, table.delimiter)


def parse_dnc(data: bytes, *, region: str | None = "US") -> DncList:
    """The numbers of a do-not-call file's bytes: a number column, optionally ``reason``."""
    table = read_table(data)
    if not table.header:
        return DncList({}, (*table.problems, RowProblem(1, "empty file: expected a header row")))
    number_at = _column(table.header, NUMBER_COLUMNS)
    if number_at is None:
        return DncList({}, (*table.problems, RowProblem(
            table.header_line, "no number column: name one of "
            f"{', '.join(NUMBER_COLUMNS)} (got: {', '.join(table.header)})")))
    reason_at = _column(table.header, _REASON_COLUMNS)
    problems = list(table.problems)
    numbers: dict[str, str | None] = {}
    lines: dict[str, int] = {}
    for line, record in table.rows:
        cells = _fields(table, line, record)
        if isinstance(cells, RowProblem):
            problems.append(cells)
            continue
        try:
            number = _number(cells[number_at], region)
        except PhoneNumberError as exc:
            problems.append(RowProblem(line, f"column '{table.header[number_at]}': {exc}"))
            continue
        reason = cells[reason_at].strip() if reason_at is not None else ""
        numbers[number] = reason or numbers.get(number)
        lines.setdefault(number, line)
    problems.sort(key=lambda p: p.line)
    return DncList(numbers, tuple(problems), lines)
