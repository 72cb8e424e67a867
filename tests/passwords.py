"""Agent softphone passwords for rendering in tests.

``render()`` takes the passwords as an argument (it is pure); unit tests give
fixed, obviously fake ones, tests against the real Asterisk the instance's own
(generated into its ``secrets.json``, as ``callcenter apply`` does).
"""

from __future__ import annotations

from callcenter.asterisk.instance import AsteriskInstance
from callcenter.asterisk.secrets import agent_passwords
from callcenter.config.loader import LoadedConfig
from callcenter.config.models import CallCenterConfig
from dialplan.generator import render, softphone_agents

__all__ = ["fake_passwords", "instance_render"]


def fake_passwords(config: CallCenterConfig) -> dict[str, str]:
    """Deterministic stand-ins (golden files stay stable); never used on a PBX."""
    return {name: f"fake-password-of-{name}" for name in softphone_agents(config)}


def instance_render(instance: AsteriskInstance, loaded: LoadedConfig) -> dict[str, str]:
    """The files ``callcenter apply`` would write into ``instance``."""
    passwords = agent_passwords(instance.secrets_file, softphone_agents(loaded.config))
    return render(loaded.config, loaded.where, agent_passwords=passwords)
