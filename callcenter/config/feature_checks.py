"""Cross-checks of the agents' feature codes and the agent Stasis app.

A softphone sends the whole number it dials in one INVITE, so two codes only clash when
Asterisk would read one number two ways: two codes (or a code and an agent extension, which
share ``settings.extensions_context``) that are equal, or a number that starts with the pause
code, which the dialplan reads as "pause with the reason whose ``code`` follows" (``*72``
then ``1`` is ``*721``). Each problem is located at the code that loses::

    config/settings.yaml:12:12: settings.feature_codes.unpause: '*721' is the pause code
    '*72' followed by reason code '1' (pause_reasons.lunch)
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
    codes = s.feature_codes.codes()
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
    reasons_known = not broken.touches("pause_reasons")
    reason = s.feature_codes.pause_reason
    if reason is not None and reasons_known and reason not in c.pause_reasons:
        known = ", ".join(sorted(c.pause_reasons)) or "none defined"
        yield Problem(base + ("pause_reason",), f"unknown pause reason '{reason}' (known: {known})")
    if broken.touches("agents"):
        return
    yield from _shared_endpoints(c)
    for name, agent in c.agents.items():
        if agent.extension in owner:
            yield Problem(("agents", name, "extension"),
                          f"extension '{agent.extension}' is the {owner[agent.extension]} "
                          "feature code (settings.feature_codes)")
        elif agent.extension.startswith(pause):
            yield Problem(("agents", name, "extension"), _after_pause(agent.extension, pause, c))


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


def _after_pause(number: str, pause: str, c: CallCenterConfig) -> str:
    """Why ``number``, which starts with the pause code, cannot be dialled as itself."""
    rest = number[len(pause):]
    reason = next((n for n, r in c.pause_reasons.items() if r.code == rest), None)
    if reason is not None:
        return (f"'{number}' is the pause code '{pause}' followed by reason code '{rest}' "
                f"(pause_reasons.{reason})")
    return (f"'{number}' starts with the pause code '{pause}': it would read as a pause "
            f"with reason code '{rest}'; pick a code that does not start with '{pause}'")
