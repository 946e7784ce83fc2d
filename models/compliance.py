"""Shopify's mandatory privacy topics: export or erase what we hold on a customer or a shop.

Scope is always the merchant who owns the shop's connection: a customer's threads,
messages, suggestions, actions and events are found by the customer's email (and the
orders Shopify names) within that merchant's data only, never across merchants.

Erasure deletes rows rather than anonymising them. A message's subject, body, headers
and raw MIME, a suggestion's drafted reply and an action's payload (addresses, notes)
are free text full of the customer's details; no rewrite can promise to have removed
them all, while deleting the rows can. Usage counters hold no personal data and stay,
so a redaction does not hand a merchant back their plan's quota.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, delete, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.action import Action
from models.connection import Connection
from models.conversation import Message, Thread
from models.event import Event
from models.oauth_state import OAuthState
from models.order import Order
from models.shopify import ComplianceExport, ShopifyWebhook
from models.shopify_sync import order_gid
from models.suggestion import AISuggestion

COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})


@dataclass
class CustomerRows:
    """Ids of everything one merchant holds on one customer."""

    order_ids: list[uuid.UUID] = field(default_factory=list)
    thread_ids: list[uuid.UUID] = field(default_factory=list)
    message_ids: list[uuid.UUID] = field(default_factory=list)
    action_ids: list[uuid.UUID] = field(default_factory=list)

    def entity_ids(self) -> dict[str, list[str]]:
        """Event `entity` → the ids of that kind, as events store them (text)."""
        return {
            "order": [str(i) for i in self.order_ids],
            "thread": [str(i) for i in self.thread_ids],
            "message": [str(i) for i in self.message_ids],
            "action": [str(i) for i in self.action_ids],
        }


def normalise_email(email: str | None) -> str | None:
    cleaned = (email or "").strip().lower()
    return cleaned or None


def order_gids(numeric_ids: Collection[int | str] | None) -> list[str]:
    """Shopify's compliance payloads name orders by REST id; Order rows keep the gid."""
    return [order_gid(n) for n in numeric_ids or [] if str(n).strip()]


async def _ids(session: AsyncSession, query: Select[tuple[uuid.UUID]]) -> list[uuid.UUID]:
    return list((await session.execute(query)).scalars().all())


async def _rows_for_orders_and_threads(
    session: AsyncSession,
    user_id: uuid.UUID,
    order_ids: list[uuid.UUID],
    thread_filter: Any,
) -> CustomerRows:
    rows = CustomerRows(order_ids=order_ids)
    # Threads by the customer's address, plus any thread where a message concerns their orders.
    by_order = select(Message.thread_id).where(
        Message.user_id == user_id, Message.order_id.in_(order_ids)
    )
    rows.thread_ids = await _ids(
        session,
        select(Thread.id).where(
            Thread.user_id == user_id, or_(thread_filter, Thread.id.in_(by_order))
        ),
    )
    rows.message_ids = await _ids(
        session,
        select(Message.id).where(
            Message.user_id == user_id, Message.thread_id.in_(rows.thread_ids)
        ),
    )
    rows.action_ids = await _ids(
        session,
        select(Action.id).where(
            Action.user_id == user_id,
            or_(Action.message_id.in_(rows.message_ids), Action.order_id.in_(order_ids)),
        ),
    )
    return rows


async def customer_rows(
    session: AsyncSession, connection: Connection, email: str | None, gids: list[str]
) -> CustomerRows:
    email = normalise_email(email)
    order_match = [Order.shopify_id.in_(gids)] if gids else []
    if email:
        order_match.append(func.lower(Order.email) == email)
    order_ids = (
        await _ids(
            session,
            select(Order.id).where(Order.connection_id == connection.id, or_(*order_match)),
        )
        if order_match
        else []
    )
    thread_filter = func.lower(Thread.customer_email) == email if email else false()
    return await _rows_for_orders_and_threads(session, connection.user_id, order_ids, thread_filter)


