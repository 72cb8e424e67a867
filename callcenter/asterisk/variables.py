"""Every channel variable the call center reads or sets, named once.

The generated dialplan, the FastAGI scripts, the ARI apps and the tests all
import these names, so a rename is one edit and a typo is an ImportError.
"""

from __future__ import annotations

__all__ = [
    "ACCOUNT_ID",
    "ACCOUNT_LANGUAGE",
    "ACCOUNT_NAME",
    "ACCOUNT_VIP",
    "AGI_ERROR",
    "CALLER",
    "CLOCK_OVERRIDE",
    "ENTRY",
    "LOOKUP_STATUS",
    "MENU",
    "PRIORITY",
    "QUEUE_PRIORITY",
    "QUEUE_SKILLS",
    "RAW_DIGITS",
    "RULE",
    "SCHEDULE",
    "SCHED_LOCALTIME",
    "TRIES",
    "back_variable",
]

#: Entry point the call came in on (set at entry).
ENTRY = "CC_ENTRY"
#: Caller's number, digits only (set by the caller-ID rules).
CALLER = "CC_CALLER"
#: Name of the caller-ID rule that matched, if any.
RULE = "CC_RULE"
#: Priority from caller-ID rules (VIP); added to the queue's priority.
PRIORITY = "CC_PRIORITY"
#: Menu the call is in, and how many invalid keys/timeouts it has had there.
MENU = "CC_MENU"
TRIES = "CC_TRIES"
#: Digits as ``Read()`` returned them, before ``FILTER()``.
RAW_DIGITS = "CC_RAW_DIGITS"
#: Result of the last schedule check: open | closed | holiday.
SCHEDULE = "CC_SCHEDULE"
#: Global: an epoch the schedule checks use instead of the clock when set
#: (tests, dry runs: ``dialplan set global CC_CLOCK_OVERRIDE 1796050800``).
CLOCK_OVERRIDE = "CC_CLOCK_OVERRIDE"
#: Local time of the schedule being checked, ``YYYYMMDD-D-HHMM`` (D: ISO weekday).
SCHED_LOCALTIME = "CC_SCHED_LOCALTIME"
#: Set by lookup scripts: found | not_found | error.
LOOKUP_STATUS = "CC_LOOKUP_STATUS"
#: Set by ``account_lookup`` when found.
ACCOUNT_ID = "CC_ACCOUNT_ID"
ACCOUNT_NAME = "CC_ACCOUNT_NAME"
ACCOUNT_LANGUAGE = "CC_ACCOUNT_LANGUAGE"
ACCOUNT_VIP = "CC_ACCOUNT_VIP"
#: Skills and priority of the queue destination being entered.
QUEUE_SKILLS = "CC_QUEUE_SKILLS"
QUEUE_PRIORITY = "CC_QUEUE_PRIORITY"
#: Set by the FastAGI server when a script failed or was unknown.
AGI_ERROR = "CC_AGI_ERROR"


def back_variable(menu: str) -> str:
    """Variable holding the menu that led to ``menu`` (for ``back``)."""
    return f"CC_BACK_{menu}"
