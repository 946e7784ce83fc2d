"""Finding the order a customer writes about: by the number they quote, else by their email."""

from __future__ import annotations

import re
import unicodedata
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.connection import Connection
from models.enums import ConnectionType
from models.order import Order

# "#1001", "order 1001", "order no. 1001"; four digits or more, to avoid matching quantities.
# The number ends where no Latin letter or digit follows: Japanese text runs on without a
# space ("注文#1004を"), and `\b` sees no boundary between a digit and a kana. Japanese
# input methods also type the number sign and the digits full-width (U+FF03, U+FF10...).
_ORDER_NAME = re.compile(
    r"(?:[#\uff03]|\border\s*(?:no\.?|number|nr\.?)?\s*[#\uff03]?)\s*(\d{4,10})(?![0-9A-Za-z_])",
    re.I,
)


def order_names_in(text: str) -> list[str]:
    """Order names quoted in the text, as Shopify writes them ("#1001"), first seen first."""
    seen: list[str] = []
    for number in _ORDER_NAME.findall(text):
        name = f"#{unicodedata.normalize('NFKC', number)}"
        if name not in seen:
            seen.append(name)
    return seen


async def match_order(
    session: AsyncSession, user_id: uuid.UUID, customer_email: str, text: str
) -> Order | None:
    """The merchant's order the message is about.

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
    for name in order_names_in(text):
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
