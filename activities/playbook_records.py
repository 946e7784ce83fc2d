"""What the playbook steps share: an execution read by its owner, the final statuses,
how an automatic decision is named, and the runs a customer's reply must reach."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_rules import ThreadIdleTrigger
from kernel.enums import ActionStatus, PlaybookExecutionStatus
from kernel.errors import DeskpilotError, NotFound
from models.action import Action
from models.playbook import Playbook, PlaybookExecution
from models.thread_state import refresh_needs_decision
from services.playbook_facts import playbook_view
from workflows.playbook_contracts import ExecutionRef

FINAL = (
    PlaybookExecutionStatus.executed,
    PlaybookExecutionStatus.failed,
    PlaybookExecutionStatus.rejected,
)


def decided_by_playbook(playbook_id: uuid.UUID) -> str:
    return f"playbook:{playbook_id}"


def idle_trigger(playbook: Playbook) -> ThreadIdleTrigger | None:
    """The playbook's thread.idle trigger, if that is what it has (and it still parses)."""
    try:
        trigger = playbook_view(playbook).rules.trigger
    except DeskpilotError:
        return None
    return trigger if isinstance(trigger, ThreadIdleTrigger) else None


async def execution_of(
    session: AsyncSession, ref: ExecutionRef, *, lock: bool = False
) -> PlaybookExecution:
    query = select(PlaybookExecution).where(
        PlaybookExecution.id == ref.execution_id, PlaybookExecution.user_id == ref.user_id
    )
    if lock:
        query = query.with_for_update()
    execution = (await session.execute(query)).scalar_one_or_none()
    if execution is None:
        raise NotFound(f"playbook execution {ref.execution_id} not found")
    return execution


async def waiting_runs(
    session: AsyncSession, user_id: uuid.UUID, thread_id: uuid.UUID | None
) -> list[str]:
    """Runs in this thread waiting on the customer: a reply from them ends those waits."""
    if thread_id is None:
        return []
    rows = await session.execute(
        select(PlaybookExecution.workflow_id).where(
            PlaybookExecution.user_id == user_id,
            PlaybookExecution.thread_id == thread_id,
            PlaybookExecution.status.not_in(FINAL),
            PlaybookExecution.result["waiting"].is_not(None),
        )
    )
    return [w for w in rows.scalars() if w]


async def note_on_action(session: AsyncSession, execution: PlaybookExecution, note: str) -> None:
    action = await session.get(Action, execution.action_id) if execution.action_id else None
    if action is not None and action.status is ActionStatus.PENDING:
        action.payload = {**action.payload, "note": note}
    if execution.thread_id is not None:
        await refresh_needs_decision(session, execution.thread_id)


def blocker(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}
