"""The Stasis argument contract between the generated dialplan and the queue router.

A queue destination ends in::

    Stasis(cc-queue,<queue>,skills=a+b,priority=N,language=xx,entry=<entry>,account=<id>)

An agent's feature code (``*70`` login, ...) ends in::

    Stasis(cc-agent,<action>,agent=<agent>,reason=<pause reason>)

a supervisor's code (``*80<extension>`` listen, ...) ends in::

    Stasis(cc-agent,<mode>,supervisor=<agent>,target=<digits dialled after the code>)

and a queue's overflow relax step is reached by the router continuing the caller in the
dialplan at ``cc-queue,<queue>,<overflow_label(stage)>``.

Asterisk splits ``Stasis()``'s data on commas and hands everything after the app name to
the router as ``StasisStart.args`` (``("sales", "skills=a+b", "priority=5", ...)``). This
module is the one place that knows that shape: the generator formats with
:func:`dialplan_args` (dialplan expressions as values), the router parses with
:meth:`QueueCall.parse`. A value that does not fit the contract is a
:class:`StasisArgsError` naming the argument's position, never another exception: the args
come from a dialplan an admin may have edited, and a bad one must send the call to its
fallback, not crash the router.

Pure: no I/O, so the dialplan generator can import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "AGENT_ACTIONS",
    "AGENT_KEYS",
    "KEYS",
    "SKILL_SEPARATOR",
    "SUPERVISE_KEYS",
    "SUPERVISE_MODES",
    "AgentCommand",
    "QueueCall",
    "StasisArgsError",
    "SuperviseCommand",
    "agent_dialplan_args",
    "dialplan_args",
    "overflow_label",
    "supervise_dialplan_args",
]

#: The ``key=value`` arguments after the queue name, in the order the dialplan writes them.
KEYS: tuple[str, ...] = ("skills", "priority", "language", "entry", "account")
#: Skills travel as one argument (commas would split it): ``billing+french``.
SKILL_SEPARATOR = "+"

# The alphabets of the config schema (callcenter.config.models): names, languages; an
# account id has passed FILTER(0-9) in the dialplan. Nothing else can be a valid value.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]{2,8})?")
_ACCOUNT = re.compile(r"[0-9]{1,32}")
_PRIORITY = re.compile(r"[0-9]{1,6}")  # $[a + b] of two non-negative ints: digits only


class StasisArgsError(ValueError):
    """Args that break the contract; ``index`` is the position in ``StasisStart.args``
    (None when the whole list is at fault, e.g. empty)."""

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(index, message)
        self.index = index
        self.message = message

    def __str__(self) -> str:
        where = "Stasis args" if self.index is None else f"Stasis args[{self.index}]"
        return f"{where}: {self.message}"


def _key_values(args: Sequence[str], keys: Sequence[str]) -> dict[str, tuple[int, str]]:
    """``args[1:]`` as ``key=value`` pairs of *keys*: key -> (position, value). Both
    contracts (queue calls, agent and supervisor commands) share it, so they refuse alike."""
    seen: dict[str, tuple[int, str]] = {}
    for index, arg in enumerate(args[1:], start=1):
        key, sep, value = arg.partition("=")
        if not sep:
            raise StasisArgsError(index, f"{_show(arg)} is not key=value")
        if key not in keys:
            raise StasisArgsError(
                index, f"unknown key {_show(key)} (known: {', '.join(keys)})")
        if key in seen:
            raise StasisArgsError(
                index, f"duplicate key {key!r} (first at args[{seen[key][0]}])")
        seen[key] = (index, value)
    return seen


def dialplan_args(queue: str, values: Mapping[str, str]) -> list[str]:
    """The argument list for ``Stasis(app,<these joined by commas>)``.

    ``values`` maps every key of :data:`KEYS` to its text: literal values, or dialplan
    expressions (``${CC_ENTRY}``) when the generator writes them. Exactly the contract's
    keys, so a key added here is added on both sides or neither.
    """
    if set(values) != set(KEYS):
        missing = sorted(set(KEYS) - set(values))
        extra = sorted(set(values) - set(KEYS))
        raise ValueError(f"Stasis args need exactly {KEYS}: missing {missing}, unknown {extra}")
    return [queue, *(f"{key}={values[key]}" for key in KEYS)]


def _show(value: str) -> str:
    """A caller-influenced value in an error message: quoted, bounded."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


