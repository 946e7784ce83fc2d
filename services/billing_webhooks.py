"""Storing a verified gateway delivery once, starting the workflow that applies it, and
the reconciler that starts the ones left unstarted (Temporal was down longer than the
gateway kept retrying)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from integrations.billing_gateways import WebhookEvent
from models.billing_event import BillingEvent
from services.delivery_workflows import RECONCILE_GRACE, start_once, unprocessed
from workflows.billing_contracts import (
    BILLING_EVENT_WORKFLOW,
    BillingEventInput,
    billing_event_workflow_id,
)
from workflows.contracts import TASK_QUEUE


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
    return await start_once(
        client,
        BILLING_EVENT_WORKFLOW,
        BillingEventInput(billing_event_id=billing_event_id),
        workflow_id=billing_event_workflow_id(gateway, event_id),
        task_queue=task_queue,
    )


async def reconcile_unprocessed_billing_events(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    grace: timedelta = RECONCILE_GRACE,
) -> int:
    """Start (or find) the workflow of every stored delivery not yet processed; returns how
    many it asked for. A Temporal error propagates: the caller runs this again later."""
    count = 0
    columns = (BillingEvent.gateway, BillingEvent.event_id)
    async for row in unprocessed(sessions, BillingEvent, *columns, grace=grace):
        await start_billing_workflow(
            client, row.gateway, row.event_id, row.id, task_queue=task_queue
        )
        count += 1
    return count
