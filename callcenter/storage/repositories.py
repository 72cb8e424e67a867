"""Async repositories: the queries the IVR, the ARI apps and the tools need, by name.

Every function takes an :class:`~sqlalchemy.ext.asyncio.AsyncSession` and **never
commits**: the caller owns the unit of work (``async with sessionmaker.begin():``), so a
call-flow step that writes a call row and an event either lands whole or not at all.
Writes are flushed, so generated ids are available and constraint violations surface at
the line that caused them rather than at a later commit.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.storage.models import (
    NAME_MAX,
    Account,
    AccountStatus,
    Call,
    CallEvent,
    CallEventKind,
    DestinationKind,
    caller_phone,
    normalise_phone,
    parse_account_number,
    parse_language,
    utcnow,
)

__all__ = [
    "CSV_COLUMNS",
    "DEMO_ACCOUNTS",
    "AcceptedRow",
    "AccountRepository",
    "CallRepository",
    "ImportReport",
    "RowError",
    "import_csv",
    "seed_demo_accounts",
]


class AccountRepository:
    """Accounts, as the IVR's data dip looks them up."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find_by_number(self, number: str) -> Account | None:
        """The account whose number the caller keyed, or ``None``.

        Blanks around the digits are ignored; anything that is not a digit string (a
        ``*`` or ``#`` the caller pressed) matches nothing instead of raising, because
        this is fed straight from DTMF input.
        """
        try:
            account_number = parse_account_number(number)
        except ValueError:
            return None
        result = await self._session.execute(
            select(Account).where(Account.account_number == account_number)
        )
        return result.scalar_one_or_none()

    async def find_by_phone(self, phone: str | None) -> Account | None:
        """The account registered for caller ID *phone*, or ``None``.

        Numbers are compared by their digits only, with the leading ``+`` not counting:
        ``15551230001``, ``+15551230001`` and ``+1 555-123-0001`` all find the account
        stored as ``+15551230001`` (see :func:`~callcenter.storage.models.normalise_phone`
        for what is *not* normalised). Withheld or textual caller IDs (``anonymous``,
        ``Restricted``, empty) find nothing.

        When several accounts share the number (a family line) this returns ``None``:
        picking one would greet the caller with someone else's account, so the IVR should
        fall back to asking for the account number.
        """
        canonical = caller_phone(phone)
        if canonical is None:
            return None
        result = await self._session.execute(
            select(Account).where(Account.phone == canonical).limit(2)
        )
        matches = result.scalars().all()
        return matches[0] if len(matches) == 1 else None

    async def add(
        self,
        account_number: str,
        name: str,
        *,
        phone: str | None = None,
        language: str | None = None,
        vip: bool = False,
        status: AccountStatus = AccountStatus.ACTIVE,
    ) -> Account:
        """Insert an account and flush it.

        Raises:
            ValueError: a malformed account number, phone or language (from the model's
                validators).
            sqlalchemy.exc.IntegrityError: the account number exists already.
        """
        account = Account(
            account_number=account_number,
            name=name,
            phone=phone,
            language=language,
            vip=vip,
            status=AccountStatus(status),
        )
        self._session.add(account)
        await self._session.flush()
        return account


