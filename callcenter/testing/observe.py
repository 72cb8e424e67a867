"""What Asterisk shows of a test's calls and phones: the next AMI event that matches
(the Asterisk testsuite's partial-match matcher) and an AOR's registered contacts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from callcenter.asterisk.ami.client import AMISubscription
from callcenter.asterisk.instance import AsteriskInstance

__all__ = ["next_event", "registered_contacts"]


async def next_event(subscription: AMISubscription, match: Mapping[str, str],
                     prefix: Mapping[str, str] | None = None,
                     timeout: float = 15.0) -> dict[str, str]:
    """The next AMI event whose fields include ``match`` (and start with ``prefix``:
    ``{"Channel": "PJSIP/carmen-"}``); events before it are passed over."""
    async with asyncio.timeout(timeout):
        async for event in subscription:
            if all(event.get(k) == v for k, v in match.items()) and all(
                    event.get(k, "").startswith(v) for k, v in (prefix or {}).items()):
                return dict(event)
    raise AssertionError(f"AMI subscription ended before {match}")


async def registered_contacts(instance: AsteriskInstance, aor: str) -> list[str]:
    """The AOR's registered contact URIs, as ``pjsip show contacts`` lists them."""
    _, out = await asyncio.to_thread(instance.cli, "pjsip show contacts", check=False)
    return re.findall(rf"^\s*Contact:\s+{re.escape(aor)}/(\S+)", out, re.MULTILINE)
