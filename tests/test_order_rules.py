"""Execution-time checks on an order as the store reports it now."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.order_rules import why_not_allowed
from kernel.enums import ActionType
from kernel.values import LineItem, OrderSnapshot


def _order(**changes: object) -> OrderSnapshot:
    base = OrderSnapshot(
        id="gid://shopify/Order/1",
        name="#1001",
        email="ava@example.com",
        currency="USD",
        total=Decimal("40.00"),
        refundable=Decimal("40.00"),
        financial_status="PAID",
        fulfillment_status="UNFULFILLED",
        cancelled=False,
        line_items=[
            LineItem(
                id="gid://shopify/LineItem/1", title="Mug", quantity=2, unit_price=Decimal("20")
            )
        ],
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN", "ten", ""])
def test_a_refund_amount_that_is_not_a_finite_number_is_refused(amount: str) -> None:
    assert why_not_allowed(ActionType.REFUND, {"amount": amount}, _order()) == (
        f"refund amount {amount!r} is not a number"
    )


def test_refund_limits() -> None:
    assert why_not_allowed(ActionType.REFUND, {"amount": "40.00"}, _order()) is None
    assert why_not_allowed(ActionType.REFUND, {}, _order()) is None  # the whole refundable
    assert "positive" in str(why_not_allowed(ActionType.REFUND, {"amount": "0"}, _order()))
    assert "exceeds" in str(why_not_allowed(ActionType.REFUND, {"amount": "40.01"}, _order()))


def test_cancel_address_and_replacement_follow_the_order_state() -> None:
    shipped = _order(fulfillment_status="FULFILLED")
    assert "shipped" in str(why_not_allowed(ActionType.CANCEL, {}, shipped))
    assert "already cancelled" in str(
        why_not_allowed(ActionType.CANCEL, {}, _order(cancelled=True))
    )
    address = {"address": {"address1": "1 Main St"}}
    assert why_not_allowed(ActionType.ADDRESS_CHANGE, address, _order()) is None
    assert "shipped" in str(why_not_allowed(ActionType.ADDRESS_CHANGE, address, shipped))
    assert "incomplete" in str(why_not_allowed(ActionType.ADDRESS_CHANGE, {}, _order()))
    line = {"line_item_id": "gid://shopify/LineItem/1"}
    assert why_not_allowed(ActionType.REPLACE_ITEM, line, _order()) is None
    other = {"line_item_id": "gid://shopify/LineItem/9"}
    assert "not on order" in str(why_not_allowed(ActionType.REPLACE_ITEM, other, _order()))
