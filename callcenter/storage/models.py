"""Database tables of the contact center, as SQLAlchemy 2.0 declarative models.

Design choices that later issues build on (add columns, don't rework):

* **Constraint names are fixed by a naming convention** on the shared ``MetaData``.
  Alembic can only drop or alter a constraint it can name; without a convention SQLite
  leaves them anonymous and PostgreSQL invents its own, so a migration written on one
  database would not run on the other.
* **Enumerations are stored as plain ``VARCHAR`` without a database CHECK.** The Python
  ``StrEnum`` (``validate_strings=True``) rejects unknown values on write, so adding a
  member (say a new ``CallEventKind``) needs no migration and no SQLite table rebuild.
* **Every timestamp is a timezone-aware UTC ``datetime``** (:class:`UTCDateTime`). SQLite
  has no timezone type and hands back naive values; the type decorator re-attaches UTC on
  the way out and refuses naive values on the way in, so local-time bugs fail at once
  instead of skewing reports by an hour twice a year.
* **Defaults live in Python**, not in the database, so the ORM objects carry their values
  before a flush and SQLite and PostgreSQL behave the same.
* **Phone numbers are stored in one canonical form**, ``+`` followed by digits only
  (:func:`normalise_phone`), enforced by a validator on :attr:`Account.phone`. A caller-ID
  lookup is then an indexed equality match instead of a scan with string functions.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    validates,
)

from callcenter.agents.state import AgentStatus

__all__ = [
    "AGENT_NAME_MAX",
    "NAMING_CONVENTION",
    "Account",
    "AccountStatus",
    "AgentStateRecord",
    "AgentTransition",
    "AttemptOutcome",
    "Base",
    "Call",
    "CallEvent",
    "CallEventKind",
    "CallOffer",
    "CallTransfer",
    "CallbackAttempt",
    "CallbackRequest",
    "CallbackResult",
    "CallbackStatus",
    "CampaignRecord",
    "CampaignStateChange",
    "Contact",
    "ContactAnswer",
    "ContactAttempt",
    "ContactState",
    "DestinationKind",
    "DialerNode",
    "DncEntry",
    "OfferResult",
    "QueueOutcome",
    "QueuedCall",
    "Recording",
    "UTCDateTime",
    "caller_phone",
    "normalise_phone",
    "parse_account_number",
    "parse_language",
    "utcnow",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint and index names, identical on SQLite and PostgreSQL (and below PostgreSQL's
63-character identifier limit for the names used here)."""

ACCOUNT_NUMBER_MAX = 32
NAME_MAX = 200
PHONE_MAX = 32
LANGUAGE_MAX = 16
ENUM_MAX = 32
AGENT_NAME_MAX = 48
"""Agent, queue and pause-reason names: the config's ``Name`` (at most 48 characters)."""
CHANNEL_ID_MAX = 64
STATE_MAX = 16
"""A campaign's run state (``running``, ``paused``, ``stopped``)."""
BY_MAX = 64
"""Who changed a campaign's state (an OS user or an API user)."""
"""An ARI channel id (``UNIQUEID`` or a client-chosen id)."""

_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ().\-]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: the default of every timestamp column."""
    return datetime.now(UTC)


def normalise_phone(raw: str | None) -> str | None:
    """Return *raw* as ``+`` and its digits only, or ``None`` when it holds no number.

    Punctuation people and CRMs put in numbers (spaces, ``-``, ``.``, parentheses) and a
    leading ``+`` are dropped, so ``"+1 (555) 123-0001"``, ``"15551230001"`` and
    ``"+15551230001"`` all become ``"+15551230001"``. Asterisk's ``CALLERID(num)`` arrives
    with or without the ``+`` depending on the trunk, which is why the ``+`` does not count.

    No dialling-plan logic is applied: a national ``5551230001`` does not match the
    international ``+15551230001``, and an ``00`` international prefix is kept as digits.
    Configure the trunk (or the dialplan) to deliver caller ID in E.164.

    Raises:
        ValueError: *raw* contains letters or other characters (``"anonymous"``,
            ``"555-CALL"``), which would otherwise silently collapse to a wrong number.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if not _PHONE_ALLOWED.match(text):
        raise ValueError(f"expected a phone number like +15551230001, got {raw!r}")
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        raise ValueError(f"expected a phone number like +15551230001, got {raw!r}")
    if len(digits) + 1 > PHONE_MAX:
        raise ValueError(f"expected at most {PHONE_MAX - 1} digits, got {raw!r}")
    return "+" + digits