@dataclass(frozen=True, slots=True)
class QueueCall:
    """What the dialplan tells the router about one queued call.

    ``priority`` is the queue's base priority plus the caller's (VIP rules); higher is
    served first; 0 when the dialplan sent none (an empty ``priority=``). ``language``, ``entry`` and ``account`` are None when the dialplan had
    none (an account the data dip did not find, a call sent to ``cc-queue`` by the
    admin's own dialplan).
    """

    queue: str
    skills: tuple[str, ...] = ()
    priority: int = 0
    language: str | None = None
    entry: str | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        # Every field must survive format() -> Asterisk's comma split -> parse() unchanged.
        checks: list[tuple[str, str | None, re.Pattern[str]]] = [
            ("queue", self.queue, _NAME),
            ("language", self.language, _LANGUAGE),
            ("entry", self.entry, _NAME),
            ("account", self.account, _ACCOUNT),
            *(("skills", skill, _NAME) for skill in self.skills),
        ]
        for field, value, pattern in checks:
            if value is not None and not pattern.fullmatch(value):
                raise StasisArgsError(None, f"{field}: invalid value {_show(value)}")
        if len(set(self.skills)) != len(self.skills):
            raise StasisArgsError(None, f"skills: duplicate in {self.skills!r}")
        if not 0 <= self.priority <= 999_999:
            raise StasisArgsError(None, f"priority: {self.priority} not in 0..999999")

    def format(self) -> list[str]:
        """The args as the dialplan writes them (what ``StasisStart.args`` will hold)."""
        return dialplan_args(self.queue, {
            "skills": SKILL_SEPARATOR.join(self.skills),
            "priority": str(self.priority),
            "language": self.language or "",
            "entry": self.entry or "",
            "account": self.account or "",
        })

    @classmethod
    def parse(cls, args: Sequence[str]) -> QueueCall:
        """``StasisStart.args`` -> QueueCall; any departure from the contract raises
        :class:`StasisArgsError` with the position of the first bad argument."""
        if not args:
            raise StasisArgsError(None, "empty: the first argument must be the queue name")
        queue = args[0]
        if not _NAME.fullmatch(queue):
            raise StasisArgsError(0, f"queue name {_show(queue)} is not a config name")
        seen = _key_values(args, KEYS)

        def text(key: str, pattern: re.Pattern[str], what: str) -> str | None:
            index, value = seen.get(key, (0, ""))
            if value and not pattern.fullmatch(value):
                raise StasisArgsError(index, f"{key}: {_show(value)} is not {what}")
            return value or None

        skills: tuple[str, ...] = ()
        if "skills" in seen and seen["skills"][1]:
            index, value = seen["skills"]
            skills = tuple(value.split(SKILL_SEPARATOR))
            for skill in skills:
                if not _NAME.fullmatch(skill):
                    raise StasisArgsError(index, f"skills: {_show(skill)} is not a skill name")
            if len(set(skills)) != len(skills):
                raise StasisArgsError(index, f"skills: duplicate in {_show(value)}")
        priority = 0
        # Empty means absent, as for every key: a call sent to cc-queue by the admin's own
        # dialplan has no CC_QUEUE_PRIORITY/CC_PRIORITY, and Asterisk turns `$[ + ]` into ''.
        # Routing it at priority 0 beats sending it to the fallback.
        if seen.get("priority", (0, ""))[1]:
            index, value = seen["priority"]
            if not _PRIORITY.fullmatch(value):
                raise StasisArgsError(
                    index, f"priority: {_show(value)} is not a whole number 0..999999")
            priority = int(value)
        return cls(
            queue=queue,
            skills=skills,
            priority=priority,
            language=text("language", _LANGUAGE, "a language code like en or pt_BR"),
            entry=text("entry", _NAME, "an entry point name"),
            account=text("account", _ACCOUNT, "an account id (digits)"),
        )


