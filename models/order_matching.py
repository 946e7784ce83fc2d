"""Finding the order a customer writes about: by a name they quote, else by their email."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ConnectionType
from models.connection import Connection
from models.order import Order


async def match_order(
    session: AsyncSession, user_id: uuid.UUID, customer_email: str, quoted_names: list[str]
) -> Order | None:
    """The merchant's order the message is about, given the order names it quotes
    (`domain.order_names.order_names_in`).

    A quoted order number wins only if that order belongs to this merchant (and,
    when the order has an email, to this customer: nobody gets to act on another
    customer's order by quoting its number). Otherwise the customer's latest order.
    """
    owned = (
        select(Order)
        .join(Connection, Order.connection_id == Connection.id)
        .where(Connection.user_id == user_id, Connection.type == ConnectionType.SHOPIFY)
    )
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
