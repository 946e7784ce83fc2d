"""What each Shopify webhook topic does to our data, applied in the caller's transaction."""

from __future__ import annotations

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
from models.shopify import ComplianceExport, ShopifyWebhook
from models.shopify_sync import ORDER_TOPICS, upsert_order_from_webhook


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


async def apply_delivery(session: AsyncSession, delivery: ShopifyWebhook) -> str:
    """Apply one delivery; returns a short note of what happened (no customer data).

    The owner is found again from the shop domain now, not trusted from the delivery:
    only the merchant connected to that shop is ever touched.
    """
    payload = delivery.payload
    connection = await shop_connection(session, delivery.shop_domain, lock=True)
    topic = delivery.topic
    if topic in ORDER_TOPICS:
        if connection is None:
            return "no connection for this shop"
        if _disabled(connection):
            return "the shop's connection is disabled"
        order_id = await upsert_order_from_webhook(session, connection, payload)
        return "order stored" if order_id else "a newer version is already stored"
    if topic == "app/uninstalled":
        return await _uninstalled(session, connection, delivery)
    if topic == "customers/data_request":
        return await _data_request(session, connection, delivery)
    if topic == "customers/redact":
        return await _customer_redact(session, connection, delivery)
    if topic == "shop/redact":
        return await _shop_redact(session, connection, delivery)
    return f"topic {topic} is not handled"


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
