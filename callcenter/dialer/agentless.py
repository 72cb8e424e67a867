"""An agentless campaign's decisions, pure: which variables are its answers, which
values count as answers, how many calls to place now, and whether a survey is complete.

An agentless campaign runs a ``flows:`` entry on every live answer (the IVR engine's
generated context ``cc-flow-<flow>``); the flow's ``collect`` steps set channel
variables (``Set(Q1=...)`` after ``Read()``) and those are the contact's answers. Which
ones: the campaign's ``answers:``, else every variable that the flow and the flows and
menus it reaches collect
(:func:`~callcenter.config.campaign_checks.collected_variables`, over the same graph as
the config's reachability checks). A value is stored only if the collect step that asks for
it would have accepted it (:func:`valid_answer`): a caller's bad entry that the flow
asks again for is set on the channel too, and is not an answer.

The dialer (``ari_apps/agentless.py``) reads the events and the rows, and carries these
out; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callcenter.config.campaign import Campaign
from callcenter.config.campaign_checks import collected_variables
from callcenter.config.models import CallCenterConfig, CollectSpec
from callcenter.flows.digit_pattern import canonical_pattern

__all__ = [
    "MAX_ANSWER",
    "Survey",
    "answer_table",
    "answer_variables",
    "collected_variables",
    "lines_free",
    "survey",
    "valid_answer",
]

#: Longest answer stored (a collect step takes at most 32 digits).
MAX_ANSWER = 32
_DTMF = re.compile(r"[0-9*#]+")


def answer_variables(config: CallCenterConfig, campaign: Campaign) -> tuple[str, ...]:
    """The variables stored as the campaign's answers (none without a flow)."""
    if campaign.flow is None or campaign.flow not in config.flows:
        return ()
    if campaign.answers is not None:
        return campaign.answers
    return tuple(collected_variables(config, campaign.flow))


def valid_answer(specs: Iterable[CollectSpec], value: str) -> bool:
    """Whether ``value`` is an answer one of ``specs`` accepts: DTMF characters only, as
    many as it asks (``min_digits``..``max_digits``) and its ``pattern`` matches (found
    anywhere, as Asterisk's ``REGEX()`` and the simulator read it)."""
    if not _DTMF.fullmatch(value) or len(value) > MAX_ANSWER:
        return False
    for spec in specs:
        if not spec.min_digits <= len(value) <= spec.max_digits:
            continue
        if spec.pattern is None or re.search(canonical_pattern(spec.pattern), value):
            return True
    return False


def lines_free(lines: int, busy: int, *, stopping: bool = False) -> int:
    """Calls to place now: the campaign's ``lines`` less those up (none when stopping)."""
    if stopping:
        return 0
    return max(0, lines - busy)


@dataclass(frozen=True, slots=True)
class Survey:
    """The answers a call gave, of those wanted, and whether all were given."""

    answers: Mapping[str, str]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def survey(wanted: Iterable[str], given: Mapping[str, str]) -> Survey:
    """The survey as far as the call got: the wanted answers given, and those missing."""
    wanted = tuple(wanted)
    return Survey({name: given[name] for name in wanted if name in given},
                  tuple(name for name in wanted if name not in given))


class _Answer(Protocol):
    """A stored answer as the table reads it (``storage.answers.AnswerRow``)."""

    @property
    def contact_id(self) -> int: ...
    @property
    def number(self) -> str: ...
    @property
    def attempt_id(self) -> int: ...
    @property
    def variable(self) -> str: ...
    @property
    def value(self) -> str: ...


def answer_table(wanted: Iterable[str], rows: Iterable[_Answer]) -> list[list[str]]:
    """The answers as a table: a header (``contact, number, attempt, complete``, then
    ``wanted``), then one row per contact's call that gave any, in the rows' order.
    Answers to variables no longer wanted are left out (the config changed)."""
    wanted = tuple(wanted)
    calls: dict[tuple[int, int], tuple[str, dict[str, str]]] = {}
    for row in rows:
        _, given = calls.setdefault((row.contact_id, row.attempt_id), (row.number, {}))
        given[row.variable] = row.value
    table = [["contact", "number", "attempt", "complete", *wanted]]
    for (contact, attempt), (number, given) in calls.items():
        done = survey(wanted, given)
        table.append([str(contact), number, str(attempt), "yes" if done.complete else "no",
                      *(given.get(name, "") for name in wanted)])
    return table
