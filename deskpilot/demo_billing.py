"""Demo mode's billing: each gateway without real credentials is the sandbox's stand-in.

The stand-ins get demo credentials (made up on every run, like the demo's Gmail client),
our three paid plans at the prices domain/plans.py names, and our webhook endpoints as
their webhook URL; the returned Settings point the gateway clients at them. A gateway
whose real credentials are set is left alone.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from kernel.enums import PlanType
from kernel.settings import Settings
from sandbox.paddle import DEMO_PADDLE_API_KEY, DEMO_PADDLE_CURRENCY, DEMO_PADDLE_PRICES
from sandbox.razorpay import DEMO_RAZORPAY_CURRENCY, DEMO_RAZORPAY_KEY_ID, DEMO_RAZORPAY_PLANS
from sandbox.server import Sandbox

RAZORPAY_WEBHOOK_PATH = "/billing/webhooks/razorpay"
PADDLE_WEBHOOK_PATH = "/billing/webhooks/paddle"
_FIELD = {PlanType.STARTER: "starter", PlanType.GROWTH: "growth", PlanType.PRO: "pro"}


def demo_billing_settings(
    settings: Settings, sandbox: Sandbox, sandbox_url: str, *, api_base: str
) -> Settings:
    """Configure the sandbox's Razorpay and Paddle and point `settings` at them.

    `api_base` is where the sandbox reaches our API (the public URL when one is set)."""
    update: dict[str, object] = {}
    base = api_base.rstrip("/")
    if not settings.razorpay_key_id:
        key_secret, hook_secret = secrets.token_hex(16), secrets.token_hex(16)
        sandbox.razorpay.configure(
            key_id=DEMO_RAZORPAY_KEY_ID,
            key_secret=key_secret,
            webhook_secret=hook_secret,
            webhook_url=base + RAZORPAY_WEBHOOK_PATH,
        )
        for plan, (plan_id, amount) in DEMO_RAZORPAY_PLANS.items():
            sandbox.razorpay.add_plan(plan_id, amount, DEMO_RAZORPAY_CURRENCY)
            update[f"razorpay_plan_{_FIELD[plan]}"] = plan_id
        update |= {
            "razorpay_key_id": DEMO_RAZORPAY_KEY_ID,
            "razorpay_key_secret": SecretStr(key_secret),
            "razorpay_webhook_secret": SecretStr(hook_secret),
            "razorpay_api_url": f"{sandbox_url}/razorpay",
        }
    if settings.paddle_api_key is None:
        api_key, hook_secret = (
            f"{DEMO_PADDLE_API_KEY}_{secrets.token_hex(8)}",
            secrets.token_hex(16),
        )
        sandbox.paddle.configure(
            api_key=api_key, webhook_secret=hook_secret, webhook_url=base + PADDLE_WEBHOOK_PATH
        )
        for plan, (price_id, amount) in DEMO_PADDLE_PRICES.items():
            sandbox.paddle.add_price(price_id, amount, DEMO_PADDLE_CURRENCY)
            update[f"paddle_price_{_FIELD[plan]}"] = price_id
        update |= {
            "paddle_api_key": SecretStr(api_key),
            "paddle_webhook_secret": SecretStr(hook_secret),
            "paddle_api_url": f"{sandbox_url}/paddle",
        }
    return settings.model_copy(update=update)


def demo_billing_banner(settings: Settings) -> str | None:
    """The banner's line naming the gateways that are sandbox stand-ins, if any."""
    sandbox_url = settings.sandbox_url
    names = [
        name
        for name, url in (
            ("Razorpay", settings.razorpay_api_url),
            ("Paddle", settings.paddle_api_url),
        )
        if sandbox_url and url and url.startswith(sandbox_url)
    ]
    if not names:
        return None
    return f"  billing      {' and '.join(names)} (sandbox): checkout pages with Pay / Fail payment"
