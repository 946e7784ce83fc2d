"""What the pages show of the playbooks' work: the playbooks that handled a thread, and a
merchant's recent messages to test a playbook on. Every query is scoped by the owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import MessageDirection, PlaybookExecutionStatus
from models.conversation import Message, Thread
from models.playbook import Playbook, PlaybookExecution


@dataclass(frozen=True)
class ThreadExecution:
    execution_id: uuid.UUID
    playbook_id: uuid.UUID
    playbook_name: str
    status: PlaybookExecutionStatus
    automatic: bool
    decided_by: str | None
    created_at: datetime


@dataclass(frozen=True)
class RecentMessage:
    id: uuid.UUID
    thread_id: uuid.UUID
    from_address: str
    subject: str
    sent_at: datetime


async def thread_executions(
    session: AsyncSession, user_id: uuid.UUID, thread_id: uuid.UUID, *, limit: int = 20
) -> list[ThreadExecution]:
    """The playbook executions of one of the owner's threads, newest first (the thread_id
    index serves it; a thread has few)."""
    rows = await session.execute(
        select(
            PlaybookExecution.id,
            Playbook.id,
            Playbook.name,
            PlaybookExecution.status,
            PlaybookExecution.automatic,
            PlaybookExecution.decided_by,
            PlaybookExecution.created_at,
        )
        .join(Playbook, Playbook.id == PlaybookExecution.playbook_id)
        .where(
            PlaybookExecution.thread_id == thread_id,
            PlaybookExecution.user_id == user_id,
            Playbook.user_id == user_id,
        )
        .order_by(PlaybookExecution.created_at.desc(), PlaybookExecution.id.desc())
        .limit(limit)
    )
    return [ThreadExecution(*row) for row in rows.all()]


async def recent_messages(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int = 20
) -> list[RecentMessage]:
    """The owner's newest customer messages, to pick one to test a playbook on."""
    rows = await session.execute(
        select(Message.id, Message.thread_id, Message.from_address, Thread.subject, Message.sent_at)
        .join(Thread, Thread.id == Message.thread_id)
        .where(
            Message.user_id == user_id,
            Thread.user_id == user_id,
            Message.direction == MessageDirection.INBOUND,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return [RecentMessage(*row) for row in rows.all()]
