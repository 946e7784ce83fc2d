"""The BillingEventWorkflow's one activity: apply a stored gateway delivery, once."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.billing import PlanCatalog
from integrations.billing_gateways import BadWebhook, parse_event
from models.billing_event import BillingEvent
from models.db import unit_of_work
from services.billing_apply import apply_snapshot
from workflows.billing_contracts import (
    PROCESS_BILLING_EVENT,
    BillingEventInput,
    BillingEventOutcome,
)

log = logging.getLogger(__name__)


class BillingEventActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], catalog: PlanCatalog) -> None:
        self._sessions = sessions
        self._catalog = catalog

    def all(self) -> list[object]:
        return [self.process_billing_event]

    @activity.defn(name=PROCESS_BILLING_EVENT)
    async def process_billing_event(self, data: BillingEventInput) -> BillingEventOutcome:
        """Apply the delivery and mark it processed in one transaction: a retry after a
        crash finds it done, or does it all again; never half."""
        async with unit_of_work(self._sessions) as session:
            row = (
                await session.execute(
                    select(BillingEvent)
                    .where(BillingEvent.id == data.billing_event_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                return BillingEventOutcome(billing_event_id=data.billing_event_id, note="gone")
            if row.processed_at is not None:
                return BillingEventOutcome(billing_event_id=row.id, note="already processed")
            context = {"gateway": row.gateway, "event_id": row.event_id, "event": row.event_type}
            row.processed_at = func.now()
            try:
                event = parse_event(row.gateway, row.payload, row.event_id)
            except (BadWebhook, KeyError, ValueError, TypeError) as exc:
                # Signed by the gateway but unreadable: retrying cannot help.
                log.warning("billing event not readable", extra={**context, "error": str(exc)})
                return BillingEventOutcome(billing_event_id=row.id, note=f"unreadable: {exc}")
            if event.snapshot is None:
                log.info("billing event names no subscription", extra=context)
                return BillingEventOutcome(billing_event_id=row.id, note="no subscription")
            subscription = await apply_snapshot(
                session, event.snapshot, source=f"webhook:{row.gateway}", catalog=self._catalog
            )
            return BillingEventOutcome(
                billing_event_id=row.id,
                note="applied" if subscription is not None else "ignored",
                subscription_id=subscription.id if subscription is not None else None,
            )
