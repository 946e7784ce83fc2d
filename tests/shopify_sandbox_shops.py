"""The install tests' view of the sandbox Shopify: shops created on first use, the codes
it issued, the tokens it minted and the webhook subscriptions it holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sandbox.server import Sandbox, serving
from sandbox.shopify.state import Shop


@dataclass
class SandboxShops:
    sandbox: Sandbox
    api_key: str
    base_url: str
    scope: str = "read_orders,write_orders"

    def _shop(self, domain: str) -> Shop:
        shopify = self.sandbox.shopify
        return shopify.state.shops.get(domain) or shopify.add_shop(domain, orders=0)

    def issue_code(self, domain: str) -> str:
        """What the consent screen hands back after a merchant approves."""
        return self.sandbox.shopify.state.issue_code(self._shop(domain), self.api_key, self.scope)

    @property
    def codes(self) -> set[str]:
        return set(self.sandbox.shopify.state.codes)

    @property
    def tokens(self) -> dict[str, str]:
        """Shop domain → the newest token the app holds there."""
        latest: dict[str, str] = {}
        for domain, shop in self.sandbox.shopify.state.shops.items():
            for token, (api_key, _) in shop.tokens.items():
                if api_key == self.api_key:
                    latest[domain] = token
        return latest

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        return [
            {"shop": domain, "topic": s.topic, "webhookSubscription": {"uri": s.uri}}
            for domain, shop in self.sandbox.shopify.state.shops.items()
            for s in shop.subscriptions.values()
        ]


@asynccontextmanager
async def serving_sandbox_shops(api_key: str, api_secret: str) -> AsyncIterator[SandboxShops]:
    sandbox = Sandbox()
    sandbox.shopify.state.register_app(api_key, api_secret, scopes="read_orders,write_orders")
    async with serving(sandbox) as url:
        yield SandboxShops(sandbox, api_key, url)