class CallRepository:
    """Call history, written by the ARI apps as a call moves through the flow."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start_call(
        self,
        uniqueid: str,
        entry_point: str,
        *,
        caller_id_num: str | None = None,
        caller_id_name: str | None = None,
        language: str | None = None,
        account_id: int | None = None,
        priority: int = 0,
        started_at: datetime | None = None,
    ) -> Call:
        """Record a new inbound call and flush it.

        *uniqueid* is the channel's ``UNIQUEID`` (the ARI channel id), which Asterisk
        never reuses; a second ``start_call`` for it raises ``IntegrityError``.
        """
        call = Call(
            uniqueid=uniqueid,
            entry_point=entry_point,
            caller_id_num=caller_id_num,
            caller_id_name=caller_id_name,
            language=language,
            account_id=account_id,
            priority=priority,
            started_at=started_at or utcnow(),
        )
        self._session.add(call)
        await self._session.flush()
        return call

    async def get_by_uniqueid(self, uniqueid: str) -> Call | None:
        """The call for an Asterisk ``UNIQUEID``, or ``None``."""
        result = await self._session.execute(
            select(Call).where(Call.uniqueid == uniqueid)
        )
        return result.scalar_one_or_none()

    async def mark_answered(self, call: Call, *, at: datetime | None = None) -> Call:
        """Set when the call was answered (the channel went ``Up``)."""
        call.answered_at = at or utcnow()
        await self._session.flush()
        return call

    async def add_event(
        self,
        call: Call,
        kind: CallEventKind | str,
        *,
        name: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> CallEvent:
        """Append one step of the call flow to *call* and flush it.

        *name* is the flow node (``main_menu``); *detail* is a JSON-serialisable dict of
        what happened there (``{"digits": "2"}``).

        Raises:
            ValueError: *kind* is not a :class:`CallEventKind`.
        """
        event = CallEvent(
            call_id=call.id,
            kind=CallEventKind(kind),
            name=name,
            detail=detail,
            at=at or utcnow(),
        )
        self._session.add(event)
        await self._session.flush()
        return event

    async def events(self, call: Call) -> Sequence[CallEvent]:
        """The events of *call*, oldest first."""
        result = await self._session.execute(
            select(CallEvent)
            .where(CallEvent.call_id == call.id)
            .order_by(CallEvent.at, CallEvent.id)
        )
        return result.scalars().all()

    async def finish_call(
        self,
        call: Call,
        destination_kind: DestinationKind | str,
        *,
        destination: str | None = None,
        ended_at: datetime | None = None,
    ) -> Call:
        """Record where the call finally went (``queue``/``sales``) and when it ended.

        Raises:
            ValueError: *destination_kind* is not a :class:`DestinationKind`.
        """
        call.final_destination_kind = DestinationKind(destination_kind)
        call.final_destination = destination
        call.ended_at = ended_at or utcnow()
        await self._session.flush()
        return call


# --------------------------------------------------------------------------- CSV import

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "account_number",
    "name",
    "phone",
    "language",
    "vip",
)
"""Columns an account CSV may have, in the documented order (any order is accepted)."""
_REQUIRED_COLUMNS: Final = ("account_number", "name")
_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0", ""})
_EXISTS_CHUNK: Final = (
    500  # well under SQLite's and PostgreSQL's bound-parameter limits
)


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in an import file, located by line (1 is the header) and column."""

    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.column is None:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}: column {self.column!r}: {self.message}"


@dataclass(frozen=True, slots=True)
class AcceptedRow:
    """A row that was inserted (or, in :attr:`ImportReport.updated`, applied to an
    existing account)."""

    line: int
    account_number: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`import_csv` did: rows inserted, and every error with its location.

    ``existing`` lists the rows whose account was already there and was left unchanged
    (each is also an error), so a tool can say how to overwrite them; with
    ``update=True`` those rows land in ``updated`` instead.
    """

    accepted: tuple[AcceptedRow, ...]
    errors: tuple[RowError, ...]
    updated: tuple[AcceptedRow, ...] = ()
    existing: tuple[AcceptedRow, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every row was imported."""
        return not self.errors


