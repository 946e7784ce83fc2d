"""Storing a verified gateway delivery once, and starting the workflow that applies it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from integrations.billing_gateways import WebhookEvent
from models.billing_event import BillingEvent
from workflows.billing_contracts import (
    BILLING_EVENT_WORKFLOW,
    BillingEventInput,
    billing_event_workflow_id,
)
from workflows.contracts import TASK_QUEUE

START_RPC_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True)
class Arrival:
    billing_event_id: uuid.UUID
    new: bool  # False: a redelivery of a stored event
    processed: bool  # already applied: nothing left to start


async def record_arrival(
    session: AsyncSession, gateway: str, event: WebhookEvent, payload: dict[str, Any]
) -> Arrival:
    """Insert the delivery unless (gateway, event id) is stored already."""
    inserted = (
        await session.execute(
            insert(BillingEvent)
            .values(
                gateway=gateway,
                event_id=event.event_id[:255],
                event_type=event.event_type[:100],
                payload=payload,
            )
            .on_conflict_do_nothing(index_elements=[BillingEvent.gateway, BillingEvent.event_id])
            .returning(BillingEvent.id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return Arrival(inserted, new=True, processed=False)
    stored = (
        await session.execute(
            select(BillingEvent.id, BillingEvent.processed_at).where(
                BillingEvent.gateway == gateway, BillingEvent.event_id == event.event_id[:255]
            )
        )
    ).one()
    return Arrival(stored.id, new=False, processed=stored.processed_at is not None)


async def start_billing_workflow(
    client: Client,
    gateway: str,
    event_id: str,
    billing_event_id: uuid.UUID,
    *,
    task_queue: str = TASK_QUEUE,
) -> bool:
    """True if this call started it; False if the event's workflow already exists."""
    try:
        await client.start_workflow(
            BILLING_EVENT_WORKFLOW,
            BillingEventInput(billing_event_id=billing_event_id),
            id=billing_event_workflow_id(gateway, event_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # One that gave up may run again on a redelivery; one that completed applied it.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            rpc_timeout=START_RPC_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True
