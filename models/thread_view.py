"""A thread as its page shows it: its messages, the order, the latest suggestion and action."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import NotFound
from models.action import Action
from models.conversation import Message, Thread
from models.order import Order
from models.suggestion import AISuggestion


@dataclass(frozen=True)
class ThreadRecords:
    thread: Thread
    messages: list[Message]
    order: Order | None
    suggestion: AISuggestion | None
    action: Action | None


async def load_thread(
    session: AsyncSession, user_id: uuid.UUID, thread_id: uuid.UUID
) -> ThreadRecords:
    """NotFound for a thread that is not this merchant's: its existence is not revealed."""
    # One snapshot: the workflow commits a suggestion and its action together.
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    thread = (
        await session.execute(
            select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
        )
    ).scalar_one_or_none()
    if thread is None:
        raise NotFound(f"thread {thread_id} not found")
    messages = list(
        (
            await session.execute(
                select(Message)
                .where(Message.thread_id == thread.id, Message.user_id == user_id)
                .order_by(Message.sent_at, Message.id)
            )
        ).scalars()
    )
    message_ids = [m.id for m in messages]
    # The order the conversation is about: the latest one matched to a message.
    order_id = next((m.order_id for m in reversed(messages) if m.order_id), None)
    order = await session.get(Order, order_id) if order_id else None
    suggestion = (
        await session.execute(
            select(AISuggestion)
            .where(AISuggestion.message_id.in_(message_ids))
            .order_by(AISuggestion.created_at.desc(), AISuggestion.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    action = (
        await session.execute(
            select(Action)
            .where(Action.message_id.in_(message_ids), Action.user_id == user_id)
            .order_by(Action.created_at.desc(), Action.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return ThreadRecords(thread, messages, order, suggestion, action)
