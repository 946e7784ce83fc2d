"""The GraphQL client's own logic: refund planning, order parsing, throttling over loopback."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI, Request

from integrations.shopify.graphql import ShopifyGraphQL
from integrations.shopify.orders import order_snapshot
from integrations.shopify.refund_plan import RefundPlanError, plan_transactions
from kernel.errors import IntegrationError
from kernel.values import ShopTarget
from sandbox.server import serve_app, shop_base
from sandbox.shopify.server import ShopifySandbox, serving

ORDER_ID = "gid://shopify/Order/1001"


def _money(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": "EUR"}}


SUGGESTION = {
    "amountSet": _money("80.00"),
    "maximumRefundableSet": _money("80.00"),
    "suggestedTransactions": [
        {
            "amountSet": _money("50.00"),
            "gateway": "gift_card",
            "kind": "SUGGESTED_REFUND",
            "parentTransaction": {"id": "gid://shopify/OrderTransaction/1"},
        },
        {
            "amountSet": _money("30.00"),
            "gateway": "shopify_payments",
            "kind": "SUGGESTED_REFUND",
            "parentTransaction": {"id": "gid://shopify/OrderTransaction/2"},
        },
    ],
}


def test_full_refund_follows_the_suggestion() -> None:
    plan = plan_transactions(ORDER_ID, SUGGESTION, None)
    assert [(t["gateway"], t["amount"], t["parentId"]) for t in plan] == [
        ("gift_card", "50.00", "gid://shopify/OrderTransaction/1"),
        ("shopify_payments", "30.00", "gid://shopify/OrderTransaction/2"),
    ]
    assert all(t["kind"] == "REFUND" and t["orderId"] == ORDER_ID for t in plan)


def test_partial_amount_is_spread_in_order() -> None:
    plan = plan_transactions(ORDER_ID, SUGGESTION, Decimal("60"))
    assert [t["amount"] for t in plan] == ["50.00", "10.00"]


@pytest.mark.parametrize("amount", [Decimal("80.01"), Decimal("0"), Decimal("-5")])
def test_never_more_than_refundable_nor_nothing(amount: Decimal) -> None:
    with pytest.raises(RefundPlanError):
        plan_transactions(ORDER_ID, SUGGESTION, amount)


def test_order_json_becomes_a_snapshot() -> None:
    snapshot = order_snapshot(
        {
            "id": ORDER_ID,
            "name": "#1001",
            "email": None,
            "cancelledAt": None,
            "displayFinancialStatus": "PARTIALLY_REFUNDED",
            "displayFulfillmentStatus": "UNFULFILLED",
            "customer": {
                "id": "gid://shopify/Customer/1",
                "defaultEmailAddress": {"emailAddress": "a@b.example"},
            },
            "shippingAddress": {"address1": "1 Main St", "city": "Springfield"},
            "currentTotalPriceSet": _money("99.90"),
            "refundable": {"maximumRefundableSet": _money("49.95")},
            "lineItems": {
                "nodes": [
                    {
                        "id": "gid://shopify/LineItem/1",
                        "title": "Mug",
                        "quantity": 2,
                        "currentQuantity": 2,
                        "unfulfilledQuantity": 2,
                        "variant": {"id": "gid://shopify/ProductVariant/9"},
                        "originalUnitPriceSet": _money("49.95"),
                    }
                ]
            },
        }
    )
    assert (snapshot.email, snapshot.total, snapshot.refundable, snapshot.currency) == (
        "a@b.example",
        Decimal("99.90"),
        Decimal("49.95"),
        "EUR",
    )
    assert snapshot.line_items[0].variant_id == "gid://shopify/ProductVariant/9"
    assert not snapshot.line_items[0].fulfilled and not snapshot.cancelled


class _ThrottlingShop:
    """A loopback endpoint that throttles the first N requests the way Shopify does."""

    def __init__(self, throttled: int) -> None:
        self.throttled = throttled
        self.requests = 0
        self.app = FastAPI()

        @self.app.post("/admin/api/2026-10/graphql.json")
        async def graphql(request: Request) -> dict[str, Any]:
            self.requests += 1
            assert "query" in json.loads(await request.body())
            bucket = {"maximumAvailable": 100.0, "currentlyAvailable": 2, "restoreRate": 1000.0}
            cost = {"requestedQueryCost": 12, "actualQueryCost": None, "throttleStatus": bucket}
            if self.requests <= self.throttled:
                return {
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {"cost": cost},
                }
            refilled = {**cost, "throttleStatus": {**bucket, "currentlyAvailable": 90}}
            return {"data": {"shop": {"name": "x"}}, "extensions": {"cost": refilled}}


def _shop(base: str) -> ShopTarget:
    return ShopTarget(shop_domain="s.myshopify.com", access_token="t", api_base=base)


@pytest.mark.parametrize(("throttled", "succeeds"), [(2, True), (50, False)])
async def test_throttled_requests_wait_then_succeed_or_give_up_retryably(
    throttled: int, succeeds: bool
) -> None:
    shopify = _ThrottlingShop(throttled)
    slept: list[float] = []

    async def record_sleep(seconds: float) -> None:
        slept.append(seconds)

    client = ShopifyGraphQL(sleep=record_sleep, max_throttle_retries=3)
    try:
        async with serve_app(shopify.app) as base:
            if succeeds:
                assert await client.execute(_shop(base), "{ shop { name } }") == {
                    "shop": {"name": "x"}
                }
                assert shopify.requests == 3
            else:
                with pytest.raises(IntegrationError, match="throttled") as error:
                    await client.execute(_shop(base), "{ shop { name } }")
                assert error.value.retryable and shopify.requests == 4
    finally:
        await client.aclose()
    assert slept and all(seconds > 0 for seconds in slept)


async def test_unreachable_shop_is_retryable() -> None:
    client = ShopifyGraphQL()
    try:
        with pytest.raises(IntegrationError) as error:
            await client.execute(_shop("http://127.0.0.1:9"), "{ shop { name } }")
        assert error.value.retryable
    finally:
        await client.aclose()


async def test_concurrent_requests_queue_for_the_bucket_instead_of_being_throttled() -> None:
    """Once Shopify has reported the bucket and a document's cost, requests sent together
    wait their turn for it: none is THROTTLED, and all of them are answered."""
    sandbox = ShopifySandbox()
    sandbox.state.register_app("app", "secret")
    # A small, slow bucket: the burst below costs several times what it holds.
    sandbox.add_shop(
        "small.myshopify.com", api_key="app", token="t", bucket_size=60, restore_rate=200
    )
    document = "query { orders(first: 10) { nodes { id name } } }"
    client = ShopifyGraphQL()
    try:
        async with serving(sandbox) as url:
            shop = ShopTarget(
                shop_domain="small.myshopify.com",
                access_token="t",
                api_base=shop_base(url, "small.myshopify.com"),
            )
            await client.execute(shop, document)  # the bucket and the cost, as reported
            per_request = sandbox.usage["small.myshopify.com"].requested_points
            assert per_request > 5, per_request
            answers = await asyncio.gather(*(client.execute(shop, document) for _ in range(20)))
    finally:
        await client.aclose()
    assert all(len(a["orders"]["nodes"]) == 10 for a in answers)
    usage = sandbox.usage["small.myshopify.com"]
    assert usage.requests == 21 and usage.throttled == 0, usage
    assert usage.requested_points == 21 * per_request > 60
