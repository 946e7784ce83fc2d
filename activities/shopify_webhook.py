"""The ShopifyWebhookWorkflow's one activity: apply a stored delivery, once."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.db import unit_of_work
from models.shopify import ShopifyWebhook
from models.shopify_dispatch import apply_delivery
from models.shopify_sync import OrderPayloadError
from workflows.shopify_contracts import (
    PROCESS_SHOPIFY_WEBHOOK,
    ShopifyWebhookInput,
    ShopifyWebhookOutcome,
)

log = logging.getLogger(__name__)


class ShopifyWebhookActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    def all(self) -> list[object]:
        return [self.process_shopify_webhook]

    @activity.defn(name=PROCESS_SHOPIFY_WEBHOOK)
    async def process_shopify_webhook(self, data: ShopifyWebhookInput) -> ShopifyWebhookOutcome:
        """Apply the delivery and mark it processed in one transaction, so a retry after
        a crash either finds it done or does it all again; never half."""
        try:
            return await self._process(data)
        except OrderPayloadError as exc:
            # The body cannot be stored and never will be: record why and stop retrying.
            async with unit_of_work(self._sessions) as session:
                delivery = await self._locked(session, data)
                if delivery is None or delivery.processed_at is not None:
                    return ShopifyWebhookOutcome(delivery_id=data.delivery_id, note="done")
                delivery.processed_at = func.now()
                delivery.error = str(exc)
                delivery.payload = {}
                log.warning(
                    "shopify webhook not applied",
                    extra={
                        "event_id": delivery.event_id,
                        "topic": delivery.topic,
                        "error": str(exc),
                    },
                )
                return ShopifyWebhookOutcome(
                    delivery_id=data.delivery_id,
                    topic=delivery.topic,
                    note="refused",
                    error=str(exc),
                )

    async def _locked(
        self, session: AsyncSession, data: ShopifyWebhookInput
    ) -> ShopifyWebhook | None:
        return (
            await session.execute(
                select(ShopifyWebhook)
                .where(ShopifyWebhook.id == data.delivery_id)
                .with_for_update()
            )
        ).scalar_one_or_none()

    async def _process(self, data: ShopifyWebhookInput) -> ShopifyWebhookOutcome:
        async with unit_of_work(self._sessions) as session:
            delivery = await self._locked(session, data)
            if delivery is None:
                # A shop/redact that arrived meanwhile erased the shop's deliveries.
                return ShopifyWebhookOutcome(delivery_id=data.delivery_id, note="delivery gone")
            if delivery.processed_at is not None:
                # Applied by an attempt that died before answering: its order events were
                # kept, so the playbooks still hear of them.
                return ShopifyWebhookOutcome(
                    delivery_id=data.delivery_id,
                    topic=delivery.topic,
                    note="already processed",
                    **_kept_events(delivery),
                )
            applied = await apply_delivery(session, delivery)
            delivery.processed_at = func.now()
            # The order, export or erasure now holds what was needed; customer data in the
            # stored body would only be one more copy for a redaction to miss. Only the
            # order's id and its events stay.
            kept = {}
            if applied.order_id is not None and applied.user_id is not None:
                kept = {
                    "user_id": str(applied.user_id),
                    "order_id": str(applied.order_id),
                    "order_events": list(applied.order_events),
                }
            delivery.payload = kept
            log.info(
                "shopify webhook processed",
                extra={
                    "event_id": delivery.event_id,
                    "topic": delivery.topic,
                    "note": applied.note,
                },
            )
            return ShopifyWebhookOutcome(
                delivery_id=data.delivery_id,
                topic=delivery.topic,
                note=applied.note,
                **_kept_events(delivery),
            )


def _kept_events(delivery: ShopifyWebhook) -> dict[str, Any]:
    kept = delivery.payload or {}
    if "order_id" not in kept:
        return {}
    return {
        "user_id": uuid.UUID(kept["user_id"]),
        "order_id": uuid.UUID(kept["order_id"]),
        "order_events": list(kept.get("order_events", [])),
    }
