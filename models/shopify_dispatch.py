"""What each Shopify webhook topic does to our data, applied in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ConnectionType
from models.compliance import (
    export_customer_data,
    normalise_email,
    order_gids,
    redact_customer,
    redact_shop,
)
from models.connection import Connection
from models.event import log_event
from models.order import Order
from models.shopify import ComplianceExport, ShopifyWebhook
from models.shopify_sync import (
    ORDER_TOPICS,
    OrderPayloadError,
    order_fields,
    upsert_order_from_webhook,
)


async def shop_connection(
    session: AsyncSession, shop_domain: str, *, lock: bool = False
) -> Connection | None:
    query = select(Connection).where(
        Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop_domain
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


def _disabled(connection: Connection) -> bool:
    return bool((connection.metadata_ or {}).get("disabled"))


@dataclass(frozen=True)
class Applied:
    """What a delivery did: a short note (no customer data) and, for an order, the
    order events playbooks react to."""

    note: str
    user_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    order_events: tuple[str, ...] = ()


async def apply_delivery(session: AsyncSession, delivery: ShopifyWebhook) -> Applied:
    """Apply one delivery; returns what happened.

    The owner is found again from the shop domain now, not trusted from the delivery:
    only the merchant connected to that shop is ever touched.
    """
    payload = delivery.payload
    connection = await shop_connection(session, delivery.shop_domain, lock=True)
    topic = delivery.topic
    if topic in ORDER_TOPICS:
        if connection is None:
            return Applied("no connection for this shop")
        if _disabled(connection):
            return Applied("the shop's connection is disabled")
        before = await _order_state(session, connection, payload)
        order_id = await upsert_order_from_webhook(session, connection, payload)
        if order_id is None:
            return Applied("a newer version is already stored")
        after = await session.get(Order, order_id, populate_existing=True)
        assert after is not None
        events = order_events(
            topic, before, (after.fulfillment_status, after.financial_status, after.status)
        )
        return Applied("order stored", connection.user_id, order_id, events)
    if topic == "app/uninstalled":
        return Applied(await _uninstalled(session, connection, delivery))
    if topic == "customers/data_request":
        return Applied(await _data_request(session, connection, delivery))
    if topic == "customers/redact":
        return Applied(await _customer_redact(session, connection, delivery))
    if topic == "shop/redact":
        return Applied(await _shop_redact(session, connection, delivery))
    return Applied(f"topic {topic} is not handled")


OrderState = tuple[str | None, str | None, str | None]  # fulfilment, financial, status


def order_events(topic: str, before: OrderState | None, after: OrderState) -> tuple[str, ...]:
    """The order events of one delivery: its topic, plus "fulfilled" and "refunded" when
    the delivery is where the order became so (Shopify also says it in orders/updated)."""
    events = [{"orders/create": "created", "orders/cancelled": "cancelled"}.get(topic, "updated")]
    was_fulfilled = before is not None and before[0] == "FULFILLED"
    if after[0] == "FULFILLED" and not was_fulfilled:
        events.append("fulfilled")
    refunded = {"REFUNDED", "PARTIALLY_REFUNDED"}
    if after[1] in refunded and (before is None or before[1] != after[1]):
        events.append("refunded")
    if (
        after[2] == "cancelled"
        and "cancelled" not in events
        and (before is None or before[2] != "cancelled")
    ):
        events.append("cancelled")
    return tuple(events)


async def _order_state(
    session: AsyncSession, connection: Connection, payload: dict[str, Any]
) -> OrderState | None:
    try:
        shopify_id = order_fields(payload)["shopify_id"]
    except OrderPayloadError:
        return None  # the upsert says why
    row = (
        await session.execute(
            select(Order.fulfillment_status, Order.financial_status, Order.status).where(
                Order.shop_domain == connection.shop_domain, Order.shopify_id == shopify_id
            )
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def _uninstalled(
    session: AsyncSession, connection: Connection | None, delivery: ShopifyWebhook
) -> str:
    if connection is None:
        return "no connection for this shop"
    # Kept, not deleted: its orders and conversations stay readable until shop/redact.
    connection.metadata_ = (connection.metadata_ or {}) | {
        "disabled": True,
        "uninstalledAt": datetime.now(UTC).isoformat(),
    }
    await log_event(
        session,
        "shopify.uninstalled",
        user_id=connection.user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"shop_domain": delivery.shop_domain, "event_id": delivery.event_id},
    )
    return "connection disabled"


def _customer(payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    return normalise_email(customer.get("email")), customer


async def _data_request(
    session: AsyncSession, connection: Connection | None, delivery: ShopifyWebhook
) -> str:
    email, _ = _customer(delivery.payload)
    gids = order_gids(delivery.payload.get("orders_requested"))
    request_id = (delivery.payload.get("data_request") or {}).get("id")
    if connection is None:
        await log_event(
            session,
            "shopify.customer_data_request",
            payload={"shop_domain": delivery.shop_domain, "held": False},
        )
        return "no connection for this shop: nothing held"
    data = await export_customer_data(session, connection, email, gids)
    statement = (
        insert(ComplianceExport)
        .values(
            user_id=connection.user_id,
            shop_domain=delivery.shop_domain,
            event_id=delivery.event_id,
            data_request_id=None if request_id is None else str(request_id),
            customer_email=email,
            data=data,
        )
        .on_conflict_do_nothing(index_elements=[ComplianceExport.event_id])
        .returning(ComplianceExport.id)
    )
    export_id = (await session.execute(statement)).scalar_one_or_none()
    if export_id is None:
        return "export already made"
    counts = {k: len(v) for k, v in data.items() if isinstance(v, list)}
    await log_event(
        session,
        "shopify.customer_data_exported",
        user_id=connection.user_id,
        entity="compliance_export",
        entity_id=export_id,
        payload={"shop_domain": delivery.shop_domain, "data_request_id": request_id, **counts},
    )
    return "export ready"


async def _customer_redact(
    session: AsyncSession, connection: Connection | None, delivery: ShopifyWebhook
) -> str:
    email, _ = _customer(delivery.payload)
    gids = order_gids(delivery.payload.get("orders_to_redact"))
    if connection is None:
        await log_event(
            session,
            "shopify.customer_redacted",
            payload={"shop_domain": delivery.shop_domain, "held": False},
        )
        return "no connection for this shop: nothing held"
    counts = await redact_customer(session, connection, email, gids)
    await log_event(
        session,
        "shopify.customer_redacted",
        user_id=connection.user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"shop_domain": delivery.shop_domain, "deleted": counts},
    )
    return "customer data erased"


async def _shop_redact(
    session: AsyncSession, connection: Connection | None, delivery: ShopifyWebhook
) -> str:
    if connection is None:
        await log_event(
            session,
            "shopify.shop_redacted",
            entity="shop",
            entity_id=delivery.shop_domain,
            payload={"held": False},
        )
        return "no connection for this shop: nothing held"
    user_id = connection.user_id
    counts = await redact_shop(session, connection, keep_event_id=delivery.event_id)
    await log_event(
        session,
        "shopify.shop_redacted",
        user_id=user_id,
        entity="shop",
        entity_id=delivery.shop_domain,
        payload={"deleted": counts},
    )
    return "shop data erased"