def caller_phone(raw: str | None) -> str | None:
    """A caller ID as a look-up key: :func:`normalise_phone`, or ``None`` for what
    cannot be a number (``anonymous``, ``Restricted``, empty) instead of an error:
    a withheld number simply finds no account."""
    try:
        return normalise_phone(raw)
    except ValueError:
        return None


def parse_account_number(raw: str) -> str:
    """Return the account number with surrounding blanks removed.

    Account numbers are digit strings, never integers: callers key them on a DTMF pad, and
    leading zeros (``"007"``) are significant.

    Raises:
        ValueError: empty, too long, or not digits only.
    """
    text = raw.strip()
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"expected digits only, got {raw!r}")
    if len(text) > ACCOUNT_NUMBER_MAX:
        raise ValueError(f"expected at most {ACCOUNT_NUMBER_MAX} digits, got {raw!r}")
    return text


def parse_language(raw: str | None) -> str | None:
    """Return a language tag (``"en"``, ``"es"``, ``"pt_BR"``) or ``None`` when blank.

    The tag becomes the channel's ``CHANNEL(language)``, which picks the directory Asterisk
    plays prompts from (``sounds/es/...``), so it must look like one.

    Raises:
        ValueError: not a language tag (``"English"``, ``"e"``).
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if len(text) > LANGUAGE_MAX or not _LANGUAGE.match(text):
        raise ValueError(f"expected a language code like 'en' or 'es', got {raw!r}")
    return text


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always yields aware UTC datetimes.

    PostgreSQL stores ``timestamptz``; SQLite stores text without an offset. Values are
    converted to UTC before they are written, so both databases hold UTC, and the offset is
    re-attached when SQLite returns a naive value.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                f"naive datetime {value!r}: pass a timezone-aware datetime"
            )
        return value.astimezone(UTC)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _str_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR column holding the enum's *values*, validated in Python only (see module doc)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        length=ENUM_MAX,
        values_callable=lambda members: [member.value for member in members],
    )


# Surrogate keys of the high-volume tables: BIGINT on PostgreSQL, but SQLite only makes
# "INTEGER PRIMARY KEY" an alias of its rowid (auto-increment), so keep INTEGER there.
_BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (indexable, compact); JSON stored as text on SQLite.
_JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base; its ``metadata`` is what migrations are compared against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AccountStatus(enum.StrEnum):
    """Whether the IVR serves the account normally."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class DestinationKind(enum.StrEnum):
    """Where an inbound call finally went, for reporting."""

    QUEUE = "queue"
    EXTENSION = "extension"
    EXTERNAL = "external"
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"


class CallEventKind(enum.StrEnum):
    """What happened to a call in the call flow (one :class:`CallEvent` each)."""

    MENU = "menu"
    COLLECT = "collect"
    LOOKUP = "lookup"
    TRANSFER = "transfer"
    HANGUP = "hangup"


