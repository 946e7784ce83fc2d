"""The configured payment gateways, for the billing routes and pages, and where a
checkout sends the buyer back to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request

from integrations.billing_gateways import BillingGateway, billing_gateways
from kernel.settings import Settings

RAZORPAY_RETURN_PATH = "/billing/razorpay/return"


def _gateways(request: Request) -> Mapping[str, BillingGateway]:
    """Built once per Settings object: the SDK clients keep their HTTP sessions."""
    state = request.app.state
    cached: tuple[Settings, Mapping[str, BillingGateway]] | None = getattr(
        state, "billing_gateways", None
    )
    if cached is None or cached[0] is not state.settings:
        cached = (state.settings, billing_gateways(state.settings))
        state.billing_gateways = cached
    return cached[1]


def return_url(settings: Settings, gateway: str) -> str:
    """Razorpay's checkout hands its signed result to our return route; Paddle's checkout
    just comes back to the usage page (its webhooks carry the result)."""
    base = settings.public_url.rstrip("/")
    if gateway == "razorpay":
        return base + RAZORPAY_RETURN_PATH
    return base + "/usage?notice=checkout_done"


GatewaysDep = Annotated[Mapping[str, BillingGateway], Depends(_gateways)]
