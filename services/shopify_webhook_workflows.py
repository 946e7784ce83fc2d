"""Starting a stored Shopify delivery's workflow, and the reconciler that catches up.

A delivery is committed before its workflow starts; until it is processed it stays in
the reconciler's list, and the deterministic workflow id makes a second start of a
running one harmless.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.shopify import ShopifyWebhook
from workflows.contracts import TASK_QUEUE
from workflows.shopify_contracts import (
    SHOPIFY_WEBHOOK_WORKFLOW,
    ShopifyWebhookInput,
    shopify_webhook_workflow_id,
)

logger = logging.getLogger(__name__)

START_RPC_TIMEOUT = timedelta(seconds=10)
RECONCILE_BATCH = 500
# Deliveries younger than this are probably being started by the API right now.
RECONCILE_GRACE = timedelta(seconds=30)


async def start_webhook_workflow(
    client: Client, delivery_id: uuid.UUID, event_id: str, *, task_queue: str = TASK_QUEUE
) -> bool:
    """True if this call started it; False if a workflow for the event already exists."""
    try:
        await client.start_workflow(
            SHOPIFY_WEBHOOK_WORKFLOW,
            ShopifyWebhookInput(delivery_id=delivery_id),
            id=shopify_webhook_workflow_id(event_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A workflow that gave up (retries exhausted) may run again from the reconciler;
            # one that completed processed the delivery, which then is not in its list.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            rpc_timeout=START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def reconcile_unprocessed_webhooks(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    grace: timedelta = RECONCILE_GRACE,
) -> int:
    """Start (or find) the workflow of every stored delivery not yet processed; returns
    how many it asked for. A Temporal error propagates: the caller runs this again later."""
    count = 0
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with sessions() as session:
            query = (
                select(ShopifyWebhook.received_at, ShopifyWebhook.id, ShopifyWebhook.event_id)
                .where(
                    ShopifyWebhook.processed_at.is_(None),
                    ShopifyWebhook.received_at < func.now() - grace,
                )
                .order_by(ShopifyWebhook.received_at, ShopifyWebhook.id)
                .limit(RECONCILE_BATCH)
            )
            if after is not None:
                # Keyset paging: running workflows leave rows unprocessed for a while.
                query = query.where(
                    tuple_(ShopifyWebhook.received_at, ShopifyWebhook.id) > tuple_(*after)
                )
            rows = (await session.execute(query)).all()
        if not rows:
            return count
        for _, delivery_id, event_id in rows:
            await start_webhook_workflow(client, delivery_id, event_id, task_queue=task_queue)
            count += 1
        after = (rows[-1].received_at, rows[-1].id)
