"""Keeping Order rows in step with Shopify's order webhooks.

The webhook body is Shopify's REST order resource (snake_case, numeric ids, money as
strings); Order rows use the GraphQL vocabulary the rest of deskpilot speaks (gid ids,
PAID, UNFULFILLED), so the mapping happens here, once.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import Malformed
from kernel.values import OrderSnapshot
from models.connection import Connection
from models.order import Order

ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled"})

# REST fulfillment_status → the GraphQL OrderDisplayFulfillmentStatus the order rules read.
_FULFILLMENT = {
    None: "UNFULFILLED",
    "": "UNFULFILLED",
    "unfulfilled": "UNFULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "fulfilled": "FULFILLED",
    "restocked": "RESTOCKED",
}


class OrderPayloadError(Malformed, ValueError):
    """The body is not an order we can store; retrying will not change that."""


def order_gid(numeric_id: int | str) -> str:
    return f"gid://shopify/Order/{numeric_id}"


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except InvalidOperation as exc:
        raise OrderPayloadError(f"total_price is not an amount: {value!r}") from exc


def order_status(payload: dict[str, Any]) -> str:
    if payload.get("cancelled_at"):
        return "cancelled"
    if payload.get("closed_at"):
        return "closed"
    return "open"


def order_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The Order columns for one webhook body (without connection and shop)."""
    shopify_id = payload.get("admin_graphql_api_id") or (
        order_gid(payload["id"]) if payload.get("id") is not None else None
    )
    if not shopify_id or not payload.get("name"):
        raise OrderPayloadError("the order has no id or no name")
    fulfillment = payload.get("fulfillment_status")
    financial = payload.get("financial_status")
    currency = payload.get("currency") or payload.get("presentment_currency")
    if not currency:
        raise OrderPayloadError("the order has no currency")
    email = payload.get("email") or payload.get("contact_email") or None
    return {
        "shopify_id": str(shopify_id),
        "name": str(payload["name"]),
        "email": email,
        "total_amount": _money(payload.get("current_total_price", payload.get("total_price"))),
        "currency": str(currency).upper(),
        "financial_status": financial.upper() if isinstance(financial, str) else None,
        "fulfillment_status": _FULFILLMENT.get(fulfillment, str(fulfillment).upper()),
        "status": order_status(payload),
        "details": order_details(payload),
    }


def order_details(payload: dict[str, Any]) -> dict[str, Any]:
    """What the inbox and prompts need from the order; `updated_at` orders the deliveries."""
    address = payload.get("shipping_address")
    return {
        "source": "webhook",
        "updated_at": payload.get("updated_at"),
        "cancelled_at": payload.get("cancelled_at"),
        "cancel_reason": payload.get("cancel_reason"),
        "subtotal": payload.get("subtotal_price"),
        "total": payload.get("current_total_price", payload.get("total_price")),
        "shipping_address": address if isinstance(address, dict) else None,
        "line_items": [
            {
                "id": item.get("admin_graphql_api_id") or item.get("id"),
                "title": item.get("title"),
                "sku": item.get("sku"),
                "quantity": item.get("quantity"),
                "price": item.get("price"),
                "variant_id": item.get("variant_id"),
                "fulfillment_status": item.get("fulfillment_status"),
            }
            for item in payload.get("line_items") or []
            if isinstance(item, dict)
        ],
    }


async def upsert_order_from_webhook(
    session: AsyncSession, connection: Connection, payload: dict[str, Any]
) -> uuid.UUID | None:
    """Insert or update the order; returns its id, or None when a newer version is stored.

    Shopify does not promise delivery order, so an orders/updated that is older than
    what we hold (by the order's own updated_at) leaves the row alone.
    """
    if connection.shop_domain is None:
        raise OrderPayloadError("the connection has no shop domain")
    fields = order_fields(payload)
    statement = insert(Order).values(
        connection_id=connection.id, shop_domain=connection.shop_domain, **fields
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Order.shop_domain, Order.shopify_id],
        set_={column: statement.excluded[column] for column in fields if column != "shopify_id"}
        | {"connection_id": statement.excluded.connection_id, "updated_at": func.now()},
        where=text(
            "orders.details ->> 'updated_at' IS NULL"
            " OR excluded.details ->> 'updated_at' IS NULL"
            " OR (orders.details ->> 'updated_at')::timestamptz"
            " <= (excluded.details ->> 'updated_at')::timestamptz"
        ),
    ).returning(Order.id)
    return (await session.execute(statement)).scalar_one_or_none()


async def upsert_order_snapshots(
    session: AsyncSession, connection: Connection, snapshots: list[OrderSnapshot]
) -> int:
    """Bring Order rows in line with orders read through the Admin API; returns how many."""
    if not snapshots or connection.shop_domain is None:
        return 0
    rows = [
        {
            "connection_id": connection.id,
            "shop_domain": connection.shop_domain,
            "shopify_id": order.id,
            "name": order.name,
            "status": "cancelled" if order.cancelled else "open",
            "email": order.email,
            "total_amount": order.total,
            "currency": order.currency,
            "financial_status": order.financial_status,
            "fulfillment_status": order.fulfillment_status,
            "details": order.model_dump(mode="json"),
        }
        for order in snapshots
    ]
    statement = insert(Order).values(rows)
    columns = (
        "connection_id",
        "name",
        "status",
        "email",
        "total_amount",
        "currency",
        "financial_status",
        "fulfillment_status",
        "details",
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Order.shop_domain, Order.shopify_id],
            set_={c: statement.excluded[c] for c in columns} | {"updated_at": func.now()},
        )
    )
    return len(rows)
