"""Starting a stored message's MessageWorkflow, and the reconciler that catches up.

The message is committed before its workflow starts; `workflow_started_at`
stays null until Temporal has accepted the start, so a crash or an unreachable
server in between leaves a row the reconciler finds and starts later.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from kernel.enums import MessageDirection
from kernel.settings import Settings
from models.conversation import Message
from workflows import search_attributes
from workflows.contracts import (
    MESSAGE_WORKFLOW,
    TASK_QUEUE,
    MessageWorkflowInput,
    Stage,
    message_workflow_id,
)

logger = logging.getLogger(__name__)

# A start is one RPC; waiting longer only delays the 202 the reconciler would cover anyway.
START_RPC_TIMEOUT = timedelta(seconds=10)
RECONCILE_BATCH = 500


def decision_windows(settings: Settings) -> tuple[timedelta, timedelta]:
    """(reminder_after, expire_after) for a pending decision."""
    return (
        timedelta(hours=settings.decision_reminder_hours),
        timedelta(days=settings.decision_expiry_days),
    )


async def start_message_workflow(
    client: Client,
    user_id: uuid.UUID,
    message_uuid: uuid.UUID,
    workflow_id: str,
    reminder_after: timedelta,
    expire_after: timedelta,
    *,
    task_queue: str = TASK_QUEUE,
) -> bool:
    """Start the message's workflow; True if this call started it, False if it already existed.

    Either answer is success: the deterministic id makes a second start find the first.
    """
    try:
        await client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageWorkflowInput(
                user_id=user_id,
                message_id=message_uuid,
                reminder_after=reminder_after,
                expire_after=expire_after,
            ),
            id=workflow_id,
            task_queue=task_queue,
            # Running: hand back the running one. Closed: refuse (a message is answered once).
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.OWNER, str(user_id)),
                    SearchAttributePair(search_attributes.MESSAGE, str(message_uuid)),
                    SearchAttributePair(search_attributes.STATUS, Stage.RECEIVED.value),
                ]
            ),
            rpc_timeout=START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def mark_started(
    sessions: async_sessionmaker[AsyncSession], message_uuid: uuid.UUID, workflow_id: str
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Message)
            .where(Message.id == message_uuid, Message.workflow_started_at.is_(None))
            .values(
                workflow_started_at=func.now(),
                workflow_id=func.coalesce(Message.workflow_id, workflow_id),
            )
        )


async def start_and_mark(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    user_id: uuid.UUID,
    message_uuid: uuid.UUID,
    workflow_id: str,
    *,
    task_queue: str = TASK_QUEUE,
) -> None:
    reminder_after, expire_after = decision_windows(settings)
    started = await start_message_workflow(
        client,
        user_id,
        message_uuid,
        workflow_id,
        reminder_after,
        expire_after,
        task_queue=task_queue,
    )
    await mark_started(sessions, message_uuid, workflow_id)
    logger.info(
        "message workflow %s",
        "started" if started else "already existed",
        extra={"workflow_id": workflow_id, "message_id": str(message_uuid)},
    )


async def reconcile_unstarted(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    *,
    task_queue: str = TASK_QUEUE,
) -> int:
    """Start a workflow for every stored inbound message that lacks one; returns how many.

    A Temporal error propagates: the caller runs this again later (worker start, schedule).
    """
    count = 0
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(Message.id, Message.user_id, Message.message_id, Message.workflow_id)
                    .where(
                        Message.workflow_started_at.is_(None),
                        Message.direction == MessageDirection.INBOUND,
                    )
                    .order_by(Message.created_at)
                    .limit(RECONCILE_BATCH)
                )
            ).all()
        if not rows:
            return count
        for message_uuid, user_id, rfc_message_id, workflow_id in rows:
            await start_and_mark(
                sessions,
                client,
                settings,
                user_id,
                message_uuid,
                workflow_id or message_workflow_id(user_id, rfc_message_id),
                task_queue=task_queue,
            )
            count += 1
