"""More orders for the demo store, so a benchmark can refund a fresh order per message."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ConnectionType
from kernel.values import ShopTarget
from models.connection import Connection
from models.db import unit_of_work
from models.shopify_sync import upsert_order_snapshots
from sandbox.server import Sandbox
from sandbox.shopify import seed
from sandbox.shopify.server import DEMO_SHOP

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
        orders = await admin.list_orders(target)
    finally:
        await admin.aclose()
    async with unit_of_work(sessions) as session:
        connection = await session.get(Connection, connection.id)
        assert connection is not None
        await upsert_order_snapshots(session, connection, orders)


def refundable_orders(sandbox: Sandbox) -> list[tuple[str, str, str, str]]:
    """(name, customer email, amount, financial status) of every demo order with money left
    to refund."""
    return [
        (order.name, order.email, str(order.refundable), order.financial_status)
        for order in sandbox.shopify.shop(DEMO_SHOP).orders.values()
        if order.cancelled_at is None and order.refundable > 0 and order.email
    ]
