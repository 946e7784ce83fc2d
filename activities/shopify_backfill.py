"""The ShopifyBackfillWorkflow's one activity: read the store's recent orders, store them."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from integrations.ports import ShopifyPort
from kernel.enums import ConnectionType
from kernel.values import ShopTarget
from models.connection import Connection
from models.db import unit_of_work
from models.event import log_event
from models.shopify_sync import upsert_order_snapshots
from workflows.shopify_backfill_contracts import (
    BACKFILL_SHOPIFY_ORDERS,
    ShopifyBackfillInput,
    ShopifyBackfillOutcome,
)

log = logging.getLogger(__name__)


class ShopifyBackfillActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], shopify: ShopifyPort) -> None:
        self._sessions = sessions
        self._shopify = shopify

    def all(self) -> list[object]:
        return [self.backfill_shopify_orders]

    async def _target(self, data: ShopifyBackfillInput) -> ShopTarget | None:
        async with unit_of_work(self._sessions) as session:
            connection = await session.get(Connection, data.connection_id)
            if (
                connection is None
                or connection.type != ConnectionType.SHOPIFY
                or not connection.shop_domain
            ):
                return None
            return ShopTarget(
                shop_domain=connection.shop_domain,
                access_token=connection.access_token,
                api_base=(connection.metadata_ or {}).get("apiBase"),
            )

    @activity.defn(name=BACKFILL_SHOPIFY_ORDERS)
    async def backfill_shopify_orders(self, data: ShopifyBackfillInput) -> ShopifyBackfillOutcome:
        """Upserts are keyed by the order's Shopify id: a retry rewrites the same rows."""
        target = await self._target(data)
        if target is None:
            return ShopifyBackfillOutcome(orders=0, note="store no longer connected")
        # Read outside any transaction: a few pages of orders can take seconds.
        snapshots = await self._shopify.list_orders(target)
        async with unit_of_work(self._sessions) as session:
            connection = await session.get(Connection, data.connection_id, with_for_update=True)
            if connection is None or connection.shop_domain != target.shop_domain:
                # Uninstalled or erased while we read: its orders must not come back.
                return ShopifyBackfillOutcome(orders=0, note="store no longer connected")
            count = await upsert_order_snapshots(session, connection, snapshots)
            await log_event(
                session,
                "shopify.orders_backfilled",
                user_id=connection.user_id,
                entity="connection",
                entity_id=connection.id,
                payload={"orders": count},
            )
        log.info(
            "shopify orders backfilled",
            extra={"shop": target.shop_domain, "orders": count},
        )
        return ShopifyBackfillOutcome(orders=count, note="synced")
