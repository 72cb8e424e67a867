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
    "AGENT",
    "AGENT_ENDPOINT",
    "AGI_ERROR",
    "AMD",
    "AMD_BEEP",
    "ASTERISK_VARIABLES",
    "ATTEMPT_ID",
    "CALLER",
    "CAMPAIGN",
    "CLOCK_OVERRIDE",
    "CONTACT_ID",
    "ENTRY",
    "LOOKUP_STATUS",
    "MENU",
    "OUTBOUND_CALLER_ID",
    "PRIORITY",
    "QUEUE_PRIORITY",
    "QUEUE_SKILLS",
    "RAW_DIGITS",
    "RING_TIMEOUT",
    "RULE",
    "SCHEDULE",
    "SCHED_LOCALTIME",
    "SET_AT_ENTRY",
    "SET_BY_LOOKUP",
    "SET_BY_SCHEDULE",
    "SUPERVISE_TARGET",
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
#: On an agent's feature-code call: the agent whose PJSIP endpoint placed it, and that
#: endpoint's name filtered to [A-Za-z0-9_] (``cc-agent-identify``).
AGENT = "CC_AGENT"
AGENT_ENDPOINT = "CC_AGENT_ENDPOINT"
#: On a supervisor's code (``*80<digits>``): the digits dialled after the code, filtered
#: to 0-9 (the agent to supervise, by extension or name on the keypad).
SUPERVISE_TARGET = "CC_SUPERVISE_TARGET"
#: Read by a trunk's dial context (``cc-trunk-<name>-out``) when set on the calling
#: channel: the caller ID to send (else the trunk's ``caller_id``) and the seconds to
#: ring (else the trunk's ``ring_timeout``); both filtered (``+0-9``, ``0-9``) there.
OUTBOUND_CALLER_ID = "CC_OUTBOUND_CALLER_ID"
RING_TIMEOUT = "CC_RING_TIMEOUT"
#: Set by the dialer's AMD context (``cc-dialer-amd``) on an answered outbound call:
#: ``${AMDSTATUS}:${AMDCAUSE}`` (``MACHINE:MAXWORDS-3-3``), read back over ARI.
AMD = "CC_AMD"
#: Set by the same context's ``beep`` extension before a message is left on a machine:
#: ``${WAITSTATUS}`` of ``WaitForSilence()`` (``SILENCE``: the greeting and its beep are
#: over; ``TIMEOUT``: no pause long enough came in time).
AMD_BEEP = "CC_AMD_BEEP"
#: Set by the agentless dialer (``ari_apps/agentless.py``) on an answered call before it
#: enters the campaign's flow: the campaign, the contact and the attempt (database ids),
#: so the flow (a lookup, a log line) knows whom it is talking to.
CAMPAIGN = "CC_CAMPAIGN"
CONTACT_ID = "CC_CONTACT_ID"
ATTEMPT_ID = "CC_ATTEMPT_ID"


# -- which variables a call flow may branch on, and who sets them ----------------------------
# One table for validation (a ``branch`` on a variable nothing sets is a typo), the
# compiled call-flow model and the README. Values say what the variable holds.

#: Set by the generated dialplan on every call, at entry, by caller-ID rules and menus.
SET_AT_ENTRY: dict[str, str] = {
    ENTRY: "entry point the call came in on",
    CALLER: "caller's number, digits only",
    RULE: "caller-ID rule that matched (empty if none)",
    PRIORITY: "priority from caller-ID rules (VIP)",
    MENU: "menu the call is in",
}
#: Set by a ``check_schedule`` step.
SET_BY_SCHEDULE: dict[str, str] = {
    SCHEDULE: "open | closed | holiday",
}
#: Set by a ``lookup`` step: ``account_lookup`` (database and http lookups) sets them all;
#: an ``agi`` lookup's own script sets CC_LOOKUP_STATUS and whichever of the others it knows.
SET_BY_LOOKUP: dict[str, str] = {
    LOOKUP_STATUS: "found | not_found | error",
    ACCOUNT_ID: "account id (found)",
    ACCOUNT_NAME: "account holder's name (found)",
    ACCOUNT_LANGUAGE: "account's language, e.g. en (found)",
    ACCOUNT_VIP: "1 for a VIP account, else 0 (found)",
    AGI_ERROR: "why the FastAGI script failed, when it did",
}
#: Asterisk's own channel variables that make sense to branch on (set by its applications).
ASTERISK_VARIABLES: dict[str, str] = {
    "DIALSTATUS": "Dial(): ANSWER | BUSY | NOANSWER | CANCEL | CONGESTION | CHANUNAVAIL ...",
    "AGISTATUS": "AGI(): SUCCESS | FAILURE | NOTFOUND | HANGUP",
    "STASISSTATUS": "Stasis(): SUCCESS | FAILED",
    "READSTATUS": "Read(): OK | ERROR | HANGUP | INTERRUPTED | SKIPPED | TIMEOUT",
    "VMSTATUS": "VoiceMail(): SUCCESS | USEREXIT | FAILED",
    "QUEUESTATUS": "Queue(): TIMEOUT | FULL | JOINEMPTY | LEAVEEMPTY ...",
    "HANGUPCAUSE": "Q.850 cause of the last hangup",
    "DIALEDTIME": "Dial(): seconds from dial to hangup",
    "ANSWEREDTIME": "Dial(): seconds the call was answered",
    "EXTEN": "extension dialled",
    "CONTEXT": "current dialplan context",
    "CHANNEL": "channel name",
    "UNIQUEID": "the channel's unique id",
    "SYSTEMNAME": "asterisk.conf systemname",
}


def back_variable(menu: str) -> str:
    """Variable holding the menu that led to ``menu`` (for ``back``)."""
    return f"CC_BACK_{menu}"
