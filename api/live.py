"""Live updates for the pages: a merchant's new Events, streamed as server-sent events.

Every state change (a message received, an action pending, approved, executed, failed)
writes an Event in the same transaction (models/event.py), so the events table is the one
place to watch. Each open stream polls it about once a second through the
(user_id, created_at) index; the page then re-fetches itself and swaps the changed parts.

An Event's created_at is its transaction's start, so a row can commit a little after a
later-stamped one: each poll reads a sliding window and reports the ids not seen before,
instead of trusting a high-water mark.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

POLL_INTERVAL_S = 1.0
# Longer than any transaction that writes an Event (activities time out after 30 s).
WINDOW_S = 120
KEEPALIVE_S = 15.0
# A stream ends after this long and the browser reconnects (and re-fetches the page):
# a server shutting down waits for open responses, so none may stay open for ever.
STREAM_LIFETIME_S = 25.0
RECONNECT_MS = 1000

_RECENT = text(
    """SELECT id, type, entity, entity_id FROM events
    WHERE user_id = :user_id AND created_at > clock_timestamp() - make_interval(secs => :window)
    ORDER BY created_at, id"""
)


@dataclass(frozen=True)
class Change:
    id: uuid.UUID
    type: str
    entity: str | None
    entity_id: str | None


async def _recent(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> list[Change]:
    async with sessions() as session:
        rows = (await session.execute(_RECENT, {"user_id": user_id, "window": WINDOW_S})).all()
    return [Change(row.id, row.type, row.entity, row.entity_id) for row in rows]


async def changes(
    sessions: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    *,
    interval: float = POLL_INTERVAL_S,
) -> AsyncIterator[list[Change]]:
    """The owner's Events committed after the first poll, in batches, one poll at a time.

    Yields an empty list when a poll found nothing, so the caller can send keep-alives."""
    seen = {change.id for change in await _recent(sessions, user_id)}
    while True:
        await asyncio.sleep(interval)
        recent = await _recent(sessions, user_id)
        yield [change for change in recent if change.id not in seen]
        # Only the window is remembered: an id older than it cannot come back.
        seen = {change.id for change in recent}


def sse(event: str, data: object, *, event_id: str | None = None) -> str:
    """One server-sent event (data is JSON on one line)."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


async def event_stream(
    sessions: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    *,
    interval: float = POLL_INTERVAL_S,
    lifetime: float | None = None,
) -> AsyncIterator[str]:
    """`ready` first (a reconnecting page re-fetches on it: it may have missed a change),
    then one `change` per batch of Events, comment lines to keep proxies from timing out;
    ends after `lifetime` (default STREAM_LIFETIME_S)."""
    lifetime = STREAM_LIFETIME_S if lifetime is None else lifetime
    yield f"retry: {RECONNECT_MS}\n\n"
    yield sse("ready", {})
    started = last_sent = time.monotonic()
    async for batch in changes(sessions, user_id, interval=interval):
        now = time.monotonic()
        if batch:
            yield sse(
                "change",
                [{"type": c.type, "entity": c.entity, "entity_id": c.entity_id} for c in batch],
                event_id=str(batch[-1].id),
            )
            last_sent = now
        elif now - last_sent >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = now
        if now - started >= lifetime:
            return
