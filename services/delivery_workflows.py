"""What every stored webhook delivery shares: its workflow is started once under an id
the event names, and a reconciler pages through the deliveries left unprocessed (the API
stored them while Temporal was down longer than the sender kept retrying)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

START_RPC_TIMEOUT = timedelta(seconds=10)
RECONCILE_BATCH = 500
# Deliveries younger than this are probably being started by the API right now.
RECONCILE_GRACE = timedelta(seconds=30)


async def start_once(
    client: Client, workflow: str, arg: Any, *, workflow_id: str, task_queue: str
) -> bool:
    """True if this call started it; False if the delivery's workflow already exists."""
    try:
        await client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # One that gave up (retries exhausted) may run again from the reconciler or a
            # redelivery; one that completed processed the delivery.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            rpc_timeout=START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def unprocessed(
    sessions: async_sessionmaker[AsyncSession],
    model: Any,
    *columns: Any,
    grace: timedelta = RECONCILE_GRACE,
) -> AsyncIterator[Row[Any]]:
    """`model`'s rows (received_at, id, *columns) not yet processed and older than `grace`,
    oldest first. Keyset paging: running workflows leave rows unprocessed for a while."""
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessions() as session:
            query = (
                select(model.received_at, model.id, *columns)
                .where(model.processed_at.is_(None), model.received_at < func.now() - grace)
                .order_by(model.received_at, model.id)
                .limit(RECONCILE_BATCH)
            )
            if after is not None:
                query = query.where(tuple_(model.received_at, model.id) > tuple_(*after))
            rows = (await session.execute(query)).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = (rows[-1].received_at, rows[-1].id)
