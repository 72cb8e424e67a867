"""Cross-checks of the agents' feature codes and the agent Stasis app.

A softphone sends the whole number it dials in one INVITE, so two codes only clash when
Asterisk would read one number two ways: two codes (or a code and an agent extension, which
share ``settings.extensions_context``) that are equal, or a number that starts with the pause
code, which the dialplan reads as "pause with the reason whose ``code`` follows" (``*72``
then ``1`` is ``*721``). Each problem is located at the code that loses::

    config/settings.yaml:12:12: settings.feature_codes.unpause: '*721' is the pause code
    '*72' followed by reason code '1' (pause_reasons.lunch)

The supervisors' codes (``listen``, ``whisper``, ``barge``) are followed by an agent's
extension, so no other code may start with one of them. Who is a supervisor is checked
here too: ``role: supervisor`` with at least one existing queue in ``supervises``, and a
PJSIP endpoint to be known by (the dialplan identifies callers by endpoint, never by
caller ID)::

    config/queues.yaml:40:18: agents.bob.supervises[1]: unknown queue 'sale' (known: ...)
"""

from __future__ import annotations

from collections.abc import Iterator

from callcenter.config.checks import Problem
from callcenter.config.models import CallCenterConfig
from callcenter.config.partial import Broken

__all__ = ["check_feature_codes"]

_NOTHING_BROKEN = Broken()


def check_feature_codes(c: CallCenterConfig,
                        broken: Broken = _NOTHING_BROKEN) -> Iterator[Problem]:
    """Every problem with ``settings.feature_codes`` and ``settings.agent_app``."""
    if broken.touches("settings"):
        return
    s = c.settings
    base = ("settings", "feature_codes")
    if s.agent_app == s.queue_app:
        yield Problem(("settings", "agent_app"),
                      f"agent_app '{s.agent_app}' is also the queue_app: feature codes and "
                      "queued callers need two Stasis apps")
    codes = s.feature_codes.codes() | s.feature_codes.supervisor_codes()
    owner: dict[str, str] = {}
    for action, code in codes.items():
        if code in owner:
            yield Problem(base + (action,),
                          f"'{code}' is already the {owner[code]} code")
            continue
        owner[code] = action
    pause = s.feature_codes.pause
    for action, code in codes.items():
        if action != "pause" and code.startswith(pause) and code != pause:
            yield Problem(base + (action,), _after_pause(code, pause, c))
    for mode, prefix in s.feature_codes.supervisor_codes().items():
        clash = next(((a, code) for a, code in codes.items()
                      if code != prefix and code.startswith(prefix)), None)
        if clash is not None and owner.get(prefix) == mode:
            yield Problem(base + (mode,),
                          f"the {mode} code '{prefix}' is followed by an agent's extension, "
                          f"but the {clash[0]} code '{clash[1]}' starts with it: pick codes "
                          "where neither starts with the other")
    reasons_known = not broken.touches("pause_reasons")
    reason = s.feature_codes.pause_reason
    if reason is not None and reasons_known and reason not in c.pause_reasons:
        known = ", ".join(sorted(c.pause_reasons)) or "none defined"
        yield Problem(base + ("pause_reason",), f"unknown pause reason '{reason}' (known: {known})")
    if broken.touches("agents"):
        return
    yield from _shared_endpoints(c)
    yield from _supervisors(c, queues_known=not broken.touches("queues"))
    for name, agent in c.agents.items():
        if agent.extension in owner:
            yield Problem(("agents", name, "extension"),
                          f"extension '{agent.extension}' is the {owner[agent.extension]} "
                          "feature code (settings.feature_codes)")
        elif agent.extension.startswith(pause):
            yield Problem(("agents", name, "extension"), _after_pause(agent.extension, pause, c))
        elif clash := next((m for m, code in s.feature_codes.supervisor_codes().items()
                            if agent.extension.startswith(code)), None):
            yield Problem(("agents", name, "extension"),
                          f"extension '{agent.extension}' starts with the {clash} code "
                          f"'{s.feature_codes.supervisor_codes()[clash]}' (settings.feature_codes)")


def _shared_endpoints(c: CallCenterConfig) -> Iterator[Problem]:
    """A feature code's agent is its PJSIP endpoint: two agents on one endpoint (a
    ``device: PJSIP/alice`` next to alice's generated softphone) cannot be told apart."""
    owner: dict[str, str] = {name: name for name, a in c.agents.items() if a.softphone}
    for name, agent in sorted(c.agents.items()):
        endpoint = agent.endpoint(name)
        if agent.softphone or endpoint is None:
            continue
        if endpoint in owner:
            yield Problem(("agents", name, "device"),
                          f"PJSIP endpoint '{endpoint}' is also agent {owner[endpoint]}'s "
                          "phone: calls and feature codes could not tell the two apart")
        else:
            owner[endpoint] = name


def _supervisors(c: CallCenterConfig, *, queues_known: bool) -> Iterator[Problem]:
    """``role: supervisor`` goes with ``supervises`` (existing queues) and an endpoint."""
    for name, agent in sorted(c.agents.items()):
        where = ("agents", name)
        if agent.role != "supervisor":
            if agent.supervises:
                yield Problem(where + ("supervises",),
                              "only a supervisor supervises queues: add 'role: supervisor' "
                              "or remove 'supervises'")
            continue
        if not agent.supervises:
            yield Problem(where + ("role",),
                          f"supervisor {name} supervises no queue: list the queues whose "
                          "agents it may listen to in 'supervises'")
        if agent.endpoint(name) is None:
            yield Problem(where + ("device",),
                          f"supervisor {name}'s device '{agent.device}' is no PJSIP endpoint "
                          "(PJSIP/<endpoint>): its supervisor codes could not tell it is "
                          "the supervisor")
        if not queues_known:
            continue
        seen: set[str] = set()
        for index, queue in enumerate(agent.supervises):
            if queue not in c.queues:
                known = ", ".join(sorted(c.queues)) or "none defined"
                yield Problem(where + ("supervises", index),
                              f"unknown queue '{queue}' (known: {known})")
            elif queue in seen:
                yield Problem(where + ("supervises", index), f"queue '{queue}' listed twice")
            seen.add(queue)


def _after_pause(number: str, pause: str, c: CallCenterConfig) -> str:
    """Why ``number``, which starts with the pause code, cannot be dialled as itself."""
    rest = number[len(pause):]
    reason = next((n for n, r in c.pause_reasons.items() if r.code == rest), None)
    if reason is not None:
        return (f"'{number}' is the pause code '{pause}' followed by reason code '{rest}' "
                f"(pause_reasons.{reason})")
    return (f"'{number}' starts with the pause code '{pause}': it would read as a pause "
            f"with reason code '{rest}'; pick a code that does not start with '{pause}'")
