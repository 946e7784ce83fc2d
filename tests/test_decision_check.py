"""The check a person's decision passes when it is made. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.decision_check import decision_problems, edit_problems
from kernel.enums import ActionType
from kernel.values import LineItem, OrderSnapshot

MUG = "gid://shopify/LineItem/11"


def _order(**changes: Any) -> OrderSnapshot:
    facts: dict[str, Any] = {
        "id": "gid://shopify/Order/1",
        "name": "#1001",
        "email": "ava@example.com",
        "currency": "USD",
        "total": Decimal("124.90"),
        "refundable": Decimal("124.90"),
        "financial_status": "PAID",
        "fulfillment_status": "UNFULFILLED",
        "cancelled": False,
        "line_items": [
            LineItem(id=MUG, title="Mug", quantity=2, unit_price=Decimal("12.45"), variant_id=None)
        ],
    }
    return OrderSnapshot(**(facts | changes))


def _fields(problems: list[Any]) -> list[str]:
    return [problem.field for problem in problems]


def test_a_suggested_refund_as_it_stands_passes() -> None:
    reply = "We have refunded 124.90 USD on order #1001."
    assert decision_problems(ActionType.REFUND, reply, {}, _order()) == []


def test_the_reply_must_say_something() -> None:
    assert _fields(edit_problems(ActionType.REFUND, " \n\t ", None)) == ["reply"]
    assert _fields(decision_problems(ActionType.NONE, "", {}, None)) == ["reply"]


def test_text_postgres_cannot_store_is_refused() -> None:
    assert _fields(edit_problems(ActionType.REFUND, "hi\x00", None)) == ["reply"]
    nested = {"line_items": [{"line_item_id": "a\x00", "quantity": 1}]}
    assert _fields(edit_problems(ActionType.REFUND, None, nested)) == ["payload"]


def test_keys_the_action_does_not_have_are_refused() -> None:
    problems = edit_problems(
        ActionType.REFUND, None, {"shop_domain": "x", "order_id": "y", "amount": "1"}
    )
    assert _fields(problems) == ["payload.shop_domain", "payload.order_id"]
    # What execution writes for itself cannot be set by an edit either.
    assert _fields(edit_problems(ActionType.CANCEL, None, {"outcome": {}})) == ["payload.outcome"]


def test_amounts_that_are_not_money_are_refused() -> None:
    for amount in ("-5", "0", "1e309", "NaN", "12.345", True, [], float("inf")):
        problems = edit_problems(ActionType.REFUND, None, {"amount": amount})
        assert _fields(problems) == ["payload.amount"], amount


def test_more_than_the_order_can_refund_is_refused() -> None:
    problems = decision_problems(ActionType.REFUND, "Refunded.", {"amount": "1249.00"}, _order())
    assert _fields(problems) == ["payload.amount"] and "exceeds" in problems[0].reason


def test_another_orders_line_item_is_refused() -> None:
    payload = {"line_items": [{"line_item_id": "gid://shopify/LineItem/99", "quantity": 1}]}
    problems = decision_problems(ActionType.REFUND, "Refunded.", payload, _order())
    assert _fields(problems) == ["payload.line_items"]


def test_a_reply_naming_more_than_the_edited_amount_is_refused() -> None:
    reply = "We have refunded 124.90 USD on order #1001."
    problems = decision_problems(ActionType.REFUND, reply, {"amount": "1.00"}, _order())
    assert _fields(problems) == ["reply"] and "124.90" in problems[0].reason
    fixed = "We have refunded 1.00 USD on order #1001."
    assert decision_problems(ActionType.REFUND, fixed, {"amount": "1.00"}, _order()) == []


def test_a_reply_promising_an_act_the_action_does_not_do_is_refused() -> None:
    problems = decision_problems(ActionType.NONE, "We have refunded your order.", {}, _order())
    assert _fields(problems) == ["reply"]


def test_an_order_that_changed_refuses_what_no_longer_holds() -> None:
    shipped = _order(fulfillment_status="FULFILLED")
    problems = decision_problems(ActionType.CANCEL, "We have cancelled it.", {}, shipped)
    assert _fields(problems) == ["order"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@given(
    action=st.sampled_from(list(ActionType)),
    reply=st.text(max_size=50),
    payload=st.dictionaries(
        st.sampled_from(["amount", "line_items", "address", "line_item_id", "quantity", "x"]),
        _json,
        max_size=4,
    ),
)
def test_any_edit_gets_reasons_not_an_exception(
    action: ActionType, reply: str, payload: dict[str, Any]
) -> None:
    for problem in decision_problems(action, reply, payload, _order()):
        assert problem.field and problem.reason