def _parse_vip(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_name(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ValueError("expected a name, got an empty value")
    if len(value) > NAME_MAX:
        raise ValueError(f"expected at most {NAME_MAX} characters, got {len(value)}")
    return value


_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    "account_number": parse_account_number,
    "name": _parse_name,
    "phone": normalise_phone,
    "language": parse_language,
    "vip": _parse_vip,
}


def _check_header(header: list[str]) -> list[RowError]:
    errors = []
    for column in header:
        if column not in CSV_COLUMNS:
            known = ", ".join(CSV_COLUMNS)
            errors.append(RowError(1, column, f"unknown column (known: {known})"))
    seen: set[str] = set()
    for column in header:
        if column in seen:
            errors.append(RowError(1, column, "column appears twice"))
        seen.add(column)
    for column in _REQUIRED_COLUMNS:
        if column not in header:
            errors.append(RowError(1, column, "missing column"))
    return errors


async def _existing_numbers(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    existing: set[str] = set()
    for start in range(0, len(numbers), _EXISTS_CHUNK):
        chunk = numbers[start : start + _EXISTS_CHUNK]
        result = await session.execute(
            select(Account.account_number).where(Account.account_number.in_(chunk))
        )
        existing.update(result.scalars())
    return existing


async def import_csv(
    session: AsyncSession, rows: Iterable[str], *, update: bool = False
) -> ImportReport:
    """Import accounts from CSV text lines (an open file, or ``text.splitlines()``).

    The first line is the header: ``account_number`` and ``name`` are required, ``phone``,
    ``language`` and ``vip`` optional, in any order; an unknown column rejects the whole
    file (a misspelt ``vip`` column would otherwise be silently dropped). Open files with
    ``newline=""`` and ``encoding="utf-8-sig"`` (spreadsheets write a byte-order mark).

    Every row is validated on its own and every problem is reported with its line and
    column (``line 4: column 'vip': expected true/false, got 'maybe'``); a bad row never
    costs the good ones. Account numbers repeated in the file are errors. Account numbers
    already in the database are errors too (listed in ``existing``), so an import never
    overwrites a customer by accident, unless ``update`` is true: then the row's columns
    overwrite the account's (columns the file leaves out keep their values).

    Quoting is strict: a quote left open is reported at the line where its record starts
    (with the lines it swallowed), never imported as one account whose name runs over the
    following rows.

    Accepted rows are added and flushed, not committed (see the module docstring).
    """
    reader = csv.reader(rows, strict=True)
    try:
        header = [column.strip().lstrip("\ufeff") for column in next(reader)]
    except StopIteration:
        return ImportReport(
            (), (RowError(1, None, "empty file: expected a header row"),)
        )
    header_errors = _check_header(header)
    if header_errors:
        return ImportReport((), tuple(header_errors))

    errors: list[RowError] = []
    candidates: list[tuple[int, dict[str, Any]]] = []
    first_line_of: dict[str, int] = {}
    line_end = reader.line_num
    while True:
        # A quoted field may span lines: report where the record starts.
        line = line_end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(_quote_error(line, reader.line_num, exc))
            line_end = reader.line_num
            continue
        line_end = reader.line_num
        if not record or all(not field.strip() for field in record):
            continue
        if len(record) != len(header):
            errors.append(
                RowError(
                    line, None, f"expected {len(header)} fields, got {len(record)}"
                )
            )
            continue
        raw = dict(zip(header, record, strict=True))
        values: dict[str, Any] = {}
        row_errors: list[RowError] = []
        for column, text in raw.items():
            try:
                values[column] = _PARSERS[column](text)
            except ValueError as exc:
                row_errors.append(RowError(line, column, str(exc)))
        number = values.get("account_number")
        if number is not None:
            if number in first_line_of:
                row_errors.insert(
                    0,
                    RowError(
                        line,
                        "account_number",
                        f"account {number!r} appears again (first on line {first_line_of[number]})",
                    ),
                )
            else:
                first_line_of[number] = line
        if row_errors:
            errors.extend(row_errors)
        else:
            candidates.append((line, values))

    existing = await _existing_numbers(
        session, [v["account_number"] for _, v in candidates]
    )
    stored = await _accounts_by_number(session, sorted(existing)) if update else {}
    accepted: list[AcceptedRow] = []
    updated: list[AcceptedRow] = []
    unchanged: list[AcceptedRow] = []
    for line, values in candidates:
        number = values["account_number"]
        if number in stored:
            for column, value in values.items():
                setattr(stored[number], column, value)
            updated.append(AcceptedRow(line, number))
        elif number in existing:
            errors.append(
                RowError(line, "account_number", f"account {number!r} already exists")
            )
            unchanged.append(AcceptedRow(line, number))
        else:
            session.add(Account(**values))
            accepted.append(AcceptedRow(line, number))
    await session.flush()
    errors.sort(key=lambda error: error.line)
    return ImportReport(tuple(accepted), tuple(errors), tuple(updated), tuple(unchanged))


def _quote_error(line: int, last_line: int, exc: csv.Error) -> RowError:
    """The csv module's complaint, said in terms of the file."""
    if "unexpected end of data" in str(exc):
        swallowed = f"line {line}" if last_line <= line else f"lines {line}-{last_line}"
        return RowError(line, None, f"unclosed quote: the quoted field that starts here "
                                    f"runs to the end of the file ({swallowed} not imported)")
    return RowError(line, None, f"bad quoting ({exc}): is a quote left open on this line?")


async def _accounts_by_number(
    session: AsyncSession, numbers: Sequence[str]
) -> dict[str, Account]:
    found: dict[str, Account] = {}
    for start in range(0, len(numbers), _EXISTS_CHUNK):
        chunk = numbers[start : start + _EXISTS_CHUNK]
        result = await session.execute(
            select(Account).where(Account.account_number.in_(chunk))
        )
        found.update((a.account_number, a) for a in result.scalars())
    return found


# --------------------------------------------------------------------------- demo data

DEMO_ACCOUNTS: Final[tuple[dict[str, Any], ...]] = (
    {
        "account_number": "100200",
        "name": "Ada Lovelace",
        "phone": "+15551230001",
        "language": "en",
        "vip": True,
    },
    {
        "account_number": "100300",
        "name": "Grace Hopper",
        "phone": "+15551230002",
        "language": "es",
        "vip": False,
    },
    {
        "account_number": "100400",
        "name": "Alan Turing",
        "phone": "+15551230003",
        "language": "en",
        "vip": False,
        "status": AccountStatus.SUSPENDED,
    },
)
"""The accounts the example IVR is written against (VIP, Spanish-speaking, suspended)."""


async def seed_demo_accounts(session: AsyncSession) -> list[str]:
    """Insert the :data:`DEMO_ACCOUNTS` that are missing; return the numbers inserted.

    Idempotent: an account number that exists is left as it is (even if edited since), so
    this is safe to run on every start of a demo system. Flushes, does not commit.
    """
    existing = await _existing_numbers(
        session, [d["account_number"] for d in DEMO_ACCOUNTS]
    )
    inserted = []
    for demo in DEMO_ACCOUNTS:
        if demo["account_number"] not in existing:
            session.add(Account(**demo))
            inserted.append(demo["account_number"])
    await session.flush()
    return inserted