def _events_about(user_id: uuid.UUID, rows: CustomerRows) -> Any:
    return and_(
        Event.user_id == user_id,
        or_(
            *(
                and_(Event.entity == entity, Event.entity_id.in_(ids))
                for entity, ids in rows.entity_ids().items()
            )
        ),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # raw MIME: the headers and text below are its content
    if hasattr(value, "value"):  # enums
        return value.value
    return value


def _record(obj: Any, columns: list[str]) -> dict[str, Any]:
    return {name: _jsonable(getattr(obj, name)) for name in columns}


async def export_customer_data(
    session: AsyncSession, connection: Connection, email: str | None, gids: list[str]
) -> dict[str, Any]:
    """Everything we hold on the customer for this shop's merchant, as plain JSON."""
    rows = await customer_rows(session, connection, email, gids)
    user_id = connection.user_id
    orders = (await session.execute(select(Order).where(Order.id.in_(rows.order_ids)))).scalars()
    threads = (
        await session.execute(select(Thread).where(Thread.id.in_(rows.thread_ids)))
    ).scalars()
    messages = (
        await session.execute(
            select(Message).where(Message.id.in_(rows.message_ids)).order_by(Message.sent_at)
        )
    ).scalars()
    suggestions = (
        await session.execute(
            select(AISuggestion).where(AISuggestion.message_id.in_(rows.message_ids))
        )
    ).scalars()
    actions = (
        await session.execute(select(Action).where(Action.id.in_(rows.action_ids)))
    ).scalars()
    events = (
        await session.execute(
            select(Event).where(_events_about(user_id, rows)).order_by(Event.created_at)
        )
    ).scalars()
    order_columns = ["id", "shopify_id", "name", "email", "status", "total_amount", "currency"]
    order_columns += ["financial_status", "fulfillment_status", "details", "created_at"]
    message_columns = ["id", "thread_id", "order_id", "direction", "message_id", "from_address"]
    message_columns += ["to_address", "subject", "body_text", "quoted_text", "hidden_text"]
    message_columns += ["attachments", "headers", "sent_at"]
    return {
        "customer": {"email": normalise_email(email), "orders_requested": gids},
        "shop_domain": connection.shop_domain,
        "orders": [_record(o, order_columns) for o in orders],
        "threads": [
            _record(t, ["id", "customer_email", "subject", "last_message_at", "created_at"])
            for t in threads
        ],
        "messages": [_record(m, message_columns) for m in messages],
        "suggestions": [
            _record(s, ["id", "message_id", "reply", "proposed_action", "confidence", "created_at"])
            for s in suggestions
        ],
        "actions": [
            _record(a, ["id", "message_id", "order_id", "type", "status", "payload", "error"])
            | {"executed_at": _jsonable(a.executed_at), "created_at": _jsonable(a.created_at)}
            for a in actions
        ],
        "events": [
            _record(e, ["id", "type", "entity", "entity_id", "payload", "created_at"])
            for e in events
        ],
    }


async def _erase(session: AsyncSession, user_id: uuid.UUID, rows: CustomerRows) -> dict[str, int]:
    """Delete the rows; returns how many of each kind, for the audit Event."""
    counts: dict[str, int] = {}

    async def run(name: str, statement: Any) -> None:
        counts[name] = (await session.execute(statement)).rowcount or 0

    # Events first: they point at the other rows by id only, with no foreign key to cascade.
    await run("events", delete(Event).where(_events_about(user_id, rows)))
    await run("actions", delete(Action).where(Action.id.in_(rows.action_ids)))
    await run(
        "suggestions", delete(AISuggestion).where(AISuggestion.message_id.in_(rows.message_ids))
    )
    await run("messages", delete(Message).where(Message.id.in_(rows.message_ids)))
    await run("threads", delete(Thread).where(Thread.id.in_(rows.thread_ids)))
    await run("orders", delete(Order).where(Order.id.in_(rows.order_ids)))
    return counts


async def redact_customer(
    session: AsyncSession, connection: Connection, email: str | None, gids: list[str]
) -> dict[str, int]:
    rows = await customer_rows(session, connection, email, gids)
    counts = await _erase(session, connection.user_id, rows)
    email = normalise_email(email)
    counts["exports"] = 0
    if email:
        exports = delete(ComplianceExport).where(
            ComplianceExport.user_id == connection.user_id,
            ComplianceExport.shop_domain == connection.shop_domain,
            func.lower(ComplianceExport.customer_email) == email,
        )
        counts["exports"] = (await session.execute(exports)).rowcount or 0
    return counts


async def redact_shop(
    session: AsyncSession, connection: Connection, *, keep_event_id: str | None = None
) -> dict[str, int]:
    """Erase the shop's orders, the conversations about them, its exports, deliveries and
    install records, and the connection itself. Threads not linked to any of the shop's
    orders belong to the merchant's mailbox, not to the shop, and stay."""
    user_id = connection.user_id
    shop = connection.shop_domain
    order_ids = await _ids(session, select(Order.id).where(Order.connection_id == connection.id))
    rows = await _rows_for_orders_and_threads(session, user_id, order_ids, false())
    counts = await _erase(session, user_id, rows)

    async def run(name: str, statement: Any) -> None:
        counts[name] = (await session.execute(statement)).rowcount or 0

    await run(
        "connection_events",
        delete(Event).where(
            Event.user_id == user_id,
            Event.entity == "connection",
            Event.entity_id == str(connection.id),
        ),
    )
    await run(
        "exports",
        delete(ComplianceExport).where(
            ComplianceExport.user_id == user_id, ComplianceExport.shop_domain == shop
        ),
    )
    deliveries = delete(ShopifyWebhook).where(ShopifyWebhook.shop_domain == shop)
    if keep_event_id is not None:
        deliveries = deliveries.where(ShopifyWebhook.event_id != keep_event_id)
    await run("webhooks", deliveries)
    await run("oauth_states", delete(OAuthState).where(OAuthState.shop_domain == shop))
    await run("connections", delete(Connection).where(Connection.id == connection.id))
    return counts
