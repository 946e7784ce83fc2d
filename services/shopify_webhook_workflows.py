"""Starting a stored Shopify delivery's workflow, and the reconciler that catches up.

A delivery is committed before its workflow starts; until it is processed it stays in
the reconciler's list, and the deterministic workflow id makes a second start of a
running one harmless.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from models.shopify import ShopifyWebhook
from services.delivery_workflows import RECONCILE_GRACE, start_once, unprocessed
from workflows.contracts import TASK_QUEUE
from workflows.shopify_contracts import (
    SHOPIFY_WEBHOOK_WORKFLOW,
    ShopifyWebhookInput,
    shopify_webhook_workflow_id,
)


async def start_webhook_workflow(
    client: Client, delivery_id: uuid.UUID, event_id: str, *, task_queue: str = TASK_QUEUE
) -> bool:
    """True if this call started it; False if a workflow for the event already exists."""
    return await start_once(
        client,
        SHOPIFY_WEBHOOK_WORKFLOW,
        ShopifyWebhookInput(delivery_id=delivery_id),
        workflow_id=shopify_webhook_workflow_id(event_id),
        task_queue=task_queue,
    )


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
    async for row in unprocessed(sessions, ShopifyWebhook, ShopifyWebhook.event_id, grace=grace):
        await start_webhook_workflow(client, row.id, row.event_id, task_queue=task_queue)
        count += 1
    return count
