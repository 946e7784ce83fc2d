"""Finding the order a customer writes about: by a name they quote, else by their email."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ConnectionType
from models.connection import Connection
from models.order import Order


async def message_shop(session: AsyncSession, connection_id: uuid.UUID | None) -> str | None:
    """The store a message was written to: that of the connection it came in on (an alias
    is made for one store). None for a mailbox of the whole account, or no connection."""
    if connection_id is None:
        return None
    connection = await session.get(Connection, connection_id)
    if connection is None:
        return None
    shop = connection.shop_domain or (connection.metadata_ or {}).get("shopDomain")
    return shop if isinstance(shop, str) and shop else None


async def match_order(
    session: AsyncSession,
    user_id: uuid.UUID,
    customer_email: str,
    quoted_names: list[str],
    *,
    shop_domain: str | None = None,
) -> Order | None:
    """The merchant's order the message is about, given the order names it quotes
    (`domain.order_names.order_names_in`). With `shop_domain`, only that store's orders:
    two stores of one account both have a #1001, and one customer may buy at both.

    A quoted order number wins only if that order belongs to this merchant (and,
    when the order has an email, to this customer: nobody gets to act on another
    customer's order by quoting its number). Otherwise the customer's latest order.
    """
    owned = (
        select(Order)
        .join(Connection, Order.connection_id == Connection.id)
        .where(Connection.user_id == user_id, Connection.type == ConnectionType.SHOPIFY)
    )
    if shop_domain is not None:
        owned = owned.where(Order.shop_domain == shop_domain)
    email = customer_email.strip().lower()
    for name in quoted_names:
        order = (await session.execute(owned.where(Order.name == name))).scalars().first()
        if order is not None and (order.email is None or order.email.lower() == email):
            return order
    return (
        (
            await session.execute(
                owned.where(func.lower(Order.email) == email)
                .order_by(Order.created_at.desc())
                .limit(1)
            )
        )
        .scalars()
        .first()
    )