# -- overflow -------------------------------------------------------------------------

def overflow_label(stage: int) -> str:
    """The priority label, in the queue's ``cc-queue`` extension, where the call goes on to
    the destination of relax step ``stage`` (``Stage.index``/``Overflow.stage``: the step's
    position in ``relax:``, counted from 1). The generator writes the label, the router
    continues the caller there: ``continue_in_dialplan(ch, "cc-queue", queue,
    label=overflow_label(stage))``."""
    if not 1 <= stage <= 99:
        raise ValueError(f"overflow stage {stage} is not a relax step number (1..99)")
    return f"overflow{stage}"


# -- agent feature codes -----------------------------------------------------------------

#: What an agent's feature code asks for: the first argument of ``Stasis(cc-agent,...)``.
AGENT_ACTIONS: tuple[str, ...] = ("login", "logout", "pause", "unpause", "end_wrapup")
#: The ``key=value`` arguments after the action, in the order the dialplan writes them.
AGENT_KEYS: tuple[str, ...] = ("agent", "reason")


def agent_dialplan_args(action: str, agent: str, reason: str = "") -> list[str]:
    """The argument list for ``Stasis(<agent_app>,<these joined by commas>)``.

    ``agent`` is a literal name or the dialplan expression that holds it (``${CC_AGENT}``);
    ``reason`` a pause reason name (only with ``pause``), else empty.
    """
    if action not in AGENT_ACTIONS:
        raise ValueError(f"unknown agent action {action!r} (known: {', '.join(AGENT_ACTIONS)})")
    if bool(reason) != (action == "pause"):
        raise ValueError(f"a reason goes with pause and only with it (action {action!r})")
    return [action, f"agent={agent}", f"reason={reason}"]


@dataclass(frozen=True, slots=True)
class AgentCommand:
    """What the dialplan tells the agent app: which agent (identified by the PJSIP endpoint
    that placed the call, i.e. by digest auth, never by caller ID) asks for what.

    ``reason`` is the pause reason name, set exactly for ``pause``.
    """

    action: str
    agent: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.action not in AGENT_ACTIONS:
            raise StasisArgsError(None, f"action: {_show(self.action)} is not one of "
                                        f"{', '.join(AGENT_ACTIONS)}")
        if not _NAME.fullmatch(self.agent):
            raise StasisArgsError(None, f"agent: invalid value {_show(self.agent)}")
        if self.reason is not None and not _NAME.fullmatch(self.reason):
            raise StasisArgsError(None, f"reason: invalid value {_show(self.reason)}")
        if (self.reason is not None) != (self.action == "pause"):
            raise StasisArgsError(None, "reason: set exactly when the action is pause "
                                        f"(action {self.action!r}, reason {self.reason!r})")

    def format(self) -> list[str]:
        """The args as the dialplan writes them (what ``StasisStart.args`` will hold)."""
        return agent_dialplan_args(self.action, self.agent, self.reason or "")

    @classmethod
    def parse(cls, args: Sequence[str]) -> AgentCommand:
        """``StasisStart.args`` -> AgentCommand; any departure from the contract raises
        :class:`StasisArgsError` with the position of the first bad argument."""
        if not args:
            raise StasisArgsError(None, "empty: the first argument must be the action")
        action = args[0]
        if action not in AGENT_ACTIONS:
            raise StasisArgsError(
                0, f"action {_show(action)} is not one of {', '.join(AGENT_ACTIONS)}")
        seen = _key_values(args, AGENT_KEYS)
        index, agent = seen.get("agent", (None, ""))
        if not agent:
            # The dialplan found no agent for the calling endpoint and still got here.
            raise StasisArgsError(index, "agent: missing (the calling endpoint is no agent)")
        if not _NAME.fullmatch(agent):
            raise StasisArgsError(index, f"agent: {_show(agent)} is not an agent name")
        index, reason = seen.get("reason", (None, ""))
        if reason and not _NAME.fullmatch(reason):
            raise StasisArgsError(index, f"reason: {_show(reason)} is not a pause reason name")
        if action == "pause" and not reason:
            raise StasisArgsError(index, "reason: pause needs a reason")
        if action != "pause" and reason:
            raise StasisArgsError(index, f"reason: only pause takes one, not {action}")
        return cls(action, agent, reason or None)


