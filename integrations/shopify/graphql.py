"""A Shopify Admin GraphQL client that respects the cost-based rate limit.

Shopify meters each shop with a leaky bucket of query cost. Every answer
reports the bucket (`extensions.cost.throttleStatus`); we remember it per
shop and wait before a request the bucket cannot afford, and a THROTTLED
answer waits for the cost to be restored and tries again. Errors are
classified for Temporal: transport failures, 429 and 5xx may pass; anything
else (a bad token, an invalid document) will not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from integrations.shopify.documents import API_VERSION
from kernel.errors import IntegrationError
from kernel.http import classify_status, new_http_client, raise_for_transport
from kernel.values import ShopTarget

log = logging.getLogger(__name__)

# What a request costs before Shopify tells us; a refund or cancel costs 10.
DEFAULT_COST = 10.0


@dataclass
class Bucket:
    available: float  # as Shopify reported it at `observed_at`
    maximum: float
    restore_rate: float  # points per second
    observed_at: float  # time.monotonic()

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until the bucket holds `cost` points, counting what refilled since."""
        refilled = self.available + (now - self.observed_at) * self.restore_rate
        missing = min(cost, self.maximum) - min(refilled, self.maximum)
        return 0.0 if missing <= 0 else missing / max(self.restore_rate, 1.0)


def admin_base(shop: ShopTarget) -> str:
    """`https://{shop}` for a real store; the sandbox's base for a local one."""
    return (shop.api_base or f"https://{shop.shop_domain}").rstrip("/")


def graphql_url(shop: ShopTarget) -> str:
    return f"{admin_base(shop)}/admin/api/{API_VERSION}/graphql.json"


class ShopifyGraphQL:
    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        max_throttle_retries: int = 5,
        sleep: Any = asyncio.sleep,
    ) -> None:
        self._http = http or new_http_client(timeout=30)
        self._buckets: dict[str, Bucket] = {}
        self._max_throttle_retries = max_throttle_retries
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(
        self, shop: ShopTarget, document: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The `data` of a successful answer."""
        for attempt in range(self._max_throttle_retries + 1):
            bucket = self._buckets.get(shop.shop_domain)
            if (
                bucket is not None
                and (delay := bucket.wait_for(DEFAULT_COST, time.monotonic())) > 0
            ):
                await self._sleep(delay)
            body = await self._post(shop, document, variables or {})
            self._remember(shop.shop_domain, body)
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                log.info(
                    "throttled by Shopify", extra={"shop": shop.shop_domain, "attempt": attempt}
                )
                bucket = self._buckets.get(shop.shop_domain)
                requested = _requested_cost(body)
                await self._sleep(bucket.wait_for(requested, time.monotonic()) if bucket else 1.0)
                continue
            if errors:
                messages = "; ".join(str(e.get("message")) for e in errors)
                raise IntegrationError(f"Shopify refused the request: {messages}", retryable=False)
            data = body.get("data")
            if not isinstance(data, dict):
                raise IntegrationError("Shopify answered without data", retryable=True)
            return data
        raise IntegrationError(
            f"still throttled after {self._max_throttle_retries} waits", retryable=True
        )

    async def _post(
        self, shop: ShopTarget, document: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            response = await self._http.post(
                graphql_url(shop),
                json={"query": document, "variables": variables},
                headers={"X-Shopify-Access-Token": shop.access_token},
            )
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, f"Shopify {shop.shop_domain}") from exc
        if response.status_code in (401, 403):
            raise IntegrationError(
                f"Shopify {shop.shop_domain} refused the access token (HTTP {response.status_code}); "
                "the store may need to be reconnected",
                retryable=False,
            )
        classify_status(response, f"Shopify {shop.shop_domain}")
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationError(
                "Shopify answered with something that is not JSON", retryable=True
            ) from exc
        if not isinstance(body, dict):
            raise IntegrationError("Shopify answered with an unexpected shape", retryable=True)
        return body

    def _remember(self, shop_domain: str, body: dict[str, Any]) -> None:
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus")
        if isinstance(status, dict):
            self._buckets[shop_domain] = Bucket(
                available=float(status.get("currentlyAvailable", 0)),
                maximum=float(status.get("maximumAvailable", 1000)),
                restore_rate=float(status.get("restoreRate", 50)),
                observed_at=time.monotonic(),
            )


def _requested_cost(body: dict[str, Any]) -> float:
    cost = (body.get("extensions") or {}).get("cost") or {}
    return float(cost.get("requestedQueryCost") or DEFAULT_COST)


def user_errors(payload: dict[str, Any] | None, key: str = "userErrors") -> list[str]:
    """The messages of a mutation's userErrors, empty when it succeeded."""
    if not payload:
        return []
    return [str(e.get("message")) for e in payload.get(key) or []]
