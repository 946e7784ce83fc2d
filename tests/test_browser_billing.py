"""Buying a plan in a real Chromium, through each gateway: the usage page's GROWTH card,
"Choose with Razorpay" (or Paddle), the sandbox's checkout page, Pay, and back on the usage
page the plan turns GROWTH, active, with GROWTH's limits once the gateway's webhooks have
been applied (the page updates itself).
The app over loopback with the Temporal dev server, a worker and the sandbox stand-ins.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import expect

from api.app import create_app
from domain.plans import PLAN_LIMITS
from kernel.enums import PlanType
from models.db import unit_of_work
from models.user import User, set_password
from tests.pipeline import running_pipeline

if TYPE_CHECKING:
    from playwright.async_api import Page
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from temporalio.testing import WorkflowEnvironment

    from tests.browser_support import NewPage, PageProblems, Screenshot, ServeApp

pytest_plugins = ("tests.browser_support",)

PASSWORD = "correct horse battery staple"
ACTIVATED_TIMEOUT_MS = 30_000  # the webhooks, their workflow, the page's live update
# gateway -> (its button's name, its checkout page's path, where it sends the buyer back,
# what the usage page says until the webhooks have been applied)
GATEWAYS = {
    "razorpay": (
        "Razorpay",
        r"/razorpay/checkout/sub_\w+",
        r"/usage\?notice=payment_received$",
        "Payment received — activating",
    ),
    "paddle": (
        "Paddle",
        r"/paddle/checkout/txn_\w+",
        r"/usage\?notice=checkout_done$",
        "Checkout finished — activating",
    ),
}


async def sign_in(page: Page, email: str) -> None:
    """Open the usage page: sign in on the way."""
    await page.goto("/usage")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/usage$"))


@pytest.mark.parametrize("gateway", list(GATEWAYS))
async def test_usage_page_to_growth_through_the_gateways_checkout(
    gateway: str,
    temporal_dev: WorkflowEnvironment,
    own_sessions: async_sessionmaker[AsyncSession],
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    queue = f"browser-billing-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        async with unit_of_work(own_sessions) as session:
            await set_password(session, merchant.user_id, PASSWORD)
            email = (await session.get_one(User, merchant.user_id)).email
        engine = own_sessions.kw["bind"]
        app = create_app(engine, temporal_dev.client, merchant.settings, task_queue=queue)
        async with served_app(app) as base_url:
            app.state.settings = merchant.settings.model_copy(update={"public_url": base_url})
            merchant.deliver_billing_webhooks(base_url)
            page = await new_page(base_url=base_url)
            await sign_in(page, email)
            plan = page.locator("#plan")
            await expect(plan.get_by_role("heading", name="Trial plan")).to_be_visible()
            await screenshot(page, f"billing-usage-trial-{gateway}")

            label, checkout_path, back, activating = GATEWAYS[gateway]
            await page.get_by_role("button", name=f"Choose Growth with {label}").click()
            checkout = re.compile(re.escape(merchant.sandbox_url) + checkout_path)
            await expect(page).to_have_url(checkout)
            await page.get_by_role("button", name="Pay", exact=True).click()

            # Back from the gateway: paid, waiting for its webhooks.
            await expect(page).to_have_url(re.compile(back))
            await expect(page.get_by_role("status")).to_contain_text(activating)
            await expect(plan.get_by_role("heading", name="Growth plan")).to_be_visible(
                timeout=ACTIVATED_TIMEOUT_MS
            )
            await expect(plan.locator("#plan-status")).to_have_text("active")
            growth = PLAN_LIMITS[PlanType.GROWTH]
            for limit in (growth.emails_sent, growth.emails_received, growth.ai_suggestions):
                await expect(plan).to_contain_text(f"0 of {limit}")
            await expect(page.locator("#plan-growth")).to_contain_text("current plan")
            await screenshot(page, f"billing-usage-growth-{gateway}")

            # On a phone the cards stack: nothing wider than the screen.
            phone = await new_page("phone", base_url=base_url)
            await sign_in(phone, email)
            await expect(phone.locator("#plan-pro")).to_contain_text("Switch now")
            overflow = await phone.evaluate("document.documentElement.scrollWidth - innerWidth")
            assert overflow <= 0, f"the usage page is {overflow}px wider than a phone"
            await screenshot(phone, f"billing-usage-growth-phone-{gateway}")
        await getattr(merchant.sandbox, gateway).settle()
    page_problems.assert_none()