# -- supervisors' codes ------------------------------------------------------------------

#: How a supervisor joins an agent's call: the first argument of ``Stasis(cc-agent,...)``.
SUPERVISE_MODES: tuple[str, ...] = ("listen", "whisper", "barge")
#: The ``key=value`` arguments after the mode, in the order the dialplan writes them.
SUPERVISE_KEYS: tuple[str, ...] = ("supervisor", "target")
#: What a supervisor dials after the code: the agent's extension or its name on the keypad.
_TARGET = re.compile(r"[0-9]{1,48}")


def supervise_dialplan_args(mode: str, supervisor: str, target: str) -> list[str]:
    """The argument list for ``Stasis(<agent_app>,<these joined by commas>)``.

    ``supervisor`` and ``target`` are literal values or the dialplan expressions holding
    them (``${CC_AGENT}``, ``${CC_SUPERVISE_TARGET}``).
    """
    if mode not in SUPERVISE_MODES:
        raise ValueError(f"unknown supervise mode {mode!r} (known: {', '.join(SUPERVISE_MODES)})")
    return [mode, f"supervisor={supervisor}", f"target={target}"]


@dataclass(frozen=True, slots=True)
class SuperviseCommand:
    """What the dialplan tells the agent app when a supervisor dials a code: which agent
    account dialled (its PJSIP endpoint, by digest auth; whether it is a supervisor is the
    app's decision), how it wants to join, and the digits naming the agent to supervise."""

    mode: str
    supervisor: str
    target: str

    def __post_init__(self) -> None:
        if self.mode not in SUPERVISE_MODES:
            raise StasisArgsError(None, f"mode: {_show(self.mode)} is not one of "
                                        f"{', '.join(SUPERVISE_MODES)}")
        if not _NAME.fullmatch(self.supervisor):
            raise StasisArgsError(None, f"supervisor: invalid value {_show(self.supervisor)}")
        if not _TARGET.fullmatch(self.target):
            raise StasisArgsError(None, f"target: invalid value {_show(self.target)}")

    def format(self) -> list[str]:
        """The args as the dialplan writes them (what ``StasisStart.args`` will hold)."""
        return supervise_dialplan_args(self.mode, self.supervisor, self.target)

    @classmethod
    def parse(cls, args: Sequence[str]) -> SuperviseCommand:
        """``StasisStart.args`` -> SuperviseCommand; any departure from the contract raises
        :class:`StasisArgsError` with the position of the first bad argument."""
        if not args:
            raise StasisArgsError(None, "empty: the first argument must be the mode")
        mode = args[0]
        if mode not in SUPERVISE_MODES:
            raise StasisArgsError(
                0, f"mode {_show(mode)} is not one of {', '.join(SUPERVISE_MODES)}")
        seen = _key_values(args, SUPERVISE_KEYS)
        index, supervisor = seen.get("supervisor", (None, ""))
        if not supervisor:
            raise StasisArgsError(index, "supervisor: missing (the calling endpoint is no agent)")
        if not _NAME.fullmatch(supervisor):
            raise StasisArgsError(index, f"supervisor: {_show(supervisor)} is not an agent name")
        index, target = seen.get("target", (None, ""))
        if not _TARGET.fullmatch(target):
            raise StasisArgsError(index, f"target: {_show(target)} is not 1 to 48 digits")
        return cls(mode, supervisor, target)
