"""The Shopify sandbox over loopback HTTP: queries, the four write actions, cost, OAuth.

Documents are sent as a client would send them and executed against Shopify's official
schema; effects are checked in the sandbox's ledger, which counts what really happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from sandbox.shopify.server import ShopifySandbox, serving
from sandbox.shopify.state import Order, Shop

SHOP = "sandbox-shop.myshopify.com"
API_KEY, SECRET, TOKEN = "app-key", "app-secret", "shpat_test_token"
MONEY = "shopMoney { amount currencyCode }"

ORDER_FIELDS = f"""
fragment OrderFields on Order {{
  id name email cancelledAt displayFinancialStatus displayFulfillmentStatus
  customer {{ id defaultEmailAddress {{ emailAddress }} }}
  shippingAddress {{ address1 address2 city company countryCodeV2 firstName lastName phone provinceCode zip }}
  currentTotalPriceSet {{ {MONEY} }}
  totalRefundedSet {{ {MONEY} }}
  lineItems(first: 50) {{ nodes {{
    id title sku quantity currentQuantity refundableQuantity unfulfilledQuantity
    variant {{ id }} originalUnitPriceSet {{ {MONEY} }}
  }} }}
  fulfillments(first: 5) {{ id fulfillmentLineItems(first: 10) {{ nodes {{ id quantity lineItem {{ id }} }} }} }}
  transactions(first: 10) {{ id kind status gateway amountSet {{ {MONEY} }} parentTransaction {{ id }} }}
}}
"""
ORDER = "query Order($id: ID!) { order(id: $id) { ...OrderFields } }" + ORDER_FIELDS
# Light enough that five orders stay under Shopify's single-query cost limit of 1000.
SEARCH = f"""
query Orders($q: String!) {{
  orders(first: 5, query: $q) {{ nodes {{
    id name email displayFinancialStatus customer {{ id defaultEmailAddress {{ emailAddress }} }}
    currentTotalPriceSet {{ {MONEY} }}
    lineItems(first: 10) {{ nodes {{ id sku quantity variant {{ id }} }} }}
    transactions(first: 3) {{ kind gateway }}
  }} }}
}}"""
SUGGEST = f"""
query Suggest($id: ID!, $lines: [RefundLineItemInput!], $full: Boolean) {{
  order(id: $id) {{
    suggestedRefund(refundLineItems: $lines, suggestFullRefund: $full, refundShipping: $full) {{
      amountSet {{ {MONEY} }} maximumRefundableSet {{ {MONEY} }}
      suggestedTransactions {{ amountSet {{ {MONEY} }} gateway kind parentTransaction {{ id }} }}
    }}
  }}
}}"""
REFUND = f"""
mutation Refund($input: RefundInput!, $key: String!) {{
  refundCreate(input: $input) @idempotent(key: $key) {{
    refund {{ id totalRefundedSet {{ {MONEY} }} }}
    userErrors {{ field message }}
  }}
}}"""
CANCEL = """
mutation Cancel($id: ID!) {
  orderCancel(orderId: $id, reason: CUSTOMER, restock: true, notifyCustomer: true,
              staffNote: "asked by email", refundMethod: { originalPaymentMethodsRefund: true }) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}"""
JOB = "query Job($id: ID!) { job(id: $id) { id done } }"
UPDATE = """
mutation Update($input: OrderInput!) {
  orderUpdate(input: $input) {
    order { id shippingAddress { address1 city zip countryCodeV2 } }
    userErrors { field message }
  }
}"""


@dataclass
class Store:
    sandbox: ShopifySandbox
    shop: Shop
    base: str  # {sandbox}/shops/{domain}
    http: httpx.AsyncClient

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str = TOKEN
    ) -> dict[str, Any]:
        answer = await self.http.post(
            f"{self.base}/admin/api/2026-10/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": token},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def order(self, order: Order) -> dict[str, Any]:
        answer = await self.gql(ORDER, {"id": order.gid})
        assert "errors" not in answer, answer
        return answer["data"]["order"]

    def pick(self, *, fulfilled: bool, cancelled: bool = False, refunded: bool = False) -> Order:
        return next(
            o
            for o in self.shop.orders.values()
            if bool(o.fulfillments) == fulfilled
            and (o.cancelled_at is not None) == cancelled
            and (o.refunded > 0) == refunded
            and len(o.line_items) >= 2
        )

    def ledger(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.shop.ledger if e["type"] == kind]


def make_sandbox(**shop_options: Any) -> tuple[ShopifySandbox, Shop]:
    sandbox = ShopifySandbox()
    sandbox.state.register_app(API_KEY, SECRET)
    shop = sandbox.add_shop(SHOP, api_key=API_KEY, token=TOKEN, **shop_options)
    return sandbox, shop


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    sandbox, shop = make_sandbox()
    async with serving(sandbox) as url, httpx.AsyncClient(timeout=10) as http:
        yield Store(sandbox, shop, f"{url}/shops/{SHOP}", http)


# --- reading orders -----------------------------------------------------------------------


def test_seeded_store_is_deterministic_and_mixed() -> None:
    _, first = make_sandbox()
    _, second = make_sandbox()
    assert len(first.orders) >= 50
    summary = [
        (o.name, o.email, str(o.total_price), o.financial_status) for o in first.orders.values()
    ]
    assert summary == [
        (o.name, o.email, str(o.total_price), o.financial_status) for o in second.orders.values()
    ]
    states = {
        (o.financial_status, o.fulfillment_status, o.cancelled_at is not None)
        for o in first.orders.values()
    }
    assert ("PAID", "UNFULFILLED", False) in states
    assert ("PAID", "FULFILLED", False) in states
    assert ("PARTIALLY_REFUNDED", "FULFILLED", False) in states
    assert ("REFUNDED", "UNFULFILLED", True) in states
    assert all(o.sale() is not None for o in first.orders.values())


async def test_orders_by_name_and_by_email(store: Store) -> None:
    answer = await store.gql(SEARCH, {"q": "name:#1003"})
    [found] = answer["data"]["orders"]["nodes"]
    order = store.shop.by_name("#1003")
    assert order is not None
    assert found["id"] == order.gid and found["name"] == "#1003"
    assert found["customer"]["defaultEmailAddress"]["emailAddress"] == order.email
    assert found["lineItems"]["nodes"][0]["variant"]["id"].startswith(
        "gid://shopify/ProductVariant/"
    )
    assert found["transactions"][0]["kind"] == "SALE"
    assert found["transactions"][0]["gateway"] == "shopify_payments"

    email = order.email
    assert email is not None
    answer = await store.gql(SEARCH, {"q": f"email:{email.upper()}"})
    names = {n["name"] for n in answer["data"]["orders"]["nodes"]}
    expected = {o.name for o in store.shop.orders.values() if o.email == email}
    assert names == set(sorted(expected)[:5]) and names
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] >= cost["actualQueryCost"] > 0
    assert cost["throttleStatus"]["maximumAvailable"] == 2000

    nobody = await store.gql(SEARCH, {"q": "email:nobody@example.com"})
    assert nobody["data"]["orders"]["nodes"] == []


async def test_unknown_search_field_warns_like_shopify(store: Store) -> None:
    answer = await store.gql('{ orders(first: 2, query: "emial:x@y.z") { nodes { id } } }')
    assert len(answer["data"]["orders"]["nodes"]) == 2
    assert answer["extensions"]["search"][0]["warnings"][0]["field"] == "emial"


async def test_invalid_documents_answer_errors_without_data(store: Store) -> None:
    unknown = await store.gql('{ order(id: "gid://shopify/Order/1") { id refundableAmount } }')
    assert "data" not in unknown
    assert any("refundableAmount" in e["message"] for e in unknown["errors"])
    missing_argument = await store.gql('mutation { orderCancel(orderId: "x") { job { id } } }')
    assert "data" not in missing_argument and missing_argument["errors"]
    syntax = await store.gql("query {")
    assert "data" not in syntax and syntax["errors"]
    no_first = await store.gql('{ orders(query: "name:#1001") { nodes { id } } }')
    assert no_first["data"] is None
    assert "first or last" in no_first["errors"][0]["message"]


async def test_bad_or_missing_token_is_401(store: Store) -> None:
    url = f"{store.base}/admin/api/2026-10/graphql.json"
    body = {"query": "{ shop { name myshopifyDomain } }"}
    wrong = await store.http.post(url, json=body, headers={"X-Shopify-Access-Token": "nope"})
    assert wrong.status_code == 401
    assert "Invalid API key or access token" in wrong.json()["errors"]
    assert (await store.http.post(url, json=body)).status_code == 401
    ok = await store.http.post(url, json=body, headers={"X-Shopify-Access-Token": TOKEN})
    assert ok.json()["data"]["shop"]["myshopifyDomain"] == SHOP


# --- refunds ------------------------------------------------------------------------------


async def _refund(
    store: Store,
    order: Order,
    suggestion_vars: dict[str, Any],
    key: str,
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    suggested = (await store.gql(SUGGEST, {"id": order.gid, **suggestion_vars}))["data"]["order"][
        "suggestedRefund"
    ]
    transactions = [
        {
            "orderId": order.gid,
            "parentId": t["parentTransaction"]["id"],
            "amount": t["amountSet"]["shopMoney"]["amount"],
            "gateway": t["gateway"],
            "kind": "REFUND",
        }
        for t in suggested["suggestedTransactions"]
    ]
    refund_input = {
        "orderId": order.gid,
        "notify": True,
        "transactions": transactions,
        "refundLineItems": lines or [],
    }
    return (await store.gql(REFUND, {"input": refund_input, "key": key}))["data"]["refundCreate"]


async def test_full_refund(store: Store) -> None:
    order = store.pick(fulfilled=False)
    total = str(order.total_price)
    result = await _refund(store, order, {"full": True}, "full-1")
    assert result["userErrors"] == []
    assert result["refund"]["totalRefundedSet"]["shopMoney"]["amount"] == total
    after = await store.order(order)
    assert after["displayFinancialStatus"] == "REFUNDED"
    assert after["totalRefundedSet"]["shopMoney"]["amount"] == total
    refund_tx = [t for t in after["transactions"] if t["kind"] == "REFUND"]
    assert refund_tx[0]["parentTransaction"]["id"] == after["transactions"][0]["id"]
    [entry] = store.ledger("refund")
    assert entry["amount"] == total and entry["idempotency_key"] == "full-1"


async def test_partial_refund_by_line_items(store: Store) -> None:
    order = store.pick(fulfilled=False)
    line = order.line_items[0]
    lines = [
        {"lineItemId": f"gid://shopify/LineItem/{line.id}", "quantity": 1, "restockType": "CANCEL"}
    ]
    suggestion = (await store.gql(SUGGEST, {"id": order.gid, "lines": lines}))["data"]["order"][
        "suggestedRefund"
    ]
    assert suggestion["amountSet"]["shopMoney"]["amount"] == str(line.unit_price)
    result = await _refund(store, order, {"lines": lines}, "lines-1", lines)
    assert result["userErrors"] == []
    after = await store.order(order)
    assert after["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    node = next(n for n in after["lineItems"]["nodes"] if n["id"].endswith(f"/{line.id}"))
    assert node["refundableQuantity"] == line.quantity - 1 == node["currentQuantity"]
    assert store.ledger("refund")[0]["line_items"] == [
        {"line_item_id": lines[0]["lineItemId"], "quantity": 1}
    ]


async def test_partial_refund_by_amount_and_over_refund_refused(store: Store) -> None:
    order = store.pick(fulfilled=True)
    sale = order.sale()
    assert sale is not None
    tx = {
        "orderId": order.gid,
        "parentId": f"gid://shopify/OrderTransaction/{sale.id}",
        "gateway": sale.gateway,
        "kind": "REFUND",
    }
    ten = await store.gql(
        REFUND,
        {
            "input": {"orderId": order.gid, "transactions": [{**tx, "amount": "10.00"}]},
            "key": "amount-1",
        },
    )
    assert ten["data"]["refundCreate"]["userErrors"] == []
    after = await store.order(order)
    assert after["totalRefundedSet"]["shopMoney"]["amount"] == "10.00"
    assert after["displayFinancialStatus"] == "PARTIALLY_REFUNDED"

    left = order.refundable
    too_much = await store.gql(
        REFUND,
        {
            "input": {"orderId": order.gid, "transactions": [{**tx, "amount": str(left + 1)}]},
            "key": "amount-2",
        },
    )
    refused = too_much["data"]["refundCreate"]
    assert refused["refund"] is None
    assert refused["userErrors"][0]["field"] == ["transactions"]
    assert "greater than the refundable" in refused["userErrors"][0]["message"]
    assert len(store.ledger("refund")) == 1 and order.refundable == left

    bad_line = [{"lineItemId": f"gid://shopify/LineItem/{order.line_items[0].id}", "quantity": 99}]
    refused = (
        await store.gql(
            REFUND,
            {"input": {"orderId": order.gid, "refundLineItems": bad_line}, "key": "amount-3"},
        )
    )["data"]["refundCreate"]
    assert refused["userErrors"][0]["field"] == ["refundLineItems", "0", "quantity"]


async def test_same_idempotency_key_refunds_once(store: Store) -> None:
    order = store.pick(fulfilled=False)
    sale = order.sale()
    assert sale is not None
    refund_input = {
        "orderId": order.gid,
        "transactions": [
            {
                "orderId": order.gid,
                "parentId": f"gid://shopify/OrderTransaction/{sale.id}",
                "gateway": sale.gateway,
                "kind": "REFUND",
                "amount": "5.00",
            }
        ],
    }
    first = await store.gql(REFUND, {"input": refund_input, "key": "action-42"})
    second = await store.gql(REFUND, {"input": refund_input, "key": "action-42"})
    assert (
        first["data"]["refundCreate"]["refund"]["id"]
        == second["data"]["refundCreate"]["refund"]["id"]
    )
    assert len(store.ledger("refund")) == 1 and order.refunded == 5

    changed = {**refund_input, "note": "different"}
    mismatch = await store.gql(REFUND, {"input": changed, "key": "action-42"})
    assert mismatch["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    without_key = await store.gql(
        "mutation($input: RefundInput!) { refundCreate(input: $input) { refund { id } } }",
        {"input": refund_input},
    )
    assert without_key["data"]["refundCreate"] is None
    assert "@idempotent" in without_key["errors"][0]["message"]
    assert len(store.ledger("refund")) == 1


# --- cancel, address, edits, returns -------------------------------------------------------


async def test_cancel_unfulfilled_through_a_job_then_refuse_again(store: Store) -> None:
    order = store.pick(fulfilled=False)
    total = str(order.total_price)
    answer = (await store.gql(CANCEL, {"id": order.gid}))["data"]["orderCancel"]
    assert answer["orderCancelUserErrors"] == []
    job = answer["job"]
    assert job["id"].startswith("gid://shopify/Job/") and job["done"] is False
    for _ in range(100):
        job = (await store.gql(JOB, {"id": job["id"]}))["data"]["job"]
        if job["done"]:
            break
        await asyncio.sleep(0.02)
    assert job["done"] is True
    after = await store.order(order)
    assert after["cancelledAt"] is not None
    assert after["displayFinancialStatus"] == "REFUNDED"
    assert after["currentTotalPriceSet"]["shopMoney"]["amount"] == "0.00"
    [entry] = store.ledger("cancel")
    assert entry["refunded"] == total and entry["reason"] == "CUSTOMER"

    again = (await store.gql(CANCEL, {"id": order.gid}))["data"]["orderCancel"]
    assert again["job"] is None
    assert again["orderCancelUserErrors"] == [
        {"field": ["orderId"], "message": "Order has already been cancelled", "code": "INVALID"}
    ]
    assert len(store.ledger("cancel")) == 1


async def test_cancel_after_fulfilment_is_refused(store: Store) -> None:
    order = store.pick(fulfilled=True)
    answer = (await store.gql(CANCEL, {"id": order.gid}))["data"]["orderCancel"]
    assert answer["job"] is None
    assert "fulfillments" in answer["orderCancelUserErrors"][0]["message"]
    assert order.cancelled_at is None and store.ledger("cancel") == []


async def test_address_change_before_and_after_fulfilment(store: Store) -> None:
    order = store.pick(fulfilled=False)
    address = {
        "address1": "1 New Road", "address2": "Unit 4", "city": "Austin", "company": None,
        "countryCode": "US", "firstName": "Ava", "lastName": "Patel", "phone": None,
        "provinceCode": "TX", "zip": "73301",
    }  # fmt: skip
    answer = (await store.gql(UPDATE, {"input": {"id": order.gid, "shippingAddress": address}}))[
        "data"
    ]["orderUpdate"]
    assert answer["userErrors"] == []
    assert answer["order"]["shippingAddress"] == {
        "address1": "1 New Road",
        "city": "Austin",
        "zip": "73301",
        "countryCodeV2": "US",
    }
    assert store.ledger("order_update")[0]["shipping_address"]["address1"] == "1 New Road"

    store.shop.fulfil(order.id)
    refused = (
        await store.gql(
            UPDATE,
            {"input": {"id": order.gid, "shippingAddress": {**address, "address1": "2 Late Road"}}},
        )
    )["data"]["orderUpdate"]
    assert refused["order"] is None
    assert refused["userErrors"][0]["field"] == ["shippingAddress"]
    assert (await store.order(order))["shippingAddress"]["address1"] == "1 New Road"


async def test_order_edit_replaces_an_unfulfilled_line(store: Store) -> None:
    order = store.pick(fulfilled=False)
    old = order.line_items[0]
    assert old.variant is not None
    replacement = next(v for v in store.shop.variants.values() if v.id != old.variant.id)
    begin = (await store.gql(
        "mutation($id: ID!) { orderEditBegin(id: $id) { calculatedOrder { id lineItems(first: 50) { nodes { id quantity variant { id } } } } userErrors { field message } } }",
        {"id": order.gid},
    ))["data"]["orderEditBegin"]  # fmt: skip
    assert begin["userErrors"] == []
    calculated = begin["calculatedOrder"]
    line_id = next(
        n["id"] for n in calculated["lineItems"]["nodes"] if n["id"].endswith(f"/{old.id}")
    )
    removed = (await store.gql(
        "mutation($id: ID!, $line: ID!) { orderEditSetQuantity(id: $id, lineItemId: $line, quantity: 0, restock: true) { calculatedLineItem { id quantity } userErrors { field message } } }",
        {"id": calculated["id"], "line": line_id},
    ))["data"]["orderEditSetQuantity"]  # fmt: skip
    assert removed["userErrors"] == [] and removed["calculatedLineItem"]["quantity"] == 0
    added = (await store.gql(
        "mutation($id: ID!, $v: ID!) { orderEditAddVariant(id: $id, variantId: $v, quantity: 1) { calculatedLineItem { id } userErrors { field message } } }",
        {"id": calculated["id"], "v": f"gid://shopify/ProductVariant/{replacement.id}"},
    ))["data"]["orderEditAddVariant"]  # fmt: skip
    assert added["userErrors"] == []
    committed = (await store.gql(
        "mutation($id: ID!) { orderEditCommit(id: $id, notifyCustomer: true, staffNote: \"swap\") { order { id } userErrors { field message } } }",
        {"id": calculated["id"]},
    ))["data"]["orderEditCommit"]  # fmt: skip
    assert committed == {"order": {"id": order.gid}, "userErrors": []}

    after = await store.order(order)
    by_id = {n["id"]: n for n in after["lineItems"]["nodes"]}
    assert by_id[f"gid://shopify/LineItem/{old.id}"]["currentQuantity"] == 0
    new = [
        n
        for n in after["lineItems"]["nodes"]
        if n["variant"]["id"].endswith(f"/{replacement.id}") and n["currentQuantity"] == 1
    ]
    assert new, after["lineItems"]
    [entry] = store.ledger("order_edit")
    assert len(entry["changes"]) == 2

    again = (await store.gql(
        "mutation($id: ID!) { orderEditCommit(id: $id) { order { id } userErrors { field message } } }",
        {"id": calculated["id"]},
    ))["data"]["orderEditCommit"]  # fmt: skip
    assert again["order"] is None and "already been committed" in again["userErrors"][0]["message"]


async def test_order_edit_cannot_drop_fulfilled_units(store: Store) -> None:
    order = store.pick(fulfilled=True)
    line = order.line_items[0]
    begin = (
        await store.gql(
            "mutation($id: ID!) { orderEditBegin(id: $id) { calculatedOrder { id } userErrors { message } } }",
            {"id": order.gid},
        )
    )["data"]["orderEditBegin"]
    refused = (await store.gql(
        "mutation($id: ID!, $line: ID!) { orderEditSetQuantity(id: $id, lineItemId: $line, quantity: 0) { calculatedOrder { id } userErrors { field message } } }",
        {"id": begin["calculatedOrder"]["id"], "line": f"gid://shopify/CalculatedLineItem/{line.id}"},
    ))["data"]["orderEditSetQuantity"]  # fmt: skip
    assert refused["userErrors"][0]["field"] == ["quantity"]


async def test_return_with_exchange_for_a_fulfilled_line(store: Store) -> None:
    order = store.pick(fulfilled=True)
    fulfilled = await store.order(order)
    fulfillment_line = fulfilled["fulfillments"][0]["fulfillmentLineItems"]["nodes"][0]
    variant = next(iter(store.shop.variants.values()))
    create = """
    mutation($input: ReturnInput!) {
      returnCreate(returnInput: $input) {
        return { id name status exchangeLineItems(first: 5) { nodes { variantId quantity } }
                 returnLineItems(first: 5) { nodes { ... on ReturnLineItem { quantity fulfillmentLineItem { id } } } } }
        userErrors { field message code }
      }
    }"""
    answer = (await store.gql(create, {"input": {
        "orderId": order.gid,
        "returnLineItems": [{"fulfillmentLineItemId": fulfillment_line["id"], "quantity": 1, "returnReasonNote": "wrong size"}],
        "exchangeLineItems": [{"variantId": f"gid://shopify/ProductVariant/{variant.id}", "quantity": 1}],
    }}))["data"]["returnCreate"]  # fmt: skip
    assert answer["userErrors"] == []
    created = answer["return"]
    assert created["status"] == "OPEN" and created["name"] == f"{order.name}-R1"
    assert created["exchangeLineItems"]["nodes"] == [
        {"variantId": f"gid://shopify/ProductVariant/{variant.id}", "quantity": 1}
    ]
    assert (
        created["returnLineItems"]["nodes"][0]["fulfillmentLineItem"]["id"]
        == fulfillment_line["id"]
    )
    [entry] = store.ledger("return")
    assert entry["exchange_line_items"][0]["quantity"] == 1

    too_many = (await store.gql(create, {"input": {
        "orderId": order.gid,
        "returnLineItems": [{"fulfillmentLineItemId": fulfillment_line["id"], "quantity": 99}],
    }}))["data"]["returnCreate"]  # fmt: skip
    assert too_many["return"] is None and too_many["userErrors"][0]["code"] == "INVALID"


async def test_ledger_over_http(store: Store) -> None:
    order = store.pick(fulfilled=False)
    await _refund(store, order, {"full": True}, "ledger-1")
    ledger = (await store.http.get(f"{store.base}/_sandbox/ledger")).json()
    assert [e["type"] for e in ledger] == ["refund"]
    assert ledger[0]["order"] == order.name and ledger[0]["idempotency_key"] == "ledger-1"


# --- cost ---------------------------------------------------------------------------------


async def test_throttled_when_the_bucket_is_empty_then_recovers() -> None:
    sandbox, _ = make_sandbox(bucket_size=20, restore_rate=10)
    query = "{ orders(first: 10) { nodes { id } } }"  # requested 12: 2 + 10 nodes
    async with serving(sandbox) as url, httpx.AsyncClient() as http:
        store = Store(sandbox, sandbox.shop(SHOP), f"{url}/shops/{SHOP}", http)
        first = await store.gql(query)
        assert first["extensions"]["cost"]["requestedQueryCost"] == 12
        assert len(first["data"]["orders"]["nodes"]) == 10
        throttled = await store.gql(query)
        assert "data" not in throttled
        assert throttled["errors"] == [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ]
        status = throttled["extensions"]["cost"]["throttleStatus"]
        assert status["currentlyAvailable"] < 12 and status["restoreRate"] == 10
        await asyncio.sleep((12 - status["currentlyAvailable"]) / 10 + 0.2)
        recovered = await store.gql(query)
        assert len(recovered["data"]["orders"]["nodes"]) == 10


async def test_a_query_too_expensive_for_any_bucket_is_refused(store: Store) -> None:
    answer = await store.gql(
        "{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }"
    )
    assert answer["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


# --- OAuth --------------------------------------------------------------------------------


async def test_oauth_code_for_a_token_once() -> None:
    sandbox = ShopifySandbox()
    sandbox.state.register_app(API_KEY, SECRET)
    sandbox.add_shop(SHOP)  # not installed yet
    async with serving(sandbox) as url, httpx.AsyncClient() as http:
        base = f"{url}/shops/{SHOP}"
        redirect = await http.get(
            f"{base}/admin/oauth/authorize",
            params={
                "client_id": API_KEY,
                "scope": "read_orders,write_orders",
                "redirect_uri": "https://app.example/shopify/callback",
                "state": "nonce-1",
            },
        )
        assert redirect.status_code == 302
        location = urlsplit(redirect.headers["location"])
        assert (
            f"{location.scheme}://{location.netloc}{location.path}"
            == "https://app.example/shopify/callback"
        )
        params = dict(parse_qsl(location.query))
        assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
        assert params["shop"] == SHOP and params["state"] == "nonce-1"
        message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
        expected = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(params["hmac"], expected)

        grant = {"client_id": API_KEY, "client_secret": SECRET, "code": params["code"]}
        token = await http.post(f"{base}/admin/oauth/access_token", json=grant)
        assert token.status_code == 200
        assert token.json()["scope"] == "read_orders,write_orders"
        access = token.json()["access_token"]
        answer = await http.post(
            f"{base}/admin/api/2026-10/graphql.json",
            json={"query": "{ orders(first: 1) { nodes { name } } }"},
            headers={"X-Shopify-Access-Token": access},
        )
        assert answer.json()["data"]["orders"]["nodes"] == [{"name": "#1001"}]

        reused = await http.post(f"{base}/admin/oauth/access_token", json=grant)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_request"
        wrong_secret = await http.post(
            f"{base}/admin/oauth/access_token", json={**grant, "client_secret": "x"}
        )
        assert wrong_secret.status_code == 401

        # The token carries the scopes asked for: no order edits without write_order_edits.
        denied = await http.post(
            f"{base}/admin/api/2026-10/graphql.json",
            json={
                "query": 'mutation { orderEditBegin(id: "gid://shopify/Order/1") { userErrors { message } } }'
            },
            headers={"X-Shopify-Access-Token": access},
        )
        assert denied.json()["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"

        unknown_app = await http.get(
            f"{base}/admin/oauth/authorize",
            params={"client_id": "who", "redirect_uri": "https://x.example/cb"},
        )
        assert unknown_app.status_code == 400
