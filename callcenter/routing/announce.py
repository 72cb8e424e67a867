"""What a waiting caller is told (position, estimated wait) and when: pure decisions for
:mod:`ari_apps.announcer`, which plays them.

The words are Asterisk's stock sounds, in the order app_queue says them
(``say_position``), as ARI media URIs played as one list on the caller's channel::

    position 1:  sound:queue-youarenext            "your call is now first in line..."
    position N:  sound:queue-thereare number:N sound:queue-callswaiting
                                                   "you are currently caller number N,
                                                    waiting to speak to a representative"
    wait:        sound:queue-holdtime number:M sound:queue-minutes
                                                   "the estimated hold time is currently
                                                    M minutes" (M rounded up)
    wait < 60 s: sound:queue-holdtime sound:queue-less-than number:1 sound:queue-minute
"""

from __future__ import annotations

from collections.abc import Collection

from callcenter.config.models import Announce
from callcenter.routing.estimate import minutes_to_say
from callcenter.routing.policy import language_base

__all__ = ["DEFAULT_LANGUAGE", "PROMPTS", "next_due", "prompts", "sound_language"]

#: Every stock sound an announcement may use (all must exist in a language to use it).
PROMPTS = ("queue-youarenext", "queue-thereare", "queue-callswaiting", "queue-holdtime",
           "queue-less-than", "queue-minute", "queue-minutes")
#: The language announcements fall back to (the PBX's ``defaultlanguage``).
DEFAULT_LANGUAGE = "en"


def prompts(settings: Announce, position: int, wait: float | None) -> tuple[str, ...]:
    """The media URIs of one announcement to the caller at *position* (1: next) whose
    estimated wait is *wait* seconds (None: not known, the wait is not said)."""
    media: list[str] = []
    if settings.position:
        if position <= 1:
            media.append("sound:queue-youarenext")
        else:
            media += ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if settings.wait and wait is not None:
        minutes = minutes_to_say(wait)
        if minutes == 0:
            media += ["sound:queue-holdtime", "sound:queue-less-than", "number:1",
                      "sound:queue-minute"]
        else:
            media += ["sound:queue-holdtime", f"number:{minutes}",
                      "sound:queue-minute" if minutes == 1 else "sound:queue-minutes"]
    return tuple(media)


def sound_language(caller: str | None, available: Collection[str]) -> str:
    """The language to play a caller's announcement in: the caller's own (``es``), else
    its base (``pt_BR`` -> ``pt``), else :data:`DEFAULT_LANGUAGE`; *available* is the
    languages in which every one of :data:`PROMPTS` exists."""
    if caller:
        for candidate in (caller, language_base(caller)):
            if candidate in available:
                return candidate
    return DEFAULT_LANGUAGE


def next_due(settings: Announce, entered: float,
             last_finished: float | None, announced: int) -> float | None:
    """When the next announcement starts: ``first_after`` seconds after the caller entered,
    then ``every`` seconds after the previous one ended (so the caller always hears that
    much music between two); None once there is no next one (``every: 0``). Times are
    seconds on the caller's clock."""
    if announced == 0:
        return entered + settings.first_after
    if settings.every == 0 or last_finished is None:
        return None
    return last_finished + settings.every
