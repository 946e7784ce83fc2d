"""The BillingEventWorkflow's one activity: apply a stored gateway delivery, once."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.billing import PlanCatalog
from integrations.billing_gateways import BadWebhook, BillingGateway, parse_event
from kernel.errors import DeskpilotError, IntegrationError
from models.billing_event import BillingEvent
from models.db import unit_of_work
from models.event import log_event
from services.billing_apply import apply_snapshot
from workflows.billing_contracts import (
    CANCEL_REPLACED_SUBSCRIPTION,
    PROCESS_BILLING_EVENT,
    BillingEventInput,
    BillingEventOutcome,
    ReplacedSubscription,
)

log = logging.getLogger(__name__)


class BillingEventActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog: PlanCatalog,
        gateways: Mapping[str, BillingGateway],
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._gateways = gateways

    def all(self) -> list[object]:
        return [self.process_billing_event, self.cancel_replaced_subscription]

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
            applied = await apply_snapshot(
                session, event.snapshot, source=f"webhook:{row.gateway}", catalog=self._catalog
            )
            if applied is None:
                return BillingEventOutcome(billing_event_id=row.id, note="ignored")
            subscription = applied.subscription
            return BillingEventOutcome(
                billing_event_id=row.id,
                note="applied",
                subscription_id=subscription.id,
                replaced=None
                if applied.replaced is None
                else ReplacedSubscription(
                    user_id=subscription.user_id,
                    gateway=applied.replaced[0],
                    gateway_subscription_id=applied.replaced[1],
                ),
            )

    @activity.defn(name=CANCEL_REPLACED_SUBSCRIPTION)
    async def cancel_replaced_subscription(self, data: ReplacedSubscription) -> str:
        """Cancel at once, at its gateway, a subscription a second paid one replaced, so the
        merchant is not charged twice. A gateway that refuses (already ended) is done; one
        that fails is retried by the workflow."""
        context = {"gateway": data.gateway, "gateway_subscription_id": data.gateway_subscription_id}
        gateway = self._gateways.get(data.gateway)
        if gateway is None:
            outcome = "not cancelled: the gateway is not configured here"
        else:
            try:
                await gateway.cancel(data.gateway_subscription_id, at_period_end=False)
                outcome = "cancelled"
            except IntegrationError as exc:
                if exc.retryable:
                    raise
                outcome = f"not cancelled: {exc.message}"
            except DeskpilotError as exc:  # Refused, Invalid: the gateway will not
                outcome = f"not cancelled: {exc.message}"
        log.warning("replaced subscription: %s", outcome, extra=context)
        async with unit_of_work(self._sessions) as session:
            await log_event(
                session,
                "subscription.replaced_cancelled"
                if outcome == "cancelled"
                else "subscription.replaced_not_cancelled",
                user_id=data.user_id,
                entity="subscription",
                payload={**context, "outcome": outcome},
            )
        return outcome
