"""Messages left when nobody can take a queue's calls: pure decisions for
:mod:`ari_apps.after_hours`.

A queue with ``when_unavailable.take_message`` (:class:`~callcenter.config.models.TakeMessage`)
does not send a caller it cannot take on to the destination: the caller leaves a message,
which becomes a callback (``number_source`` :data:`MESSAGE_SOURCE`) that keeps the caller's
place. Here: whether a caller may leave one (:func:`callback_number_of`: only a caller ID
that is a number can be called back), whether what was recorded is a message
(:func:`is_message`), and what the agent hears (:func:`message_media`). Nothing here reads
a clock or does I/O.
"""

from __future__ import annotations

import re

from callcenter.config.models import Queue
from callcenter.routing.callback import callback_number

__all__ = ["MESSAGE_SOURCE", "MIN_MESSAGE_SECONDS", "callback_number_of", "is_message",
           "message_media", "overflow_to"]

#: ``callbacks.number_source`` of a callback made from a message.
MESSAGE_SOURCE = "message"
#: ``<queue>/<segment>``: what :func:`~callcenter.recording.naming.message_name` builds.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}/[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}")
#: A recording shorter than this is no message (the caller hung up at the beep).
MIN_MESSAGE_SECONDS = 1.0


def callback_number_of(queue: Queue, caller_number: str | None) -> str | None:
    """The number to call back a caller of *queue* nobody can take, when it is to leave
    a message; None: it goes on to the destination as before (the queue takes no
    messages, or the caller ID is no number: a name, a SIP URI, anonymous)."""
    rule = queue.when_unavailable
    if rule is None or rule.take_message is None or queue.callback is None:
        return None
    return callback_number(caller_number, queue.callback.max_digits)


def is_message(duration: float | None) -> bool:
    """Whether a recording of *duration* seconds (None: no file) is worth a callback."""
    return duration is not None and duration >= MIN_MESSAGE_SECONDS


def message_media(name: str) -> str:
    """The media URI that plays the stored recording *name* (``recording:sales/message-…``).
    *name* is one of ours (:func:`~callcenter.recording.naming.message_name`); checked
    again, as it comes back from the database: safe segments only, as
    :data:`~callcenter.recording.naming.SAFE_SEGMENT` makes them."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"not a recording name: {name!r}")
    return f"recording:{name}"


def overflow_to(reason: str) -> str:
    """``queued_calls.overflow_to`` of a caller who left no message (hung up first):
    ``message:<reason>``."""
    return f"message:{reason}"
