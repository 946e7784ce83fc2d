"""Whether an action may still run on an order as Shopify reports it now. Pure.

Checked right before execution, because the order can change between the
suggestion and the approval (shipped, refunded elsewhere, cancelled).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kernel.enums import ActionType
from kernel.values import OrderSnapshot


def refund_amount(payload: dict[str, Any], order: OrderSnapshot) -> Decimal:
    """The amount a REFUND payload asks for; the whole refundable amount when it names none."""
    raw = payload.get("amount")
    if raw is None:
        return order.refundable
    try:
        amount = Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"refund amount {raw!r} is not a number") from exc
    if not amount.is_finite():  # NaN and Infinity parse, but cannot be compared or paid
        raise ValueError(f"refund amount {raw!r} is not a number")
    return amount


def why_not_allowed(
    action: ActionType, payload: dict[str, Any], order: OrderSnapshot
) -> str | None:
    """None when the action may run; otherwise the reason a merchant will read."""
    if action is ActionType.REFUND:
        try:
            amount = refund_amount(payload, order)
        except ValueError as exc:
            return str(exc)
        if amount <= 0:
            return "the refund amount must be positive"
        if amount > order.refundable:
            return (
                f"refund of {amount} {order.currency} exceeds what order {order.name} can still "
                f"refund ({order.refundable} {order.currency})"
            )
    elif action is ActionType.CANCEL:
        if order.cancelled:
            return f"order {order.name} is already cancelled"
        if order.fulfillment_status != "UNFULFILLED":
            return f"order {order.name} has shipped ({order.fulfillment_status}); it can no longer be cancelled"
    elif action is ActionType.ADDRESS_CHANGE:
        if order.cancelled:
            return f"order {order.name} is cancelled"
        if order.fulfillment_status != "UNFULFILLED":
            return f"order {order.name} has shipped; its address can no longer change"
        address = payload.get("address")
        if not isinstance(address, dict) or not address.get("address1"):
            return "the new address is incomplete"
    elif action is ActionType.REPLACE_ITEM:
        if order.cancelled:
            return f"order {order.name} is cancelled"
        line = payload.get("line_item_id")
        if not any(item.id == line for item in order.line_items):
            return f"line item {line} is not on order {order.name}"
    return None
