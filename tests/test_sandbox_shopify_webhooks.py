"""The Shopify sandbox's webhooks reach a real HTTP receiver, signed as Shopify signs them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from sandbox.shopify.server import ShopifySandbox, serving
from sandbox.shopify.webhooks import send_compliance

SHOP = "hooks-shop.myshopify.com"
API_KEY, SECRET, TOKEN = "hook-app", "hook-secret", "shpat_hooks"
SUBSCRIBE = """
mutation($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: { uri: $uri, format: JSON }) {
    webhookSubscription { id topic uri endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } }
    userErrors { field message }
  }
}"""


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def topic(self) -> str:
        return self.headers["x-shopify-topic"]

    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests, to see the retry


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    app = FastAPI()
    box = Receiver("")

    @app.post("/hooks")
    async def hooks(request: Request) -> Response:
        box.received.append(Received(dict(request.headers), await request.body()))
        if box.fail_first:
            box.fail_first -= 1
            return Response(status_code=500)
        return Response(status_code=200)

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surfaces the bind error
        await asyncio.sleep(0.02)
    box.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/hooks"
    try:
        yield box
    finally:
        server.should_exit = True
        await task


def signed_by_app(item: Received) -> bool:
    digest = hmac.new(SECRET.encode(), item.body, hashlib.sha256).digest()
    return hmac.compare_digest(
        item.headers["x-shopify-hmac-sha256"], base64.b64encode(digest).decode()
    )


@pytest.fixture
async def wired() -> AsyncIterator[tuple[ShopifySandbox, Receiver, httpx.AsyncClient, str]]:
    sandbox = ShopifySandbox()
    sandbox.state.register_app(API_KEY, SECRET)
    sandbox.add_shop(SHOP, api_key=API_KEY, token=TOKEN)
    sandbox.dispatcher.backoff = 0.01
    async with receiver() as box, serving(sandbox) as url, httpx.AsyncClient() as http:
        yield sandbox, box, http, f"{url}/shops/{SHOP}/admin/api/2026-10/graphql.json"


async def _gql(
    http: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    answer = await http.post(
        url,
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": TOKEN},
    )
    return answer.json()


async def test_order_changes_arrive_signed_with_shopify_headers(wired: Any) -> None:
    sandbox, box, http, url = wired
    for topic in ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED"):
        created = (await _gql(http, url, SUBSCRIBE, {"topic": topic, "uri": box.url}))["data"][
            "webhookSubscriptionCreate"
        ]
        assert created["userErrors"] == []
        assert created["webhookSubscription"]["endpoint"] == {
            "__typename": "WebhookHttpEndpoint",
            "callbackUrl": box.url,
        }
    duplicate = (await _gql(http, url, SUBSCRIBE, {"topic": "ORDERS_CREATE", "uri": box.url}))[
        "data"
    ]["webhookSubscriptionCreate"]
    assert duplicate["userErrors"]

    order = sandbox.create_order(SHOP, email="new.buyer@example.com")
    await sandbox.dispatcher.settle()
    [created] = box.received
    assert created.topic == "orders/create"
    assert signed_by_app(created)
    assert created.headers["x-shopify-shop-domain"] == SHOP
    assert created.headers["x-shopify-api-version"] == "2026-10"
    assert created.headers["x-shopify-webhook-id"] and created.headers["x-shopify-event-id"]
    assert created.headers["x-shopify-triggered-at"].endswith("Z")
    payload = created.payload()
    assert payload["id"] == order.id and isinstance(payload["id"], int)
    assert payload["admin_graphql_api_id"] == order.gid
    assert payload["name"] == order.name and payload["email"] == "new.buyer@example.com"
    assert payload["financial_status"] == "paid" and payload["fulfillment_status"] is None
    assert payload["total_price"] == str(order.total_price) and payload["currency"] == "USD"
    assert payload["line_items"][0]["variant_id"] == order.line_items[0].variant.id

    cancel = "mutation($id: ID!) { orderCancel(orderId: $id, reason: CUSTOMER, restock: true, refundMethod: { originalPaymentMethodsRefund: true }) { job { id } orderCancelUserErrors { message } } }"
    answer = await _gql(http, url, cancel, {"id": order.gid})
    assert answer["data"]["orderCancel"]["orderCancelUserErrors"] == []
    for _ in range(100):  # the job finishes by itself, without anyone polling it
        if len(box.received) >= 3:
            break
        await asyncio.sleep(0.02)
    await sandbox.dispatcher.settle()
    topics = [r.topic for r in box.received]
    assert topics == ["orders/create", "orders/cancelled", "orders/updated"]
    cancelled = box.received[1]
    assert signed_by_app(cancelled)
    assert cancelled.payload()["cancelled_at"] is not None
    assert cancelled.payload()["financial_status"] == "refunded"
    # Each topic is its own event: a receiver deduplicating on the event id keeps both.
    assert cancelled.headers["x-shopify-event-id"] != box.received[2].headers["x-shopify-event-id"]


async def test_failed_delivery_is_retried_with_the_same_event_id(wired: Any) -> None:
    sandbox, box, http, url = wired
    await _gql(http, url, SUBSCRIBE, {"topic": "ORDERS_CREATE", "uri": box.url})
    box.fail_first = 1
    sandbox.create_order(SHOP)
    await sandbox.dispatcher.settle()
    first, second = box.received
    assert first.headers["x-shopify-event-id"] == second.headers["x-shopify-event-id"]
    [delivery] = sandbox.dispatcher.deliveries
    assert delivery.status == 200 and delivery.attempts == 2

    again = await sandbox.dispatcher.redeliver(delivery)
    assert box.received[-1].headers["x-shopify-event-id"] == first.headers["x-shopify-event-id"]
    assert again.webhook_id != delivery.webhook_id


async def test_compliance_topics_and_uninstall(wired: Any) -> None:
    sandbox, box, http, url = wired
    shop = sandbox.shop(SHOP)
    await _gql(http, url, SUBSCRIBE, {"topic": "APP_UNINSTALLED", "uri": box.url})
    email = next(o.email for o in shop.orders.values())
    for topic in ("customers/data_request", "customers/redact", "shop/redact"):
        send_compliance(
            sandbox.state, shop, topic, api_key=API_KEY, customer_email=email, url=box.url
        )
    await sandbox.dispatcher.settle()
    request, redact, shop_redact = (r.payload() for r in box.received)
    assert all(signed_by_app(r) for r in box.received)
    mine = sorted(o.id for o in shop.orders.values() if o.email == email)
    assert request["shop_domain"] == SHOP and request["shop_id"] == shop.id
    assert request["customer"]["email"] == email and sorted(request["orders_requested"]) == mine
    assert "id" in request["data_request"]
    assert sorted(redact["orders_to_redact"]) == mine and redact["customer"]["email"] == email
    assert shop_redact == {"shop_id": shop.id, "shop_domain": SHOP}

    sandbox.state.uninstall(shop, API_KEY)
    await sandbox.dispatcher.settle()
    uninstalled = box.received[-1]
    assert uninstalled.topic == "app/uninstalled" and signed_by_app(uninstalled)
    assert uninstalled.payload()["myshopify_domain"] == SHOP
    revoked = await http.post(
        url, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": TOKEN}
    )
    assert revoked.status_code == 401
