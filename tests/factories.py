"""Small builders for rows the tests need, written through the real models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ConnectionType, MessageDirection
from models import Connection, Message, Order, Subscription, Thread, UsageRecord, User
from services.usage import increment_email_received


async def make_user(session: AsyncSession, email: str | None = None) -> User:
    user = User(email=email or f"merchant-{uuid.uuid4().hex[:8]}@example.com", name="Merchant")
    session.add(user)
    await session.flush()
    return user


async def make_shopify_connection(
    session: AsyncSession, user: User, shop: str | None = None, token: str = "shpat_secret"
) -> Connection:
    connection = Connection(
        user_id=user.id,
        type=ConnectionType.SHOPIFY,
        access_token=token,
        shop_domain=shop or f"shop-{uuid.uuid4().hex[:8]}.myshopify.com",
    )
    session.add(connection)
    await session.flush()
    return connection


async def make_order(session: AsyncSession, connection: Connection, name: str = "#1001") -> Order:
    order = Order(
        connection_id=connection.id,
        shop_domain=connection.shop_domain,
        shopify_id=f"gid://shopify/Order/{uuid.uuid4().int % 10**12}",
        name=name,
        status="open",
        email="customer@example.com",
        total_amount=Decimal("59.90"),
        currency="EUR",
    )
    session.add(order)
    await session.flush()
    return order


async def make_thread(session: AsyncSession, user: User) -> Thread:
    thread = Thread(
        user_id=user.id,
        customer_email="customer@example.com",
        subject="Where is my order?",
        last_message_at=datetime.now(UTC),
    )
    session.add(thread)
    await session.flush()
    return thread


async def make_message(
    session: AsyncSession,
    thread: Thread,
    message_id: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Message:
    message = Message(
        user_id=user_id or thread.user_id,
        thread_id=thread.id,
        direction=MessageDirection.INBOUND,
        message_id=message_id or f"<{uuid.uuid4().hex}@mail.example.com>",
        from_address="customer@example.com",
        subject=thread.subject,
        body_text="Hello, where is my order #1001?",
        headers={"From": "customer@example.com"},
        sent_at=datetime.now(UTC),
    )
    session.add(message)
    await session.flush()
    return message


async def set_usage(session: AsyncSession, user_id: uuid.UUID, **counters: int) -> None:
    """Set the current period's counters (e.g. `emails_sent=99`), creating its row."""
    assert await increment_email_received(session, user_id)  # creates the period's row
    subscription_id = (
        select(Subscription.id).where(Subscription.user_id == user_id).scalar_subquery()
    )
    await session.execute(
        update(UsageRecord).where(UsageRecord.subscription_id == subscription_id).values(**counters)
    )
