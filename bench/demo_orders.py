"""The demo merchant, made ready for hundreds of messages: more orders, so that a benchmark
refunds a fresh one per message, and a plan whose limits a run stays under."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ConnectionType, PlanType, SubscriptionStatus
from kernel.values import ShopTarget
from models.billing import Subscription
from models.connection import Connection
from models.db import unit_of_work
from models.shopify_sync import upsert_order_snapshots
from sandbox.server import Sandbox
from sandbox.shopify import seed
from sandbox.shopify.server import DEMO_SHOP
from sandbox.shopify.state import Bucket

# seed_shop spaces orders 17 hours apart; all of them must lie in the past.
_SPACING = timedelta(hours=17)


async def more_demo_orders(
    sessions: async_sessionmaker[AsyncSession], sandbox: Sandbox, count: int
) -> None:
    """Seed `count` more orders in the demo store (no webhooks) and store their snapshots,
    as the demo's bootstrap does for the first ones."""
    if count <= 0:
        return
    shop = sandbox.shopify.shop(DEMO_SHOP)
    start = shop.state.clock() - _SPACING * (count + 2)
    seed.seed_shop(
        shop,
        count=count,
        seed=11,
        start=start,
        first_number=max(o.number for o in shop.orders.values()) + 1,
        first_customer_id=max(o.customer.id for o in shop.orders.values() if o.customer) + 1,
    )
    async with unit_of_work(sessions) as session:
        connection = (
            await session.execute(
                select(Connection).where(
                    Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == DEMO_SHOP
                )
            )
        ).scalar_one()
        target = ShopTarget(
            shop_domain=DEMO_SHOP,
            access_token=connection.access_token,
            api_base=connection.metadata_["apiBase"],
        )
    admin = ShopifyAdmin()
    try:
        # All of them, not the 250 newest the demo's bootstrap stores.
        orders = await admin.find_orders(target, "", limit=len(shop.orders))
    finally:
        await admin.aclose()
    async with unit_of_work(sessions) as session:
        connection = await session.get(Connection, connection.id)
        assert connection is not None
        await upsert_order_snapshots(session, connection, orders)


async def on_a_large_plan(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> None:
    """PRO, active for this month: a trial's 100 suggestions would end a run early, and a
    limited plan keeps the metering the merchant's messages go through."""
    async with unit_of_work(sessions) as session:
        subscription = (
            await session.execute(select(Subscription).where(Subscription.user_id == user_id))
        ).scalar_one()
        now = datetime.now(UTC)
        subscription.plan_type = PlanType.PRO
        subscription.status = SubscriptionStatus.active
        subscription.current_period_start = now - timedelta(days=1)
        subscription.current_period_end = now + timedelta(days=29)


# Shopify Plus restores 1,000 points a second (Standard 100): a Standard store's own limit
# would cap the run long before the pipeline does. Its bucket holds 20 s of restore, as a
# Standard one's 2,000 do.
PLUS_RESTORE_RATE = 1000.0


def on_shopify_plus(sandbox: Sandbox) -> float:
    """The demo store's bucket as a Plus store's; returns its restore rate."""
    shop = sandbox.shopify.shop(DEMO_SHOP)
    maximum = PLUS_RESTORE_RATE * 20
    shop.bucket = Bucket(maximum, PLUS_RESTORE_RATE, maximum, shop.state.clock())
    return PLUS_RESTORE_RATE


def refundable_orders(sandbox: Sandbox) -> list[tuple[str, str, str, str]]:
    """(name, customer email, amount, financial status) of every demo order with money left
    to refund."""
    return [
        (order.name, order.email, str(order.refundable), order.financial_status)
        for order in sandbox.shopify.shop(DEMO_SHOP).orders.values()
        if order.cancelled_at is None and order.refundable > 0 and order.email
    ]
