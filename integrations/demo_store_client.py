"""ShopifyPort for the sandbox demo store's JSON API (until the GraphQL client lands)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from integrations.http import classify_status, new_http_client, raise_for_transport
from integrations.ports import (
    ActionOutcome,
    IntegrationError,
    LineItem,
    OrderSnapshot,
    ShopTarget,
)
from models.enums import ActionType


def _snapshot(data: dict[str, Any]) -> OrderSnapshot:
    return OrderSnapshot(
        id=data["id"],
        name=data["name"],
        email=data.get("email"),
        currency=data["currency"],
        total=Decimal(data["total"]),
        refundable=Decimal(data["refundable"]),
        financial_status=data["financial_status"],
        fulfillment_status=data["fulfillment_status"],
        cancelled=data["cancelled"],
        shipping_address=data.get("shipping_address"),
        line_items=[
            LineItem(
                id=i["id"],
                title=i["title"],
                quantity=i["quantity"],
                unit_price=Decimal(i["unit_price"]),
                variant_id=i.get("variant_id"),
                fulfilled=i.get("fulfilled", False),
            )
            for i in data.get("line_items", [])
        ],
    )


class DemoStoreClient:
    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or new_http_client()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _url(self, shop: ShopTarget, path: str) -> str:
        if not shop.api_base:
            raise IntegrationError(
                f"{shop.shop_domain} has no sandbox api_base; real stores need the GraphQL client",
                retryable=False,
            )
        return f"{shop.api_base.rstrip('/')}/shopify/{shop.shop_domain}{path}"

    async def _request(
        self, method: str, shop: ShopTarget, path: str, what: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"X-Shopify-Access-Token": shop.access_token, **kwargs.pop("headers", {})}
        try:
            return await self._http.request(
                method, self._url(shop, path), headers=headers, **kwargs
            )
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, what) from exc

    async def get_order(self, shop: ShopTarget, order_id: str) -> OrderSnapshot:
        number = order_id.rsplit("/", 1)[-1]
        response = await self._request("GET", shop, f"/orders/{number}", "fetch order")
        classify_status(response, f"fetch order {order_id}")
        return _snapshot(response.json())

    async def list_orders(self, shop: ShopTarget) -> list[OrderSnapshot]:
        response = await self._request("GET", shop, "/orders", "list orders")
        classify_status(response, "list orders")
        return [_snapshot(o) for o in response.json()]

    async def perform(
        self,
        shop: ShopTarget,
        order_id: str,
        action: ActionType,
        payload: dict[str, Any],
        idempotency_key: str,
    ) -> ActionOutcome:
        number = order_id.rsplit("/", 1)[-1]
        response = await self._request(
            "POST",
            shop,
            f"/orders/{number}/actions",
            f"{action.value} on {order_id}",
            json={"action": action.value, "payload": payload},
            headers={"Idempotency-Key": idempotency_key},
        )
        if response.status_code == 422:
            errors = response.json().get("userErrors", [])
            message = "; ".join(e.get("message", "") for e in errors) or "refused"
            raise IntegrationError(f"Shopify refused {action.value}: {message}", retryable=False)
        classify_status(response, f"{action.value} on {order_id}")
        body = response.json()
        reference = body.pop("reference", None)
        return ActionOutcome(reference=reference, detail=body)
