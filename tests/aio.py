"""asyncio helpers for tests (they live in callcenter.testing.aio, which the
library's softphone uses too)."""

from __future__ import annotations

from callcenter.testing.aio import cancel_and_wait

__all__ = ["cancel_and_wait"]