class Account(Base):
    """A customer, found by the IVR's data dip from caller ID or keyed digits."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_number: Mapped[str] = mapped_column(String(ACCOUNT_NUMBER_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX), index=True)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[AccountStatus] = mapped_column(
        _str_enum(AccountStatus, "account_status"), default=AccountStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("account_number")
    def _validate_account_number(self, key: str, value: str) -> str:
        return parse_account_number(value)

    @validates("phone")
    def _validate_phone(self, key: str, value: str | None) -> str | None:
        return normalise_phone(value)

    @validates("language")
    def _validate_language(self, key: str, value: str | None) -> str | None:
        return parse_language(value)

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, account_number={self.account_number!r})"


class Call(Base):
    """One inbound call, keyed by the Asterisk channel's ``UNIQUEID``.

    ``events`` and ``account`` use ``lazy="raise"``: under asyncio an implicit lazy load
    cannot run, so ask for them explicitly (``selectinload(Call.events)``).
    """

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    entry_point: Mapped[str] = mapped_column(String(64))
    caller_id_num: Mapped[str | None] = mapped_column(String(64))
    caller_id_name: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, index=True
    )
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    final_destination_kind: Mapped[DestinationKind | None] = mapped_column(
        _str_enum(DestinationKind, "destination_kind")
    )
    final_destination: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))
    # Call history outlives the customer record: deleting an account keeps its calls.
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    priority: Mapped[int] = mapped_column(Integer, default=0)

    account: Mapped[Account | None] = relationship(lazy="raise")
    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call",
        lazy="raise",
        order_by="(CallEvent.at, CallEvent.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Call(id={self.id!r}, uniqueid={self.uniqueid!r})"


class CallEvent(Base):
    """One step of a call through the flow: a menu choice, digits collected, a lookup..."""

    __tablename__ = "call_events"
    # Events are always read per call in time order; this index serves both the foreign
    # key and that ORDER BY.
    __table_args__ = (Index("ix_call_events_call_id_at", "call_id", "at"),)

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[CallEventKind] = mapped_column(
        _str_enum(CallEventKind, "call_event_kind")
    )
    name: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(_JSONDocument)

    call: Mapped[Call] = relationship(back_populates="events", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"CallEvent(id={self.id!r}, call_id={self.call_id!r}, kind={self.kind!r})"
        )


# -- agents and the queue router ----------------------------------------------------


class QueueOutcome(enum.StrEnum):
    """How a queued call ended."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    TIMED_OUT = "timed_out"


class OfferResult(enum.StrEnum):
    """How one offer of a queued call to one agent ended."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREGISTERED = "unregistered"
    CALLER_GONE = "caller_gone"
    CANCELLED = "cancelled"
    FAILED = "failed"


class AgentStateRecord(Base):
    """The current state of one agent (:class:`callcenter.agents.state.AgentState`).

    One row per agent, keyed by the config's agent name. ``version`` is the
    compare-and-set token: every write is ``UPDATE ... WHERE agent = ? AND version = ?``,
    so of two routers reserving the same agent exactly one updates a row.
    """

    __tablename__ = "agent_states"

    agent: Mapped[str] = mapped_column(String(AGENT_NAME_MAX), primary_key=True)
    status: Mapped[AgentStatus] = mapped_column(_str_enum(AgentStatus, "agent_status"))
    version: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    call: Mapped[str | None] = mapped_column(String(CHANNEL_ID_MAX), index=True)
    pause_reason: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    pending_pause: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    wrap_up_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_lost: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return f"AgentStateRecord(agent={self.agent!r}, status={self.status!r}, version={self.version!r})"


class AgentTransition(Base):
    """One change of an agent's state: when, why (the event and its fields), from what to
    what. ``(agent, version)`` is unique: a lost update would show as a duplicate version."""

    __tablename__ = "agent_transitions"
    __table_args__ = (
        UniqueConstraint("agent", "version"),
        Index("ix_agent_transitions_at", "at"),
    )

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    agent: Mapped[str] = mapped_column(
        ForeignKey("agent_states.agent", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(ENUM_MAX))
    from_status: Mapped[AgentStatus] = mapped_column(_str_enum(AgentStatus, "agent_status"))
    to_status: Mapped[AgentStatus] = mapped_column(_str_enum(AgentStatus, "agent_status"))
    detail: Mapped[dict[str, Any] | None] = mapped_column(_JSONDocument)
    #: Why a correction was applied (reconcile), or who asked (``cli``, a router node).
    reason: Mapped[str | None] = mapped_column(String(NAME_MAX))

    def __repr__(self) -> str:
        return (
            f"AgentTransition(agent={self.agent!r}, version={self.version!r}, "
            f"{self.from_status!r} -> {self.to_status!r})"
        )


class QueuedCall(Base):
    """One caller's stay in a queue, from entering to the end, keyed by the caller's ARI
    channel id. Waiting callers (no ``answered_at``, no ``ended_at``) are what a restarted
    router restores, in (priority, entered) order.

    ``offers`` uses ``lazy="raise"``: ask for it (``QueuedCallRepository.offers``).
    """

    __tablename__ = "queued_calls"
    __table_args__ = (Index("ix_queued_calls_queue_ended_at", "queue", "ended_at"),)

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(CHANNEL_ID_MAX), unique=True)
    # The IVR's call record, when there is one; queue history outlives its deletion.
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    queue: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_MAX))
    #: The router instance that owns the caller's channel (its Asterisk's system name).
    node: Mapped[str | None] = mapped_column(String(64))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX), index=True)
    #: The skills (and levels) the answering agent was matched on.
    matched_skills: Mapped[dict[str, Any] | None] = mapped_column(_JSONDocument)
    #: Which relaxation step of the queue's rules matched (0: the full requirements).
    relaxation_step: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[QueueOutcome | None] = mapped_column(
        _str_enum(QueueOutcome, "queue_outcome")
    )
    #: Where an overflowed or timed-out call went (a queue, a voicemail box...).
    overflow_to: Mapped[str | None] = mapped_column(String(128))

    offers: Mapped[list[CallOffer]] = relationship(
        back_populates="queued_call",
        lazy="raise",
        order_by="(CallOffer.offered_at, CallOffer.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"QueuedCall(id={self.id!r}, channel_id={self.channel_id!r}, queue={self.queue!r})"


class CallOffer(Base):
    """One offer of a queued call to one agent's phone, and how it ended."""

    __tablename__ = "call_offers"
    __table_args__ = (Index("ix_call_offers_queued_call_id_offered_at", "queued_call_id", "offered_at"),)

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    queued_call_id: Mapped[int] = mapped_column(
        ForeignKey("queued_calls.id", ondelete="CASCADE")
    )
    agent: Mapped[str] = mapped_column(String(AGENT_NAME_MAX), index=True)
    #: The offer leg's channel id (chosen by the router before the originate).
    channel_id: Mapped[str | None] = mapped_column(String(CHANNEL_ID_MAX))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[OfferResult | None] = mapped_column(_str_enum(OfferResult, "offer_result"))

    queued_call: Mapped[QueuedCall] = relationship(back_populates="offers", lazy="raise")

    def __repr__(self) -> str:
        return f"CallOffer(id={self.id!r}, agent={self.agent!r}, result={self.result!r})"


