"""What a merchant's playbooks did: a playbook's executions, newest first in keyset pages,
and the execution that handled a message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import PlaybookExecutionStatus
from models.keyset import decode_keyset, encode_keyset
from models.playbook import PlaybookExecution
from services.playbook_settings import get_playbook


class ExecutionOut(BaseModel):
    id: uuid.UUID
    status: PlaybookExecutionStatus
    confidence: float | None
    trigger_data: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    executed_at: datetime | None
    message_id: uuid.UUID | None
    thread_id: uuid.UUID | None
    workflow_id: str | None  # the PlaybookRunWorkflow, for the Temporal Web UI
    decided_by: str | None  # "playbook" on its own, "person", or null while undecided
    automatic: bool


class ExecutionPage(BaseModel):
    executions: list[ExecutionOut]
    next_cursor: str | None  # opaque; null on the last page


class MessagePlaybookOut(BaseModel):
    """The playbook that handled a message, and its execution."""

    id: uuid.UUID
    name: str
    execution_id: uuid.UUID


@dataclass(frozen=True)
class ExecutionCursor:
    """The last execution of a page: the next page starts strictly after it. The same
    opaque form as the inbox's cursor."""

    created_at: datetime
    execution_id: uuid.UUID

    def encode(self) -> str:
        return encode_keyset(self.created_at, self.execution_id)

    @classmethod
    def decode(cls, value: str) -> ExecutionCursor:
        return cls(*decode_keyset(value))


async def list_executions(
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> ExecutionPage:
    """Newest first, by (created_at, id): one range of the (playbook_id, created_at) index
    however deep the page, and executions written meanwhile never shift later pages.
    Another merchant's playbook is not found (404)."""
    after = ExecutionCursor.decode(cursor) if cursor else None  # 400 before any query
    await get_playbook(session, user_id, playbook_id)
    query = select(PlaybookExecution).where(
        PlaybookExecution.playbook_id == playbook_id, PlaybookExecution.user_id == user_id
    )
    if after is not None:
        query = query.where(
            or_(
                PlaybookExecution.created_at < after.created_at,
                and_(
                    PlaybookExecution.created_at == after.created_at,
                    PlaybookExecution.id < after.execution_id,
                ),
            )
        )
    query = query.order_by(PlaybookExecution.created_at.desc(), PlaybookExecution.id.desc())
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    page, more = rows[:limit], len(rows) > limit
    return ExecutionPage(
        executions=[ExecutionOut.model_validate(e, from_attributes=True) for e in page],
        next_cursor=ExecutionCursor(page[-1].created_at, page[-1].id).encode()
        if more and page
        else None,
    )
