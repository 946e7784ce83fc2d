"""Turning Shopify's order JSON into the OrderSnapshot the rest of deskpilot reads. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kernel.values import LineItem, OrderSnapshot


def _money(money_bag: dict[str, Any] | None) -> tuple[Decimal, str | None]:
    shop_money = (money_bag or {}).get("shopMoney") or {}
    return Decimal(str(shop_money.get("amount") or "0")), shop_money.get("currencyCode")


def order_snapshot(order: dict[str, Any]) -> OrderSnapshot:
    """From ORDER (full), ORDER_STATE (no line items) or ORDERS_SEARCH (a summary: no line
    items, and the refundable amount estimated from the totals instead of Shopify's own
    suggestion)."""
    total, currency = _money(order.get("currentTotalPriceSet"))
    if "refundable" in order:
        refundable, _ = _money((order.get("refundable") or {}).get("maximumRefundableSet"))
    else:
        refunded, _ = _money(order.get("totalRefundedSet"))
        refundable = max(total - refunded, Decimal("0"))
    customer_email = ((order.get("customer") or {}).get("defaultEmailAddress") or {}).get(
        "emailAddress"
    )
    lines = []
    for node in (order.get("lineItems") or {}).get("nodes") or []:
        unit_price, _ = _money(node.get("originalUnitPriceSet"))
        lines.append(
            LineItem(
                id=node["id"],
                title=node.get("title") or "",
                quantity=int(node.get("currentQuantity", node.get("quantity", 0))),
                unit_price=unit_price,
                variant_id=(node.get("variant") or {}).get("id"),
                fulfilled=int(node.get("unfulfilledQuantity", 0)) == 0
                and int(node.get("currentQuantity", 0)) > 0,
            )
        )
    return OrderSnapshot(
        id=order["id"],
        name=order["name"],
        email=order.get("email") or customer_email,
        currency=currency or "USD",
        total=total,
        refundable=refundable,
        financial_status=order.get("displayFinancialStatus") or "PENDING",
        fulfillment_status=order.get("displayFulfillmentStatus") or "UNFULFILLED",
        cancelled=order.get("cancelledAt") is not None,
        shipping_address=order.get("shippingAddress"),
        line_items=lines,
    )