RECORDING_NAME_MAX = 160
"""A recording's name as ARI takes it: ``<queue>/<offer leg's channel id>``."""


class Recording(Base):
    """One recording of a queued call (caller and agent mixed), written by Asterisk into
    its recordings directory (``<astspooldir>/recording``) and linked here when it ends.

    A table of its own rather than columns of :class:`QueuedCall`: retention removes
    recordings while the call's history (statistics) stays, and a call may one day be
    recorded in several pieces (a transfer to a second agent)."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_queue_started_at", "queue", "started_at"),)

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    queued_call_id: Mapped[int] = mapped_column(
        ForeignKey("queued_calls.id", ondelete="CASCADE"), index=True
    )
    queue: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    agent: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    #: ARI's recording name (unique): the file without its extension, relative to the
    #: recordings directory.
    name: Mapped[str] = mapped_column(String(RECORDING_NAME_MAX), unique=True)
    #: Asterisk's format name (``wav``, ``wav16``, ``gsm``): the file's extension.
    format: Mapped[str] = mapped_column(String(ENUM_MAX))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when the recording is linked (stopped, file found); None while recording.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The file relative to the recordings directory (None: Asterisk wrote none).
    path: Mapped[str | None] = mapped_column(String(RECORDING_NAME_MAX + 8))
    #: Seconds of audio in the file (from its header or its size).
    duration: Mapped[float | None] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(BigInteger)

    def __repr__(self) -> str:
        return f"Recording(id={self.id!r}, name={self.name!r}, path={self.path!r})"


# -- callbacks (issue 7) -------------------------------------------------------------


class CallbackStatus(enum.StrEnum):
    """Where a callback stands."""

    #: Holds the caller's place: waiting for its turn, or for its next attempt.
    PENDING = "pending"
    #: The customer answered an agent's call.
    DONE = "done"
    #: Every attempt failed (``retries`` used up).
    FAILED = "failed"


class CallbackResult(enum.StrEnum):
    """How one callback attempt ended."""

    #: The customer answered and talked to the agent.
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    #: The customer's number could not be reached (no route, congestion, rejected).
    FAILED = "failed"
    #: The agent did not take the callback (no answer, busy, phone gone): the customer
    #: was never dialled, so it is no attempt on the customer.
    AGENT_MISSED = "agent_missed"
    #: The agent hung up before the customer answered.
    AGENT_GONE = "agent_gone"


class CallbackRequest(Base):
    """A caller who left the queue to be called back, keeping its place.

    The caller's ``queued_calls`` row stays open (no ``ended_at``) while the callback is
    pending: its ``entered_at`` and ``priority`` are the callback's rank, and a restarted
    router finds the open row with its pending callback here and queues it again. The row
    is closed when the callback ends (answered, or failed)."""

    __tablename__ = "callbacks"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    queued_call_id: Mapped[int] = mapped_column(
        ForeignKey("queued_calls.id", ondelete="CASCADE"), unique=True
    )
    queue: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    #: The number to call: ``+`` and digits, or digits (checked before it is stored).
    number: Mapped[str] = mapped_column(String(PHONE_MAX))
    #: ``caller_id`` (confirmed with 1), ``keyed`` (keyed by the caller) or ``message``
    #: (the caller ID of a caller who left a message: ``when_unavailable.take_message``).
    number_source: Mapped[str] = mapped_column(String(ENUM_MAX))
    #: The message the agent hears before the customer is dialled (``message`` only).
    recording_id: Mapped[int | None] = mapped_column(
        ForeignKey("recordings.id", ondelete="SET NULL"))
    #: The skills the caller's route asked for (``a+b``; the ``skills`` Stasis arg), so a
    #: re-adopted callback is routed as the caller was.
    skills: Mapped[str | None] = mapped_column(String(NAME_MAX))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[CallbackStatus] = mapped_column(
        _str_enum(CallbackStatus, "callback_status"), default=CallbackStatus.PENDING,
        index=True,
    )
    #: Not before this time is the next attempt made (None: as soon as its turn comes).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"CallbackRequest(id={self.id!r}, queue={self.queue!r}, status={self.status!r})"


class CallbackAttempt(Base):
    """One attempt of a callback: the agent called (``started_at``), then the customer
    (``dialled_at``, its leg ``customer_channel``), and how it ended with the customer
    leg's Q.850 ``cause`` when there was one."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    callback_id: Mapped[int] = mapped_column(
        ForeignKey("callbacks.id", ondelete="CASCADE"), index=True
    )
    agent: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    agent_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dialled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    customer_channel: Mapped[str | None] = mapped_column(String(CHANNEL_ID_MAX))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[CallbackResult | None] = mapped_column(
        _str_enum(CallbackResult, "callback_result")
    )
    cause: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"CallbackAttempt(id={self.id!r}, agent={self.agent!r}, result={self.result!r})"


