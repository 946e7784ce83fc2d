"""Keeping `threads.needs_decision` true exactly when a PENDING action is in the thread.

Actions belong to messages, so "which threads wait for a person" would otherwise be an
EXISTS probe per thread: too slow for a 100,000-thread inbox. Every transaction that
creates an action or changes its status calls `refresh_needs_decision` before it commits.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Two statements on purpose: the row lock first, then the recount in a new statement,
# whose snapshot (READ COMMITTED) sees every action change committed before the lock
# was granted. The last transaction to commit therefore always recounts last.
_LOCK = text("SELECT 1 FROM threads WHERE id = :thread_id FOR UPDATE")
_RECOUNT = text(
    """UPDATE threads t SET needs_decision = EXISTS (
        SELECT 1 FROM messages m JOIN actions a ON a.message_id = m.id
        WHERE m.thread_id = t.id AND a.status = 'PENDING')
    WHERE t.id = :thread_id"""
)
_THREAD_OF_ACTION = text(
    "SELECT m.thread_id FROM actions a JOIN messages m ON m.id = a.message_id WHERE a.id = :id"
)


async def refresh_needs_decision(session: AsyncSession, thread_id: uuid.UUID) -> None:
    await session.flush()  # pending ORM changes to actions must be in the recount
    await session.execute(_LOCK, {"thread_id": thread_id})
    await session.execute(_RECOUNT, {"thread_id": thread_id})


async def refresh_for_action(session: AsyncSession, action_id: uuid.UUID) -> None:
    thread_id = (await session.execute(_THREAD_OF_ACTION, {"id": action_id})).scalar()
    if thread_id is not None:
        await refresh_needs_decision(session, thread_id)
