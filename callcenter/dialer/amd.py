"""What Asterisk's answering-machine detection said about an answered outbound call.

Dialplan contract: the generated context ``cc-dialer-amd`` (:mod:`dialplan.dialer`) runs
``AMD()`` on the answered channel and stores ``${AMDSTATUS}:${AMDCAUSE}`` in the channel
variable ``CC_AMD`` (:data:`callcenter.asterisk.variables.AMD`) before the call goes back
to the dialer's Stasis app; the placer reads it over ARI and :func:`parse_amd` turns it
into an :class:`AmdResult`.

``AMDSTATUS`` is ``MACHINE``, ``HUMAN``, ``NOTSURE`` or ``HANGUP``; ``AMDCAUSE`` says
why, with the figures app_amd measured: ``TOOLONG-<total ms>``, ``INITIALSILENCE-<silence
ms>-<limit>``, ``HUMAN-<silence ms>-<limit>``, ``LONGGREETING-<voice ms>-<limit>``,
``MAXWORDS-<words>-<limit>``, ``MAXWORDLENGTH-<ms>``. Anything else (an Asterisk that
never ran AMD, a value someone else set) parses to ``NOTSURE`` with the raw text kept,
never to an error: one odd channel must not stop a campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AMD_CONTEXT",
    "AMD_STATUSES",
    "ARG_ANALYSED",
    "ARG_ANSWERED",
    "ARG_BEEP",
    "BEEP_EXTEN",
    "DIALER_APP",
    "AmdResult",
    "AmdSettings",
    "AmdStatus",
    "BeepSettings",
    "amd_value",
    "parse_amd",
]

AmdStatus = Literal["MACHINE", "HUMAN", "NOTSURE", "HANGUP"]
#: Every status app_amd sets, as it spells them.
AMD_STATUSES: tuple[AmdStatus, ...] = ("MACHINE", "HUMAN", "NOTSURE", "HANGUP")


@dataclass(frozen=True, slots=True)
class AmdResult:
    """One AMD verdict: ``status`` as app_amd spells it, ``cause`` its reason
    (``MAXWORDS``, ``LONGGREETING``, ``HUMAN`` ...), ``figures`` the numbers after it."""

    status: AmdStatus
    cause: str = ""
    figures: tuple[int, ...] = ()
    raw: str = ""


def amd_value(status: str, cause: str) -> str:
    """The ``CC_AMD`` value the dialplan builds (``MACHINE:MAXWORDS-3-3``), for tests."""
    return f"{status}:{cause}"


def parse_amd(value: str | None) -> AmdResult | None:
    """``CC_AMD`` as the dialplan set it; None when it is unset or empty (AMD never ran:
    the call was not analysed, or hung up before ``AMD()`` started)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    status_text, _, cause_text = text.partition(":")
    status = status_text.strip().upper()
    if status not in AMD_STATUSES:
        return AmdResult("NOTSURE", "", (), text)
    name, *numbers = cause_text.strip().split("-") if cause_text.strip() else [""]
    figures: list[int] = []
    for n in numbers:
        if not n.isdigit() or len(n) > 9:
            break
        figures.append(int(n))
    return AmdResult(status, name.upper() if name.isalpha() else "",  # type: ignore[arg-type]
                     tuple(figures), text)


# -- the dialplan side (names shared with dialplan.dialer) -----------------------------------

#: The Stasis application that owns placed calls (:mod:`callcenter.dialer.placer`); the
#: AMD context hands the analysed call back to it.
DIALER_APP = "cc-dialer"
#: The generated context that runs ``AMD()`` on an answered outbound call.
AMD_CONTEXT = "cc-dialer-amd"
#: ``StasisStart`` arguments: the call answered (first entry), AMD done (second entry).
ARG_ANSWERED = "answered"
ARG_ANALYSED = "amd"
#: The extension of the AMD context that waits for a machine's beep before a message is
#: left (``continue`` to ``cc-dialer-amd,beep,1``), and the ``StasisStart`` argument the
#: call comes back with once it is heard (:mod:`callcenter.dialer.machine_message`).
BEEP_EXTEN = "beep"
ARG_BEEP = "beep"


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """``AMD()``'s arguments in milliseconds (app_amd's order), written into the
    dialplan so that any Asterisk analyses the same way whatever its ``amd.conf`` says.

    A human says a short word ("hello?") and waits: ``after_greeting_silence`` of
    silence after at most ``maximum_number_of_words`` words gives HUMAN. A machine talks
    on: more words, or one run of voice longer than ``greeting``, gives MACHINE.
    """

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    minimum_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 3
    silence_threshold: int = 256
    maximum_word_length: int = 5000

    def arguments(self) -> str:
        """``AMD()``'s data, comma separated, in app_amd's order."""
        return ",".join(str(int(v)) for v in (
            self.initial_silence, self.greeting, self.after_greeting_silence,
            self.total_analysis_time, self.minimum_word_length, self.between_words_silence,
            self.maximum_number_of_words, self.silence_threshold, self.maximum_word_length))


@dataclass(frozen=True, slots=True)
class BeepSettings:
    """``WaitForSilence()``'s arguments: how the dialplan hears that a machine's greeting
    and its beep are over, so that a message left starts on the recording.

    Asterisk has no beep detector; what follows a beep is silence (the machine records),
    and a greeting's pauses between words and sentences are shorter than ``silence``
    milliseconds. ``timeout`` seconds bound the wait: a greeting that never pauses that
    long gets the message anyway (``WAITSTATUS`` ``TIMEOUT``).
    """

    silence: int = 1500
    timeout: int = 20

    def arguments(self) -> str:
        """``WaitForSilence()``'s data: the silence needed, heard once, and the timeout."""
        return f"{int(self.silence)},1,{int(self.timeout)}"
