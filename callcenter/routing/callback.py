"""Callbacks that keep the caller's place: pure decisions for :mod:`ari_apps.callback`.

* :func:`callback_number`: what may be dialled back. A caller ID or keyed digits come
  from outside; only ``+`` and digits, within the queue's ``max_digits``, ever reach a
  dial string (:func:`dial_string`), so no ``,``, ``&``, ``/`` or ``)`` can smuggle a
  second destination or an option into ARI's ``endpoint``.
* :class:`Dialog`: the caller's keys after the callback key, one at a time: ``1`` takes
  the number read back, digits then ``#`` take a keyed number, anything else (or a
  number that is no number) is refused and the caller just waits on.
* :func:`next_attempt`: after an attempt the customer did not answer, when to call again
  (or not at all).
* :func:`decision_time`: a callback is routed like a live caller of its rank, but the
  queue's overflow step (voicemail, another queue...) is for a caller on the line: a
  callback stays at the last stage before it.
* :func:`offer_start`: whether the agent reserved for a callback is rung, given back, or
  was lost meanwhile (the callback then waits again, in its place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callcenter.config.models import Callback
from callcenter.routing.policy import QueuePolicy

__all__ = [
    "COLLECTING",
    "CONFIRMED",
    "CONFIRM_KEY",
    "END_KEY",
    "LOST",
    "REFUSED",
    "RELEASE",
    "RETRIED",
    "RING",
    "Dialog",
    "callback_number",
    "decision_time",
    "dial_string",
    "next_attempt",
    "offer_start",
    "result_from_cause",
    "result_from_dialstatus",
]

#: Confirms the number read back.
CONFIRM_KEY = "1"
#: Ends a keyed number.
END_KEY = "#"
#: Fewest digits a callback number may have.
MIN_DIGITS = 3

# What a key of the dialog led to (:meth:`Dialog.press`).
#: More keys are expected (a keyed number in progress).
COLLECTING = "collecting"
#: The number is taken: register the callback.
CONFIRMED = "confirmed"
#: The key or number is refused: the caller waits on.
REFUSED = "refused"


def callback_number(raw: str | None, max_digits: int = 15) -> str | None:
    """*raw* as a number to call back (``+`` then digits, or digits), or None when it is
    not one: empty, a name, a SIP URI, too short or long, any other character."""
    if raw is None:
        return None
    text = raw.strip()
    if not re.fullmatch(rf"\+?[0-9]{{{MIN_DIGITS},{max_digits}}}", text, flags=re.ASCII):
        return None
    return text


def dial_string(template: str, number: str) -> str:
    """The endpoint to dial the customer: the queue's ``dial`` with *number* put in.
    *number* must come from :func:`callback_number` (checked again here)."""
    if callback_number(number, 20) != number:
        raise ValueError(f"not a callback number: {number!r}")
    return template.replace("{number}", number)


@dataclass
class Dialog:
    """The keys a caller presses after asking for a callback (pure: no clock, no I/O).

    ``caller_id``: the number read back (None when the caller ID is no number: then
    only a keyed number is taken)."""

    caller_id: str | None
    max_digits: int = 15
    keyed: str = field(default="", init=False)
    number: str | None = field(default=None, init=False)

    def press(self, key: str) -> str:
        """One key; after CONFIRMED, :attr:`number` is the number to call back."""
        if not self.keyed and key == CONFIRM_KEY and self.caller_id is not None:
            self.number = self.caller_id
            return CONFIRMED
        if key == END_KEY:
            self.number = callback_number(self.keyed, self.max_digits)
            return CONFIRMED if self.number is not None else REFUSED
        if len(key) == 1 and key in "0123456789" and len(self.keyed) < self.max_digits:
            self.keyed += key
            return COLLECTING
        return REFUSED


# Results of an attempt are the values of
# :class:`callcenter.storage.models.CallbackResult` (this module stays pure: no storage).

#: Results that call the customer again (when retries are left).
RETRIED = frozenset({"no_answer", "busy", "failed", "agent_gone"})

_DIAL = {"NOANSWER": "no_answer", "BUSY": "busy", "CHANUNAVAIL": "failed",
         "CONGESTION": "failed", "CANCEL": "no_answer"}


def result_from_dialstatus(dialstatus: str) -> str | None:
    """The customer attempt's result for a final ``Dial`` status (None: still going)."""
    return _DIAL.get(dialstatus.upper())


def result_from_cause(cause: int) -> str:
    """The customer attempt's result from its leg's Q.850 hangup cause (no final Dial)."""
    if cause == 17:
        return "busy"
    if cause in (16, 18, 19):  # no user responding, no answer (16: ended before answer)
        return "no_answer"
    return "failed"


def next_attempt(settings: Callback, customer_attempts: int, result: str,
                 now: float) -> float | None:
    """When to call the customer again (a timestamp) after an attempt ended with
    *result*; *customer_attempts* counts the attempts that dialled the customer, this
    one included. None: no more (answered, or ``retries`` used up). An attempt the
    agent missed is not the customer's: the callback is offered again at once."""
    if result == "agent_missed":
        return now
    if result not in RETRIED or customer_attempts > settings.retries:
        return None
    return now + settings.retry_delay


def decision_time(policy: QueuePolicy, enqueued_at: float, now: float) -> float:
    """The time to decide a callback's routing at: *now*, held just before the queue's
    first overflow stage (a callback has no caller to send there)."""
    for stage in policy.stages[1:]:
        if stage.overflow is not None:
            return min(now, enqueued_at + stage.after - 0.001)
    return now


# How a callback's offer starts (:func:`offer_start`).
#: The agent is reserved for this callback and nothing else is under way: call it.
RING = "ring"
#: The agent is reserved for this callback, which cannot take it now (another attempt is
#: under way, ring_all reserved several; or the callback is over): give the agent back.
RELEASE = "release"
#: The agent is no longer reserved for this callback (freed, then reserved for another
#: caller, between the reservation and this offer): never call it for this callback; the
#: callback waits again in its place, to be offered anew.
LOST = "lost"


def offer_start(*, call: str, reserved_for: str | None, held: bool, offering: bool,
                attempt_under_way: bool) -> str:
    """How an offer of a callback starts, under the caller's lock (pure).

    The router reserves the agent, then the offer runs as a task of its own: other tasks
    run in between, and the agent may have been freed and reserved for another caller
    meanwhile. *call*: the callback's caller channel; *reserved_for*: the caller the
    agent is reserved for now (the router's copy of its state; None: not reserved);
    *held*: the callback is still pending; *offering*: the caller is still in the
    ``offering`` phase the reservation put it in; *attempt_under_way*: another attempt
    already holds an agent. Ringing the agent for a callback it is not reserved for
    would ring a phone held for someone else.
    """
    if reserved_for != call:
        return LOST
    if not held or not offering or attempt_under_way:
        return RELEASE
    return RING
