"""A Shopify Admin GraphQL client that respects the cost-based rate limit.

Shopify meters each shop with a leaky bucket of query cost. Every answer
reports the bucket (`extensions.cost.throttleStatus`) and what the document
asked of it (`requestedQueryCost`); we remember both, per shop and per
document. Before a request, under the shop's lock, we wait until the bucket,
less what our requests still in flight will take from it, can afford that
document: concurrent requests queue instead of all being THROTTLED together. A
THROTTLED answer still waits for the cost to be restored and tries again. Errors are
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

    def refilled(self, now: float) -> float:
        return min(self.available + (now - self.observed_at) * self.restore_rate, self.maximum)

    def wait_for(self, cost: float, now: float, *, in_flight: float = 0.0) -> float:
        """Seconds until the bucket holds `cost` points besides what is `in_flight`,
        counting what refilled since."""
        missing = min(cost + in_flight, self.maximum) - self.refilled(now)
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
        self._locks: dict[str, asyncio.Lock] = {}
        # Per shop: the cost of our requests sent and not yet answered, which the bucket
        # Shopify last reported does not show yet.
        self._in_flight: dict[str, float] = {}
        # The requested cost Shopify last reported for each document.
        self._costs: dict[str, float] = {}
        self._max_throttle_retries = max_throttle_retries
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def execute(
        self, shop: ShopTarget, document: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The `data` of a successful answer."""
        for attempt in range(self._max_throttle_retries + 1):
            cost = self._costs.get(document, DEFAULT_COST)
            await self._afford(shop.shop_domain, cost)
            try:
                body = await self._post(shop, document, variables or {})
            finally:
                self._in_flight[shop.shop_domain] -= cost
            self._remember(shop.shop_domain, body)
            if (reported := _reported_cost(body)) is not None:
                self._costs[document] = reported
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                log.info(
                    "throttled by Shopify", extra={"shop": shop.shop_domain, "attempt": attempt}
                )
                if shop.shop_domain not in self._buckets:
                    await self._sleep(1.0)  # no bucket reported: nothing better to go by
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

    async def _afford(self, shop_domain: str, cost: float) -> None:
        """Wait, in turn, until the shop's bucket can afford `cost` besides the requests
        in flight; then count this one in flight."""
        lock = self._locks.setdefault(shop_domain, asyncio.Lock())
        async with lock:
            in_flight = self._in_flight.get(shop_domain, 0.0)
            bucket = self._buckets.get(shop_domain)
            # No bucket yet on the first request: Shopify has not reported it.
            if bucket is not None and (
                delay := bucket.wait_for(cost, time.monotonic(), in_flight=in_flight)
            ):
                await self._sleep(delay)
            self._in_flight[shop_domain] = self._in_flight.get(shop_domain, 0.0) + cost

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


def _reported_cost(body: dict[str, Any]) -> float | None:
    cost = (body.get("extensions") or {}).get("cost") or {}
    requested = cost.get("requestedQueryCost")
    return float(requested) if isinstance(requested, int | float) else None


def user_errors(payload: dict[str, Any] | None, key: str = "userErrors") -> list[str]:
    """The messages of a mutation's userErrors, empty when it succeeded."""
    if not payload:
        return []
    return [str(e.get("message")) for e in payload.get(key) or []]