class CallTransfer(Base):
    """One transfer of a queued call by its agent (:mod:`ari_apps.transfer`): who, to
    what, blind or attended, when, and how it ended. The call keeps its id (the caller's
    channel id, ``channel_id`` here and in ``queued_calls``): the caller never leaves its
    channel, so the record of the call follows it and this row links the legs.

    ``from_answered_at`` to ``at`` is the first agent's talk; ``answered_by`` (an agent,
    or the external number) and ``answered_at`` are the new leg's; ``result`` is
    ``requeued``, ``completed``, ``cancelled``, ``no_answer``, ``caller_gone``, ``failed``
    (None while it is in progress)."""

    __tablename__ = "call_transfers"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    queued_call_id: Mapped[int] = mapped_column(
        ForeignKey("queued_calls.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[str] = mapped_column(String(CHANNEL_ID_MAX), index=True)
    from_agent: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    from_queue: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    from_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(String(ENUM_MAX))
    target_kind: Mapped[str] = mapped_column(String(ENUM_MAX))
    target: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    #: ``api:<user>`` or ``refer``: where the transfer was asked.
    via: Mapped[str] = mapped_column(String(NAME_MAX))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(String(ENUM_MAX))

    def __repr__(self) -> str:
        return (f"CallTransfer(id={self.id!r}, channel_id={self.channel_id!r}, "
                f"{self.from_agent!r} -> {self.target_kind} {self.target!r}, {self.result!r})")


# -- outbound campaigns ------------------------------------------------------------------

TIMEZONE_MAX = 64
#: An agent's note on a disposition.
NOTE_MAX = 1000
"""An IANA zone name (``America/Argentina/ComodRivadavia`` is 32)."""
#: An attempt's audit columns: a rule's name, and its reason in words.
RULE_MAX = 32
REASON_MAX = 500


class ContactState(enum.StrEnum):
    """Where a campaign's contact stands."""

    #: To be called when ``next_attempt_at`` (None: now) has come and a window is open.
    PENDING = "pending"
    #: Claimed by a dialer (:meth:`CampaignRepository.claim_due`): an attempt is under way.
    DIALING = "dialing"
    #: Finished: a final disposition, or nothing left to try.
    DONE = "done"
    #: Attempts used up (``max_attempts``, or a per-outcome limit).
    EXHAUSTED = "exhausted"
    #: Asked not to be called (a ``do_not_call`` disposition or the DNC list).
    DO_NOT_CALL = "do_not_call"


class AttemptOutcome(enum.StrEnum):
    """How one call to a contact ended (the retry rules' outcomes, and the rest)."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    FAILED = "failed"
    CALLBACK_REQUESTED = "callback_requested"
    #: A live answer no agent took within 2 s: it heard the safe-harbor message.
    ABANDONED = "abandoned"
    #: Not a working number (404, invalid format): never retried.
    INVALID_NUMBER = "invalid_number"
    #: Answered and hung up at once (a fax tone, a screening service).
    HANGUP_AT_ONCE = "hangup_at_once"
    #: Hung up by the dialer before an answer (it stopped), or left open by a dialer that
    #: died (closed when it starts again).
    CANCELLED = "cancelled"


class CampaignRecord(Base):
    """A campaign of the YAML (``campaigns:``), by name: what its contacts hang off.

    The settings stay in the YAML; the row exists so contacts and attempts survive a
    campaign's settings changing, and its id keeps the contacts' index small."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(AGENT_NAME_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Contacts the dialer refused because their number is on the do-not-call list
    #: (the compliance report's "DNC numbers blocked").
    dnc_blocked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Its run state (:class:`callcenter.dialer.campaign_state.RunState`: ``running``,
    #: ``paused``, ``stopped``), what every dialer of the campaign obeys; who set it
    #: last (an OS or API user) and when (``None``: never changed, running).
    state: Mapped[str] = mapped_column(String(STATE_MAX), default="running",
                                       server_default="running")
    state_changed_by: Mapped[str | None] = mapped_column(String(BY_MAX))
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"CampaignRecord(id={self.id!r}, name={self.name!r})"


class CampaignStateChange(Base):
    """One start, pause or stop of a campaign that changed its state: the audit of who
    ran it and when (the current state is on :class:`CampaignRecord`)."""

    __tablename__ = "campaign_state_changes"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(STATE_MAX))
    previous: Mapped[str] = mapped_column(String(STATE_MAX))
    changed_by: Mapped[str] = mapped_column(String(BY_MAX))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: ``cli`` or ``api``: where the change came from.
    via: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(NAME_MAX))


class DialerNode(Base):
    """A dialer process running a campaign (``campaigns run``, one per ``--node``): its
    heartbeat, so ``campaigns status`` can show who is dialing. Removed when the process
    ends cleanly; a killed one stops beating and is no longer shown."""

    __tablename__ = "dialer_nodes"
    __table_args__ = (UniqueConstraint("campaign_id", "node"),)

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: The dialer's claimer name (``dialer:<node>``).
    node: Mapped[str] = mapped_column(String(AGENT_NAME_MAX))
    host: Mapped[str] = mapped_column(String(NAME_MAX))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    """One number to call in one campaign, its data (the CSV's other columns) and where
    its calling stands. A number is in a campaign once (duplicates are merged on import)."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number"),
        # claim_due's question: this campaign's pending contacts due by now, oldest first.
        Index("ix_contacts_due", "campaign_id", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: E.164 (``+15550100001``), from :func:`callcenter.phone_numbers.to_e164`.
    number: Mapped[str] = mapped_column(String(PHONE_MAX))
    #: The contact's IANA zone (from its number, or the CSV); None: unknown.
    timezone: Mapped[str | None] = mapped_column(String(TIMEZONE_MAX))
    data: Mapped[dict[str, Any]] = mapped_column(_JSONDocument, default=dict)
    state: Mapped[ContactState] = mapped_column(
        _str_enum(ContactState, "contact_state"), default=ContactState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Who claimed it and when (a dialer node), while ``state`` is ``dialing``.
    claimed_by: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_outcome: Mapped[AttemptOutcome | None] = mapped_column(
        _str_enum(AttemptOutcome, "attempt_outcome"))
    disposition: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"Contact(id={self.id!r}, number={self.number!r}, state={self.state!r})"


class DncEntry(Base):
    """A number never to be called by any campaign (the do-not-call list)."""

    __tablename__ = "dnc_entries"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(PHONE_MAX), unique=True)
    #: Where the entry came from: ``import:<file>``, ``disposition:<campaign>``, ``api``.
    source: Mapped[str] = mapped_column(String(NAME_MAX))
    reason: Mapped[str | None] = mapped_column(String(NAME_MAX))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"DncEntry(number={self.number!r}, source={self.source!r})"


class ContactAttempt(Base):
    """One call to a contact: written before the dial (``started_at``, the caller ID
    shown), completed after (``ended_at``, ``outcome``, Q.850 ``cause``, the agent and the
    disposition). An attempt with no ``ended_at`` after a restart is a call that was in
    progress when the dialer stopped."""

    __tablename__ = "contact_attempts"

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(PHONE_MAX))
    caller_id: Mapped[str | None] = mapped_column(String(PHONE_MAX))
    channel_id: Mapped[str | None] = mapped_column(String(CHANNEL_ID_MAX), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[AttemptOutcome | None] = mapped_column(
        _str_enum(AttemptOutcome, "attempt_outcome"))
    cause: Mapped[int | None] = mapped_column(Integer)
    agent: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    disposition: Mapped[str | None] = mapped_column(String(AGENT_NAME_MAX))
    #: The agent's note with the disposition, and when it was recorded.
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    disposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The audit trail: the eligibility rule that allowed the call then (``ok``), its
    #: reason (the zone's window, the attempt number), and the pacing rule that placed it.
    rule: Mapped[str | None] = mapped_column(String(RULE_MAX))
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX))
    pacing_rule: Mapped[str | None] = mapped_column(String(RULE_MAX))

    def __repr__(self) -> str:
        return f"ContactAttempt(id={self.id!r}, contact_id={self.contact_id!r}, {self.outcome!r})"


#: Longest answer variable name (a collect step's ``VarName``) and value (its digits).
ANSWER_VARIABLE_MAX = 32
ANSWER_VALUE_MAX = 32


class ContactAnswer(Base):
    """One answer an agentless campaign's flow collected on a call: the collect step's
    variable and the digits given, per attempt (the contact's through it). Written as it
    is given, so a call cut short or a dialer stopped mid-call keeps what was answered;
    an answer given again in the same call replaces the first."""

    __tablename__ = "contact_answers"
    __table_args__ = (
        UniqueConstraint("attempt_id", "variable"),
    )

    id: Mapped[int] = mapped_column(_BigIntPK, primary_key=True)
    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("contact_attempts.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    variable: Mapped[str] = mapped_column(String(ANSWER_VARIABLE_MAX))
    value: Mapped[str] = mapped_column(String(ANSWER_VALUE_MAX))
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (f"ContactAnswer(attempt_id={self.attempt_id!r}, {self.variable}="
                f"{self.value!r})")
