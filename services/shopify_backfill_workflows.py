"""Starting the ShopifyBackfillWorkflow after an install: the worker reads the orders."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from kernel.errors import Transient
from workflows.contracts import TASK_QUEUE
from workflows.shopify_backfill_contracts import (
    SHOPIFY_BACKFILL_WORKFLOW,
    ShopifyBackfillInput,
    shopify_backfill_workflow_id,
)

_START_RPC_TIMEOUT = timedelta(seconds=10)


async def start_order_backfill(
    client: Client | None, connection_id: uuid.UUID, *, task_queue: str = TASK_QUEUE
) -> str:
    """Starts the store's backfill (one already running is kept); returns its workflow id.
    Transient when Temporal cannot be reached."""
    if client is None:
        raise Transient("Temporal is not configured for this API process: no backfill started")
    workflow_id = shopify_backfill_workflow_id(connection_id)
    try:
        await client.start_workflow(
            SHOPIFY_BACKFILL_WORKFLOW,
            ShopifyBackfillInput(connection_id=connection_id),
            id=workflow_id,
            task_queue=task_queue,
            rpc_timeout=_START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        pass  # this store's backfill is running already; it reads the same orders
    except RPCError as exc:
        raise Transient(f"the order backfill could not be started: {exc.message}") from exc
    return workflow_id
