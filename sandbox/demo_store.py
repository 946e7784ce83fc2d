"""An in-process stand-in for a Shopify store: orders, refunds, cancellations, edits.

Speaks a small JSON API (the Shopify issue replaces it with an Admin GraphQL
server). It keeps what Shopify keeps for our purposes: idempotency keys, so a
retried refund returns the first result instead of refunding twice, and the
rules that make Shopify refuse an action (over-refund, cancelling a shipped
order). Tests read its ledger to count what really happened.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import JSONResponse

DEMO_SHOP = "demo-store.myshopify.com"
_PRODUCTS = [
    ("Linen Shirt", Decimal("49.00")),
    ("Canvas Tote", Decimal("24.50")),
    ("Wool Beanie", Decimal("19.90")),
    ("Ceramic Mug", Decimal("14.00")),
    ("Leather Wallet", Decimal("59.00")),
    ("Running Socks (3 pack)", Decimal("12.99")),
]
_FIRST = ["Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Isla", "Leo", "Mia", "Omar"]
_LAST = ["Patel", "Garcia", "Smith", "Okafor", "Rossi", "Kim", "Novak", "Silva"]


class StoreError(Exception):
    """Shopify would answer with userErrors."""


@dataclass
class Store:
    shop_domain: str
    access_token: str
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)  # every effect, in order
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> result
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: float = 0.0  # seconds each action takes, to widen windows in crash tests
    requests: int = 0  # action requests received, done or not

    def perform(
        self, number: str, action: str, payload: dict[str, Any], key: str
    ) -> dict[str, Any]:
        with self.lock:
            if key in self.outcomes:
                return self.outcomes[key]
            order = self.orders.get(number)
            if order is None:
                raise StoreError(f"order {number} not found")
            outcome = getattr(self, f"_{action.lower()}")(order, payload)
            self.ledger.append({"action": action, "order": order["name"], "key": key, **outcome})
            self.outcomes[key] = outcome
            return outcome

    def _refund(self, order: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        refundable = Decimal(order["refundable"])
        amount = Decimal(str(payload.get("amount", refundable)))
        if amount <= 0:
            raise StoreError("refund amount must be positive")
        if amount > refundable:
            raise StoreError(f"refund {amount} exceeds the refundable {refundable}")
        order["refundable"] = str(refundable - amount)
        order["financial_status"] = "REFUNDED" if refundable == amount else "PARTIALLY_REFUNDED"
        return {"reference": f"gid://shopify/Refund/{len(self.ledger) + 1}", "amount": str(amount)}

    def _cancel(self, order: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        if order["cancelled"]:
            raise StoreError("order is already cancelled")
        if order["fulfillment_status"] != "UNFULFILLED":
            raise StoreError("a fulfilled order cannot be cancelled")
        order["cancelled"] = True
        order["financial_status"] = "REFUNDED"
        order["refundable"] = "0"
        return {"reference": f"gid://shopify/Job/{len(self.ledger) + 1}"}

    def _address_change(self, order: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        if order["fulfillment_status"] != "UNFULFILLED":
            raise StoreError("the order has shipped; its address can no longer change")
        address = payload.get("address")
        if not isinstance(address, dict) or not address.get("address1"):
            raise StoreError("a full shipping address is required")
        order["shipping_address"] = address
        return {"reference": order["id"]}

    def _replace_item(self, order: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        line_id = payload.get("line_item_id")
        if not any(item["id"] == line_id for item in order["line_items"]):
            raise StoreError(f"line item {line_id} is not on this order")
        return {"reference": f"gid://shopify/OrderEdit/{len(self.ledger) + 1}"}

    def _info_request(self, order: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        return {"reference": None}

    _none = _info_request


def seed_orders(count: int = 50, seed: int = 7) -> dict[str, dict[str, Any]]:
    """A deterministic mix of paid, shipped, refunded and cancelled orders."""
    rng = random.Random(seed)
    orders: dict[str, dict[str, Any]] = {}
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for index in range(count):
        number = str(1001 + index)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        items = []
        for line in range(rng.randint(1, 3)):
            title, price = rng.choice(_PRODUCTS)
            items.append(
                {
                    "id": f"gid://shopify/LineItem/{number}{line}",
                    "title": title,
                    "quantity": rng.randint(1, 2),
                    "unit_price": str(price),
                    "variant_id": f"gid://shopify/ProductVariant/{abs(hash(title)) % 10**6}",
                }
            )
        total = sum(Decimal(i["unit_price"]) * i["quantity"] for i in items)
        state = index % 5  # 0,1 unfulfilled; 2,3 fulfilled; 4 cancelled
        orders[number] = {
            "id": f"gid://shopify/Order/{number}",
            "name": f"#{number}",
            "email": f"{first}.{last}{index}@example.com".lower(),
            "customer_name": f"{first} {last}",
            "currency": "USD",
            "total": str(total),
            "refundable": "0" if state == 4 else str(total),
            "financial_status": "REFUNDED" if state == 4 else "PAID",
            "fulfillment_status": "FULFILLED" if state in (2, 3) else "UNFULFILLED",
            "cancelled": state == 4,
            "created_at": (start + timedelta(hours=7 * index)).isoformat(),
            "shipping_address": {
                "firstName": first,
                "lastName": last,
                "address1": f"{rng.randint(1, 200)} Market Street",
                "city": "Springfield",
                "zip": f"{rng.randint(10000, 99999)}",
                "countryCode": "US",
            },
            "line_items": items
            if state not in (2, 3)
            else [{**i, "fulfilled": True} for i in items],
        }
    return orders


class DemoStores:
    """The stores this sandbox serves, by shop domain."""

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}

    def add(self, shop_domain: str, access_token: str, orders: dict[str, dict[str, Any]]) -> Store:
        store = Store(shop_domain, access_token, orders=orders)
        self.stores[shop_domain] = store
        return store


def _number(order_id: str) -> str:
    return order_id.rsplit("/", 1)[-1]


def router(stores: DemoStores) -> APIRouter:
    api = APIRouter(prefix="/shopify/{shop}")

    def store_for(shop: str, token: str | None) -> Store:
        store = stores.stores.get(shop)
        if store is None:
            raise HTTPException(404, f"no store {shop}")
        if token != store.access_token:
            raise HTTPException(401, "invalid access token")
        return store

    @api.get("/orders")
    async def list_orders(
        shop: str, x_shopify_access_token: str | None = Header(default=None)
    ) -> list[dict[str, Any]]:
        return list(store_for(shop, x_shopify_access_token).orders.values())

    @api.get("/orders/{number}")
    async def get_order(
        shop: str, number: str, x_shopify_access_token: str | None = Header(default=None)
    ) -> dict[str, Any]:
        order = store_for(shop, x_shopify_access_token).orders.get(_number(number))
        if order is None:
            raise HTTPException(404, "order not found")
        return order

    @api.post("/orders/{number}/actions")
    async def perform(
        shop: str,
        number: str,
        request: Request,
        x_shopify_access_token: str | None = Header(default=None),
        idempotency_key: str | None = Header(default=None),
    ) -> JSONResponse:
        store = store_for(shop, x_shopify_access_token)
        if not idempotency_key:
            return JSONResponse({"userErrors": [{"message": "Idempotency-Key is required"}]}, 400)
        body = await request.json()
        store.requests += 1
        if store.latency:
            await asyncio.sleep(store.latency)
        try:
            outcome = store.perform(
                _number(number), body["action"], body.get("payload", {}), idempotency_key
            )
        except StoreError as exc:
            return JSONResponse({"userErrors": [{"message": str(exc)}]}, 422)
        return JSONResponse(outcome)

    @api.get("/ledger")
    async def ledger(shop: str) -> list[dict[str, Any]]:
        store = stores.stores.get(shop)
        return [] if store is None else list(store.ledger)

    return api
