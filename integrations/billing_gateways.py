"""The payment gateways behind one protocol, and the configured ones for a Settings.

Razorpay (integrations/razorpay_gateway.py) and Paddle (integrations/paddle_gateway.py)
each speak through their official SDK; the rest of deskpilot sees `BillingGateway`,
`GatewaySnapshot` (domain/billing.py) and `WebhookEvent`. The SDKs are imported when a
gateway is first built or an event read: the Paddle SDK alone takes about 0.2 s to import,
which every process's start would otherwise pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.billing import PlanCatalog
from integrations.billing_port import BadWebhook, BillingGateway, Checkout, WebhookEvent
from kernel.enums import PlanType
from kernel.settings import Settings

__all__ = [
    "BadWebhook",
    "BillingGateway",
    "Checkout",
    "WebhookEvent",
    "billing_gateways",
    "parse_event",
    "plan_catalog",
]


def plan_catalog(settings: Settings) -> PlanCatalog:
    """Our paid plans' ids at each gateway, from settings (unset ones are not offered)."""
    razorpay = {
        PlanType.STARTER: settings.razorpay_plan_starter,
        PlanType.GROWTH: settings.razorpay_plan_growth,
        PlanType.PRO: settings.razorpay_plan_pro,
    }
    paddle = {
        PlanType.STARTER: settings.paddle_price_starter,
        PlanType.GROWTH: settings.paddle_price_growth,
        PlanType.PRO: settings.paddle_price_pro,
    }
    return PlanCatalog(
        {
            "razorpay": {plan: value for plan, value in razorpay.items() if value},
            "paddle": {plan: value for plan, value in paddle.items() if value},
        }
    )


def billing_gateways(settings: Settings) -> dict[str, BillingGateway]:
    """The configured gateways by name: Razorpay needs its key id and secret, Paddle its
    API key. (A webhook route also needs the gateway's webhook secret.)"""
    catalog = plan_catalog(settings)
    found: dict[str, BillingGateway] = {}
    if settings.razorpay_key_id and settings.razorpay_key_secret:
        from integrations.razorpay_gateway import RazorpayGateway

        found["razorpay"] = RazorpayGateway.from_settings(settings, catalog)
    if settings.paddle_api_key:
        from integrations.paddle_gateway import PaddleGateway

        found["paddle"] = PaddleGateway.from_settings(settings, catalog)
    return found


def parse_event(gateway: str, payload: Mapping[str, Any], event_id: str) -> WebhookEvent:
    """A stored delivery's event, read again (the activity works from the stored body)."""
    if gateway == "razorpay":
        from integrations.razorpay_gateway import razorpay_event

        return razorpay_event(payload, event_id)
    if gateway == "paddle":
        from integrations.paddle_gateway import paddle_event

        return paddle_event(payload)
    raise BadWebhook(f"unknown gateway {gateway!r}")
