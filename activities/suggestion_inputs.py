"""What the suggester is given about a message, and what the guardrails may trust.

Everything here comes from our records and the store, never from the model: the
earlier turns of the thread, the store's own domains (a customer quoting the store's
address is not an injection), and the order the pipeline matched, which counts as
the sender's only if it was placed with the sender's address.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.guardrails import GuardrailContext, context_for, placed_by
from kernel.enums import MessageDirection
from kernel.values import SuggestionRequest, ThreadTurn
from models.connection import Connection
from models.conversation import Message

HISTORY_TURNS = 6  # the newest earlier messages of the thread; the prompt trims them further


async def thread_history(session: AsyncSession, message: Message) -> list[ThreadTurn]:
    """Earlier messages of the thread, newest first."""
    rows = await session.execute(
        select(Message.direction, Message.body_text)
        .where(
            Message.user_id == message.user_id,
            Message.thread_id == message.thread_id,
            Message.id != message.id,
            Message.sent_at <= message.sent_at,
        )
        .order_by(Message.sent_at.desc())
        .limit(HISTORY_TURNS)
    )
    return [
        ThreadTurn(role="customer" if direction == MessageDirection.INBOUND else "store", text=text)
        for direction, text in rows
        if text
    ]


async def store_domains(session: AsyncSession, user_id: uuid.UUID) -> frozenset[str]:
    """The merchant's shop domains and the domains of its own mail addresses."""
    rows = await session.execute(
        select(Connection.shop_domain, Connection.metadata_).where(Connection.user_id == user_id)
    )
    domains: set[str] = set()
    for shop_domain, metadata in rows:
        if shop_domain:
            domains.add(shop_domain.lower())
        for key in ("alias", "supportEmail", "emailAddress", "shopDomain"):
            value = (metadata or {}).get(key)
            if isinstance(value, str) and value:
                domains.add(value.rsplit("@", 1)[-1].lower())
    return frozenset(domains)


def guardrail_context(
    request: SuggestionRequest,
    *,
    order_shop: str | None,
    domains: frozenset[str],
    hidden_text: str = "",
) -> GuardrailContext:
    """The matched order (`request.order`) counts as the sender's only if placed with the
    sender's address."""
    order = request.order
    return context_for(
        request,
        sender_orders=[order] if order and placed_by(order, request.customer_email) else [],
        store_domains=domains,
        order_domains={order.id: order_shop} if order is not None and order_shop else None,
        hidden_text=hidden_text,
    )
