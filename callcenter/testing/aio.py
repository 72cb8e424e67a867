"""asyncio helpers shared by the test harness and the tools built on it."""

from __future__ import annotations

import asyncio

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    """Cancel a task we own and wait until it has finished.

    ``asyncio.wait`` does not raise the task's CancelledError, so a cancellation of
    *our* caller is never swallowed; an error the task had already raised is
    re-raised, not lost.
    """
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
