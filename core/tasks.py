"""Background-task helpers shared by the bus, the queue registry and the server."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancels a background task and waits until it has really finished, so nothing outlives a stop."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
