"""What every payment gateway offers deskpilot (see integrations/billing_gateways.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from domain.billing import GatewaySnapshot
from kernel.enums import PlanType
from kernel.errors import Malformed


@dataclass(frozen=True)
class Checkout:
    url: str  # where the buyer pays: Razorpay's short_url, Paddle's checkout.url
    gateway: str
    subscription_id: str | None  # Razorpay creates it up front; Paddle once paid


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    snapshot: GatewaySnapshot | None  # None: the event says nothing about a subscription


class BadWebhook(Malformed):
    """A signed delivery whose content we cannot read (not JSON, no event id)."""

    code = "bad_webhook"


class BillingGateway(Protocol):
    name: str
    # Whether a plan change can wait for the period's end (the old plan kept until then).
    changes_at_period_end: bool
    # Whether a cancellation set for the period's end can be taken back.
    undoes_cancel_at_period_end: bool

    @property
    def webhooks_configured(self) -> bool:
        """Whether its webhook secret is set (the webhook route answers 503 otherwise)."""
        ...

    async def checkout(
        self, *, user_id: UUID, email: str, plan: PlanType, return_url: str
    ) -> Checkout: ...

    async def change_plan(
        self, subscription_id: str, plan: PlanType, *, at_period_end: bool
    ) -> GatewaySnapshot: ...

    async def cancel(self, subscription_id: str, *, at_period_end: bool) -> GatewaySnapshot: ...

    async def resume(self, subscription_id: str) -> GatewaySnapshot: ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent: ...

    def verify_checkout_signature(
        self, *, payment_id: str, subscription_id: str, signature: str
    ) -> bool: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name in any case (a plain dict is as good as Starlette's Headers)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, found in headers.items():
        if key.lower() == lowered:
            return found
    return None
