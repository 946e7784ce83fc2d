"""Heartbeating for the whole of a long step, not only where it knows it waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

HEARTBEAT_EVERY_S = 2.0


@contextlib.asynccontextmanager
async def heartbeating(every: float = HEARTBEAT_EVERY_S) -> AsyncIterator[None]:
    """Heartbeat while the block runs. A heartbeat says the worker is alive: a dead worker's
    step is handed over after the heartbeat timeout, while a live one that waits on a slow
    store (an order read, a rate-limit wait) is never run twice side by side."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    ticker = asyncio.create_task(beat())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
