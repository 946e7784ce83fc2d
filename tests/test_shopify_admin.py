"""The ShopifyPort over GraphQL against the sandbox store, over loopback: reads, the four
write actions, their refusals, and idempotency."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from integrations.shopify import documents as doc
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ActionType
from kernel.errors import IntegrationError
from kernel.values import OrderSnapshot, ShopTarget
from sandbox.server import Sandbox, serving, shop_base
from sandbox.shopify.seed import create_order
from sandbox.shopify.state import Shop

APP = "admin-tests"


@dataclass
class Store:
    admin: ShopifyAdmin
    target: ShopTarget
    shop: Shop
    sandbox: Sandbox

    def requests(self) -> int:
        usage = self.sandbox.shopify.usage.get(self.shop.domain)
        return usage.requests if usage else 0

    async def first(self, wanted: Any) -> OrderSnapshot:
        for order in sorted(self.shop.orders.values(), key=lambda o: o.number):
            snapshot = await self.admin.get_order(self.target, order.gid)
            if wanted(snapshot):
                return snapshot
        raise AssertionError("no such order in the seed")

    async def act(
        self, order: OrderSnapshot, action: ActionType, payload: dict[str, Any], key: str = ""
    ) -> Any:
        prepared = await self.admin.prepare(self.target, order.id, action, payload)
        return await self.admin.perform(
            self.target, order.id, action, prepared, key or uuid.uuid4().hex
        )

    def ledger(self, kind: str) -> list[dict[str, Any]]:
        return [entry for entry in self.shop.ledger if entry["type"] == kind]


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    sandbox = Sandbox()
    sandbox.shopify.state.register_app(APP, "secret")
    domain = f"admin-{uuid.uuid4().hex[:6]}.myshopify.com"
    shop = sandbox.shopify.add_shop(domain, api_key=APP, token="shpat_admin")
    admin = ShopifyAdmin()
    async with serving(sandbox) as url:
        yield Store(
            admin,
            ShopTarget(
                shop_domain=domain, access_token="shpat_admin", api_base=shop_base(url, domain)
            ),
            shop,
            sandbox,
        )
    await admin.aclose()


def _open_paid(o: OrderSnapshot) -> bool:
    return (
        o.fulfillment_status == "UNFULFILLED" and not o.cancelled and o.financial_status == "PAID"
    )


async def test_an_order_with_many_lines_is_read_whole_page_by_page(store: Store) -> None:
    """The first read asks for a few lines (cheap); the rest is paged only when there is more."""
    seeded = await store.first(_open_paid)
    assert len(seeded.line_items) < doc.FIRST_LINE_ITEMS
    before = store.requests()
    again = await store.admin.get_order(store.target, seeded.id)
    assert again.line_items == seeded.line_items
    assert store.requests() == before + 1  # no second page asked for
    create_order(store.shop)  # the catalogue exists once an order does
    variants = list(store.shop.variants)
    many = create_order(store.shop, items=[(variants[i % len(variants)], 1) for i in range(33)])
    before = store.requests()
    order = await store.admin.get_order(store.target, many.gid)
    assert store.requests() == before + 3  # 5 lines, then 25, then the last 3
    assert [line.id for line in order.line_items] == [
        f"gid://shopify/LineItem/{line.id}" for line in many.line_items
    ]
    state = await store.admin.get_order(store.target, many.gid, line_items=False)
    assert state.line_items == []
    assert (state.refundable, state.financial_status, state.cancelled) == (
        order.refundable,
        order.financial_status,
        order.cancelled,
    )


async def test_reads_by_id_name_and_email(store: Store) -> None:
    order = await store.first(_open_paid)
    assert order.refundable == order.total > 0 and order.line_items
    by_name = await store.admin.order_by_name(store.target, order.name)
    assert by_name is not None and by_name.id == order.id
    by_email = await store.admin.orders_by_email(store.target, order.email or "")
    assert order.id in {o.id for o in by_email} and all(o.email == order.email for o in by_email)
    assert await store.admin.order_by_name(store.target, "#999999") is None
    with pytest.raises(IntegrationError) as missing:
        await store.admin.get_order(store.target, "gid://shopify/Order/1")
    assert not missing.value.retryable


async def test_full_refund_then_nothing_left(store: Store) -> None:
    order = await store.first(_open_paid)
    outcome = await store.act(order, ActionType.REFUND, {})
    assert Decimal(outcome.detail["amount"]) == order.refundable
    after = await store.admin.get_order(store.target, order.id)
    assert after.refundable == 0 and after.financial_status == "REFUNDED"
    with pytest.raises(IntegrationError, match="exceeds") as refused:
        await store.act(after, ActionType.REFUND, {"amount": "1.00"})
    assert not refused.value.retryable


async def test_partial_refunds_by_amount_and_by_line(store: Store) -> None:
    order = await store.first(lambda o: _open_paid(o) and len(o.line_items) >= 2)
    await store.act(order, ActionType.REFUND, {"amount": "5.00"})
    line = order.line_items[0]
    await store.act(
        order, ActionType.REFUND, {"line_items": [{"line_item_id": line.id, "quantity": 1}]}
    )
    after = await store.admin.get_order(store.target, order.id)
    assert after.financial_status == "PARTIALLY_REFUNDED"
    by_amount, by_line = store.ledger("refund")
    assert Decimal(by_amount["amount"]) == Decimal("5.00")
    assert Decimal(by_line["amount"]) == line.unit_price


async def test_over_refund_is_refused_and_nothing_moves(store: Store) -> None:
    order = await store.first(_open_paid)
    with pytest.raises(IntegrationError, match="exceeds"):
        await store.act(order, ActionType.REFUND, {"amount": str(order.refundable + 1)})
    assert store.ledger("refund") == []


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "ten"])
async def test_a_refund_amount_that_is_not_a_number_is_refused_before_the_store_is_asked(
    store: Store, amount: str
) -> None:
    order = await store.first(_open_paid)
    asked = store.requests()
    with pytest.raises(IntegrationError, match="not a number") as refused:
        await store.admin.prepare(store.target, order.id, ActionType.REFUND, {"amount": amount})
    assert not refused.value.retryable
    assert store.requests() == asked and store.ledger("refund") == []


async def test_same_key_twice_refunds_once(store: Store) -> None:
    order = await store.first(_open_paid)
    prepared = await store.admin.prepare(
        store.target, order.id, ActionType.REFUND, {"amount": "3.00"}
    )
    first = await store.admin.perform(
        store.target, order.id, ActionType.REFUND, prepared, "same-key"
    )
    again = await store.admin.perform(
        store.target, order.id, ActionType.REFUND, prepared, "same-key"
    )
    assert first == again and len(store.ledger("refund")) == 1


async def test_cancel_unfulfilled_once_and_refuse_after_fulfilment(store: Store) -> None:
    order = await store.first(_open_paid)
    await store.act(order, ActionType.CANCEL, {})
    cancelled = await store.admin.get_order(store.target, order.id)
    assert cancelled.cancelled and cancelled.financial_status == "REFUNDED"
    again = await store.act(cancelled, ActionType.CANCEL, {})  # a retry finds it done
    assert again.detail == {"already_cancelled": True} and len(store.ledger("cancel")) == 1
    shipped = await store.first(lambda o: o.fulfillment_status == "FULFILLED" and not o.cancelled)
    with pytest.raises(IntegrationError) as refused:
        await store.act(shipped, ActionType.CANCEL, {})
    assert not refused.value.retryable and len(store.ledger("cancel")) == 1


NEW_ADDRESS = {
    "address1": "1 New Road",
    "city": "Springfield",
    "zip": "12345",
    "countryCode": "US",
    "firstName": "Ada",
    "lastName": "Lovelace",
}


async def test_address_change_before_fulfilment_only(store: Store) -> None:
    order = await store.first(_open_paid)
    await store.act(order, ActionType.ADDRESS_CHANGE, {"address": NEW_ADDRESS})
    after = await store.admin.get_order(store.target, order.id)
    assert after.shipping_address and after.shipping_address["address1"] == "1 New Road"
    shipped = await store.first(lambda o: o.fulfillment_status == "FULFILLED" and not o.cancelled)
    with pytest.raises(IntegrationError):
        await store.act(shipped, ActionType.ADDRESS_CHANGE, {"address": NEW_ADDRESS})
    with pytest.raises(IntegrationError, match="full shipping address"):
        await store.act(order, ActionType.ADDRESS_CHANGE, {"address": {"city": "X"}})


async def test_replace_unfulfilled_line_by_order_edit_and_shipped_one_by_exchange(
    store: Store,
) -> None:
    order = await store.first(_open_paid)
    line = order.line_items[0]
    variant = next(
        v for v in store.shop.variants.values() if f"/{v.id}" not in (line.variant_id or "")
    )
    variant_gid = f"gid://shopify/ProductVariant/{variant.id}"
    await store.act(
        order, ActionType.REPLACE_ITEM, {"line_item_id": line.id, "variant_id": variant_gid}
    )
    edited = await store.admin.get_order(store.target, order.id)
    assert variant_gid in {item.variant_id for item in edited.line_items if item.quantity > 0}
    # A retry finds the line already swapped and does not edit again.
    again = await store.act(
        edited, ActionType.REPLACE_ITEM, {"line_item_id": line.id, "variant_id": variant_gid}
    )
    assert "already_replaced" in again.detail and len(store.ledger("order_edit")) == 1

    shipped = await store.first(lambda o: o.fulfillment_status == "FULFILLED" and not o.cancelled)
    shipped_line = shipped.line_items[0]
    await store.act(
        shipped,
        ActionType.REPLACE_ITEM,
        {"line_item_id": shipped_line.id, "variant_id": variant_gid},
    )
    assert len(store.ledger("return")) == 1
    with pytest.raises(IntegrationError, match="not on order"):
        await store.act(
            shipped, ActionType.REPLACE_ITEM, {"line_item_id": "gid://shopify/LineItem/1"}
        )
