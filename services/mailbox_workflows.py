"""Starting (or nudging) a Gmail mailbox's MailboxSyncWorkflow, and keeping one running
for every enabled mailbox."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from kernel.settings import Settings
from models.gmail import enabled_gmail_connections
from workflows.contracts import TASK_QUEUE
from workflows.mailbox_contracts import (
    MAILBOX_CHANGED_SIGNAL,
    MAILBOX_SYNC_WORKFLOW,
    MailboxSyncInput,
    mailbox_workflow_id,
)

logger = logging.getLogger(__name__)
START_RPC_TIMEOUT = timedelta(seconds=10)


async def ensure_mailbox_sync(
    client: Client,
    settings: Settings,
    connection_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    pushed_history_id: int | None = None,
    task_queue: str = TASK_QUEUE,
) -> None:
    """Start the mailbox's workflow unless it runs; with a pushed history id, also tell it
    the mailbox changed (signal-with-start: a lost workflow is started by the push)."""
    data = MailboxSyncInput(
        connection_id=connection_id,
        user_id=user_id,
        poll_interval=timedelta(seconds=settings.gmail_poll_seconds),
    )
    workflow_id = mailbox_workflow_id(connection_id)
    if pushed_history_id is None:
        await client.start_workflow(
            MAILBOX_SYNC_WORKFLOW,
            data,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=START_RPC_TIMEOUT,
        )
        return
    await client.start_workflow(
        MAILBOX_SYNC_WORKFLOW,
        data,
        id=workflow_id,
        task_queue=task_queue,
        start_signal=MAILBOX_CHANGED_SIGNAL,
        start_signal_args=[pushed_history_id],
        rpc_timeout=START_RPC_TIMEOUT,
    )


async def reconcile_mailboxes(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    *,
    task_queue: str = TASK_QUEUE,
) -> int:
    """Make sure every enabled Gmail mailbox has its sync running; returns how many."""
    async with sessions() as session:
        mailboxes = await enabled_gmail_connections(session)
    for connection_id, user_id in mailboxes:
        await ensure_mailbox_sync(client, settings, connection_id, user_id, task_queue=task_queue)
    return len(mailboxes)
