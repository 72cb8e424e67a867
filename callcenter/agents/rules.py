"""The state machine's :class:`~callcenter.agents.state.Rules` from the loaded config."""

from __future__ import annotations

from callcenter.agents.state import Rules
from callcenter.config.models import CallCenterConfig

__all__ = ["rules_from_config"]


def rules_from_config(config: CallCenterConfig) -> Rules:
    """The pause reasons of ``pause_reasons:`` (validate has refused system names)."""
    return Rules(pause_reasons=frozenset(config.pause_reasons))
