"""Webhook payloads in Shopify's REST shape, and their signed, asynchronous delivery.

Shopify sends each event in the background, signs the raw body with the app's secret
(`X-Shopify-Hmac-Sha256`, base64 HMAC-SHA256) and retries a delivery that does not get
a 2xx; every attempt of one event carries the same `X-Shopify-Event-Id`, which is what
a receiver deduplicates on. Tests `await dispatcher.settle()` to see deliveries land.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.shopify.schema import API_VERSION
from sandbox.shopify.state import Event, Order, Shop, ShopifyState, iso

COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if address is None:
        return None
    first, last = address.get("firstName"), address.get("lastName")
    return {
        "first_name": first,
        "last_name": last,
        "name": " ".join(x for x in (first, last) if x),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "province_code": address.get("provinceCode"),
        "zip": address.get("zip"),
        "country": address.get("country"),
        "country_code": address.get("countryCodeV2"),
        "phone": address.get("phone"),
    }


def _fulfillment_status(order: Order) -> str | None:
    # The REST field: null while nothing has shipped, "partial", or "fulfilled".
    return {"UNFULFILLED": None, "PARTIALLY_FULFILLED": "partial", "FULFILLED": "fulfilled"}[
        order.fulfillment_status
    ]


def order_payload(shop: Shop, order: Order) -> dict[str, Any]:
    """The order as `orders/*` webhooks carry it (REST Admin API representation)."""
    customer = order.customer
    return {
        "id": order.id,
        "admin_graphql_api_id": order.gid,
        "name": order.name,
        "order_number": order.number,
        "number": order.number - 1000,
        "email": order.email,
        "contact_email": order.email,
        "phone": order.phone,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at or order.created_at),
        "processed_at": iso(order.created_at),
        "cancelled_at": iso(order.cancelled_at),
        "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
        "closed_at": iso(order.cancelled_at),
        "financial_status": order.financial_status.lower(),
        "fulfillment_status": _fulfillment_status(order),
        "currency": order.currency,
        "presentment_currency": order.currency,
        "total_price": str(order.total_price),
        "current_total_price": str(order.current_total),
        "subtotal_price": str(order.total_price - order.shipping_price),
        "current_subtotal_price": str(order.current_subtotal),
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "total_outstanding": str(order.outstanding),
        "note": order.note,
        "tags": ", ".join(order.tags),
        "test": False,
        "customer": None
        if customer is None
        else {
            "id": customer.id,
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer.id}",
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "phone": customer.phone,
        },
        "shipping_address": _address(order.shipping_address),
        "billing_address": _address(order.shipping_address),
        "line_items": [
            {
                "id": item.id,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{item.id}",
                "title": item.title,
                "name": item.title
                if item.variant is None or item.variant.title == "Default Title"
                else f"{item.title} - {item.variant.title}",
                "sku": item.sku,
                "variant_id": None if item.variant is None else item.variant.id,
                "product_id": None if item.variant is None else item.variant.product_id,
                "variant_title": None if item.variant is None else item.variant.title,
                "quantity": item.quantity - item.removed,
                "current_quantity": order.current_quantity(item),
                "fulfillable_quantity": 0 if order.cancelled_at else item.unfulfilled_quantity,
                "fulfillment_status": "fulfilled"
                if item.fulfilled and not item.unfulfilled_quantity
                else ("partial" if item.fulfilled else None),
                "price": str(item.unit_price),
                "requires_shipping": True,
                "taxable": True,
                "gift_card": False,
            }
            for item in order.line_items
        ],
        "fulfillments": [
            {
                "id": f.id,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{f.id}",
                "status": "success",
                "tracking_company": f.tracking_company,
                "tracking_number": f.tracking_number,
                "created_at": iso(f.created_at),
                "line_items": [{"id": x.line_item_id, "quantity": x.quantity} for x in f.lines],
            }
            for f in order.fulfillments
        ],
        "refunds": [
            {
                "id": r.id,
                "admin_graphql_api_id": f"gid://shopify/Refund/{r.id}",
                "created_at": iso(r.created_at),
                "note": r.note,
                "refund_line_items": [
                    {
                        "line_item_id": x.line_item_id,
                        "quantity": x.quantity,
                        "restock_type": x.restock_type.lower(),
                        "subtotal": str(x.subtotal),
                    }
                    for x in r.lines
                ],
                "transactions": [
                    {
                        "id": t.id,
                        "kind": "refund",
                        "status": "success",
                        "gateway": t.gateway,
                        "amount": str(t.amount),
                        "parent_id": t.parent_id,
                    }
                    for t in r.transactions
                ],
            }
            for r in order.refunds
        ],
        "shipping_lines": [
            {"title": "Standard", "price": str(order.shipping_price), "code": "STANDARD"}
        ]
        if order.shipping_price
        else [],
        "payment_gateway_names": sorted({t.gateway for t in order.transactions}),
        "order_status_url": f"https://{shop.domain}/orders/{order.id}/authenticate",
    }


def shop_payload(shop: Shop) -> dict[str, Any]:
    """The shop as `app/uninstalled` carries it."""
    return {
        "id": shop.id,
        "name": shop.name,
        "email": shop.email,
        "domain": shop.domain,
        "myshopify_domain": shop.domain,
        "currency": shop.currency,
    }


def compliance_payload(shop: Shop, topic: str, customer_email: str | None = None) -> dict[str, Any]:
    """The bodies of the three mandatory compliance topics, for one customer or the shop."""
    base: dict[str, Any] = {"shop_id": shop.id, "shop_domain": shop.domain}
    if topic == "shop/redact":
        return base
    orders = [o for o in shop.orders.values() if customer_email and o.email == customer_email]
    customer = next((o.customer for o in orders if o.customer is not None), None)
    who = {
        "id": None if customer is None else customer.id,
        "email": customer_email,
        "phone": None if customer is None else customer.phone,
    }
    if topic == "customers/data_request":
        return {
            **base,
            "orders_requested": [o.id for o in orders],
            "customer": who,
            "data_request": {
                "id": int(
                    hashlib.sha256(f"{shop.domain}:{customer_email}".encode()).hexdigest()[:8], 16
                )
            },
        }
    if topic == "customers/redact":
        return {**base, "customer": who, "orders_to_redact": [o.id for o in orders]}
    raise ValueError(f"{topic} is not a compliance topic")


@dataclass
class Delivery:
    """One HTTP attempt, as the receiver saw it (for tests)."""

    event: Event
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class WebhookDispatcher:
    """Delivers the state's outbox from the running event loop, in the background."""

    state: ShopifyState
    attempts: int = 3  # Shopify retries for hours; a sandbox gives up sooner
    backoff: float = 0.2
    timeout: float = 5.0  # Shopify waits about this long for an answer
    deliveries: list[Delivery] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        self.state.on_emit = self.pump

    def pump(self) -> None:
        """Start a delivery task for everything queued; a no-op outside an event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # settle() picks the outbox up later
        while self.state.outbox:
            event = self.state.outbox.pop(0)
            task = loop.create_task(self._deliver(self._prepare(event)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _prepare(event: Event) -> Delivery:
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": event.topic,
            "X-Shopify-Shop-Domain": event.shop,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event.event_id,
            "X-Shopify-Triggered-At": iso(event.triggered_at) or "",
            "X-Shopify-Hmac-Sha256": sign(body, event.secret),
        }
        return Delivery(event, headers["X-Shopify-Webhook-Id"], body, headers)

    async def _deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            try:
                answer = await self._client.post(
                    delivery.event.url, content=delivery.body, headers=delivery.headers
                )
                delivery.status, delivery.error = answer.status_code, None
                if answer.is_success:
                    return
            except httpx.HTTPError as exc:
                delivery.status, delivery.error = None, f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(self.backoff * attempt)

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Send the same event again, as Shopify may: same event id, new webhook id."""
        again = self._prepare(delivery.event)
        await self._deliver(again)
        return again

    async def settle(self) -> None:
        """Wait until everything queued so far has been delivered (or given up on)."""
        self.pump()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            self.pump()

    async def aclose(self) -> None:
        await self.settle()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def send_compliance(
    state: ShopifyState,
    shop: Shop,
    topic: str,
    *,
    api_key: str,
    customer_email: str | None = None,
    url: str | None = None,
) -> Event:
    """Queue a compliance webhook to the app's compliance URL (or `url`)."""
    app = state.apps[api_key]
    target = url or app.compliance_url
    if target is None:
        raise ValueError(f"app {api_key} has no compliance URL; pass url=")
    return state.emit_to(
        shop, topic, compliance_payload(shop, topic, customer_email), target, app.secret
    )
