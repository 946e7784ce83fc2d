"""The billing API over real HTTP: the app served on loopback with the Temporal dev server,
a worker, real PostgreSQL, and the Razorpay and Paddle stand-ins of the sandbox sending
their signed webhooks to the app. GET /api/billing; checkout through either gateway to
GROWTH; upgrade at once and downgrade at the period's end (applied on the renewal);
cancel at the period's end and at once; resume; the refusals; Razorpay's checkout return.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.plans import PLAN_LIMITS
from kernel.enums import PlanType
from models.billing import Subscription
from models.billing_event import BillingEvent
from models.db import unit_of_work
from models.user import User, set_password
from sandbox.server import serve_app
from services.accounts import create_user
from tests.api_support import token_for
from tests.pipeline import Merchant, gateway_id, running_pipeline
from tests.playbook_support import eventually

WAIT_S = 30
PASSWORD = "correct horse battery staple"
GATEWAYS = ("razorpay", "paddle")
FIELDS = {
    "plan_type", "status", "current_period_start", "current_period_end", "payment_gateway",
    "gateway_subscription_id", "cancel_at_period_end", "limits", "usage", "plans", "entitled",
    "entitlement_reason", "gateways", "scheduled_plan",
}  # fmt: skip


def limits_of(plan: PlanType) -> dict[str, int | None]:
    limits = PLAN_LIMITS[plan]
    return {
        "emails_sent": limits.emails_sent,
        "emails_received": limits.emails_received,
        "ai_suggestions": limits.ai_suggestions,
    }


@dataclass
class Billing:
    merchant: Merchant
    sessions: async_sessionmaker[AsyncSession]
    url: str  # the app's
    api: httpx.AsyncClient  # the merchant's API token
    http: httpx.AsyncClient  # no credentials: the sandbox, a browser's requests

    async def view(self) -> dict[str, Any]:
        response = await self.api.get("/api/billing")
        assert response.status_code == 200, response.text
        return response.json()

    async def settle(self) -> None:
        """Every webhook the stand-ins queued so far has been answered by the app and
        applied by its workflow (bounded)."""
        await self.merchant.sandbox.razorpay.settle()
        await self.merchant.sandbox.paddle.settle()
        unprocessed = select(func.count()).where(BillingEvent.processed_at.is_(None))
        async with asyncio.timeout(WAIT_S):
            while True:
                async with self.sessions() as session:
                    if not await session.scalar(unprocessed):
                        return
                await asyncio.sleep(0.05)

    async def checkout(self, gateway: str, plan: str = "GROWTH") -> dict[str, Any]:
        response = await self.api.post(
            "/api/billing/checkout", json={"plan": plan, "gateway": gateway}
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def pay(
        self, gateway: str, plan: str = "GROWTH", delivery: str = "ordered"
    ) -> dict[str, Any]:
        """Checkout and pay; the plan as GET /api/billing shows it once the webhooks land."""
        checkout = await self.checkout(gateway, plan)
        paid = await self.http.post(
            checkout["checkout_url"], json={"outcome": "paid", "delivery": delivery}
        )
        assert paid.status_code == 200, paid.text
        await self.settle()
        view = await self.view()
        assert view["plan_type"] == plan and view["status"] == "active", view
        return view

    async def renew(self, gateway: str, subscription_id: str, outcome: str = "paid") -> None:
        sandbox = self.merchant.sandbox_url
        renewed = await self.http.post(
            f"{sandbox}/{gateway}/_sandbox/subscriptions/{subscription_id}/renew",
            json={"outcome": outcome},
        )
        assert renewed.status_code == 200, renewed.text
        await self.settle()

    async def events(self, type: str) -> list[dict[str, Any]]:
        found = await self.api.get("/api/events", params={"type": type})
        assert found.status_code == 200, found.text
        return found.json()["events"]


@pytest.fixture
async def billing(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Billing]:
    queue = f"billing-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        app = create_app(engine, temporal_dev.client, merchant.settings, task_queue=queue)
        async with serve_app(app) as url:
            # Checkouts return here; the stand-ins send their webhooks here.
            app.state.settings = merchant.settings.model_copy(update={"public_url": url})
            merchant.deliver_billing_webhooks(url)
            headers = {"Authorization": f"Bearer {await token_for(own_sessions, merchant.user_id)}"}
            async with (
                httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api,
                httpx.AsyncClient(timeout=30) as http,
            ):
                yield Billing(merchant, own_sessions, url, api, http)
                await merchant.sandbox.razorpay.settle()
                await merchant.sandbox.paddle.settle()


# --- what GET /api/billing says --------------------------------------------------------------


async def test_a_new_merchant_sees_its_trial_and_the_plans_for_sale(billing: Billing) -> None:
    view = await billing.view()
    assert set(view) == FIELDS
    assert view["plan_type"] == "TRIAL" and view["status"] == "active"
    assert view["entitled"] is True and view["entitlement_reason"] is None
    assert view["payment_gateway"] is None and view["gateway_subscription_id"] is None
    assert view["cancel_at_period_end"] is False and view["scheduled_plan"] is None
    assert view["current_period_start"] < view["current_period_end"]
    assert view["limits"] == limits_of(PlanType.TRIAL)
    assert view["usage"] == {"emails_sent": 0, "emails_received": 0, "ai_suggestions": 0}
    assert view["gateways"] == ["paddle", "razorpay"]
    assert [p["plan_type"] for p in view["plans"]] == ["STARTER", "GROWTH", "PRO"]
    growth = view["plans"][1]
    assert set(growth) == {"plan_type", "prices", "limits"}
    assert growth["prices"] == {
        "razorpay": {"currency": "INR", "amount_minor": 399_900},
        "paddle": {"currency": "USD", "amount_minor": 4_900},
    }
    assert growth["limits"] == limits_of(PlanType.GROWTH)


# --- checkout --------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_checkout_answers_the_gateways_checkout_page(billing: Billing, gateway: str) -> None:
    checkout = await billing.checkout(gateway)
    assert set(checkout) == {"checkout_url", "gateway"} and checkout["gateway"] == gateway
    assert checkout["checkout_url"].startswith(f"{billing.merchant.sandbox_url}/{gateway}/")
    page = await billing.http.get(checkout["checkout_url"])
    assert page.status_code == 200 and "Pay" in page.text
    # Nothing is bought until the gateway says so; the checkout is in the audit log.
    view = await billing.view()
    assert view["plan_type"] == "TRIAL" and view["payment_gateway"] is None
    [started] = await billing.events("subscription.checkout_started")
    assert started["payload"]["plan"] == "GROWTH" and started["payload"]["gateway"] == gateway


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_a_paid_checkout_makes_the_plan_growth_with_its_limits(
    billing: Billing, gateway: str
) -> None:
    trial = await billing.view()
    view = await billing.pay(gateway, delivery="shuffled")
    assert view["plan_type"] == "GROWTH" and view["status"] == "active"
    # The gateway's first paid month, not what was left of the trial.
    assert view["current_period_start"] != trial["current_period_start"]
    assert view["current_period_end"] > trial["current_period_end"], (trial, view)
    assert view["limits"] == limits_of(PlanType.GROWTH)
    assert view["payment_gateway"] == gateway and view["gateway_subscription_id"]
    assert view["entitled"] is True and view["cancel_at_period_end"] is False
    # A second checkout while it runs would charge twice.
    again = await billing.api.post(
        "/api/billing/checkout", json={"plan": "PRO", "gateway": gateway}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_subscribed"


async def test_a_failed_payment_changes_nothing(billing: Billing) -> None:
    checkout = await billing.checkout("razorpay")
    failed = await billing.http.post(checkout["checkout_url"], json={"outcome": "failed"})
    assert failed.status_code == 200, failed.text
    await billing.settle()
    view = await billing.view()
    assert view["plan_type"] == "TRIAL" and view["gateway_subscription_id"] is None


# --- changes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_upgrade_mid_period(billing: Billing, gateway: str) -> None:
    paid = await billing.pay(gateway)
    upgraded = await billing.api.post("/api/billing/change", json={"plan": "PRO", "when": "now"})
    assert upgraded.status_code == 200, upgraded.text
    view = upgraded.json()
    assert view["plan_type"] == "PRO" and view["limits"] == limits_of(PlanType.PRO)
    # Mid-period: the period stays the one paid for (the gateway prorates the difference).
    assert view["current_period_end"] == paid["current_period_end"]
    await billing.settle()  # the gateway's own webhook for it changes nothing more
    assert (await billing.view())["plan_type"] == "PRO"
    [asked] = await billing.events("subscription.change_requested")
    assert asked["payload"] == {"gateway": gateway, "plan": "PRO", "when": "now"}
    same = await billing.api.post("/api/billing/change", json={"plan": "PRO"})
    assert same.status_code == 409 and same.json()["error"]["code"] == "same_plan"


async def test_razorpay_downgrade_at_the_period_end_applies_on_the_renewal(
    billing: Billing,
) -> None:
    paid = await billing.pay("razorpay", plan="PRO")
    later = await billing.api.post(
        "/api/billing/change", json={"plan": "STARTER", "when": "period_end"}
    )
    assert later.status_code == 200, later.text
    assert later.json()["plan_type"] == "PRO" and later.json()["scheduled_plan"] == "STARTER"
    await billing.settle()
    assert (await billing.view())["scheduled_plan"] == "STARTER"

    await billing.renew("razorpay", paid["gateway_subscription_id"])
    renewed = await billing.view()
    assert renewed["plan_type"] == "STARTER", renewed
    assert renewed["scheduled_plan"] is None and renewed["status"] == "active"
    assert renewed["limits"] == limits_of(PlanType.STARTER)
    assert renewed["current_period_end"] > paid["current_period_end"]  # the next period


@pytest.mark.parametrize("plan", ["STARTER", "PRO"])
async def test_paddle_refuses_a_change_at_the_period_end(billing: Billing, plan: str) -> None:
    """Paddle changes a subscription's items the moment it is asked: a change "at the
    period's end" would hand over PRO now and bill it only from the next period."""
    paid = await billing.pay("paddle", plan="GROWTH")
    later = await billing.api.post("/api/billing/change", json={"plan": plan, "when": "period_end"})
    assert later.status_code == 400, later.text
    assert later.json()["error"]["code"] == "not_at_period_end"
    await billing.settle()
    view = await billing.view()
    assert view["plan_type"] == "GROWTH" and view["scheduled_plan"] is None
    assert view["current_period_end"] == paid["current_period_end"]
    subscription = billing.merchant.sandbox.paddle.subscriptions[paid["gateway_subscription_id"]]
    prices = [line.price.id for line in subscription.lines]
    assert prices == [gateway_id("paddle", PlanType.GROWTH)]  # nothing asked of Paddle


@pytest.mark.parametrize("gateway", ["razorpay", "paddle"])
async def test_cancel_at_the_period_end_keeps_the_plan_until_then(
    billing: Billing, gateway: str
) -> None:
    paid = await billing.pay(gateway)
    cancelled = await billing.api.post("/api/billing/cancel", json={"at_period_end": True})
    assert cancelled.status_code == 200, cancelled.text
    view = cancelled.json()
    assert view["cancel_at_period_end"] is True and view["plan_type"] == "GROWTH"
    assert view["entitled"] is True and view["status"] == "active"
    await billing.settle()
    assert (await billing.view())["cancel_at_period_end"] is True
    twice = await billing.api.post("/api/billing/cancel", json={"at_period_end": True})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_cancelling"
    [asked] = await billing.events("subscription.cancel_requested")
    assert asked["payload"] == {"gateway": gateway, "at_period_end": True}

    # The period's end: the gateway ends the subscription.
    await billing.renew(gateway, paid["gateway_subscription_id"])
    ended = await billing.view()
    assert ended["status"] in ("cancelled", "expired") and ended["plan_type"] == "GROWTH", ended


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_cancel_at_once(billing: Billing, gateway: str) -> None:
    await billing.pay(gateway)
    cancelled = await billing.api.post("/api/billing/cancel", json={"at_period_end": False})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await billing.settle()
    view = await billing.view()
    assert view["status"] == "cancelled" and view["cancel_at_period_end"] is False
    # Nothing is running any more: nothing to change or cancel.
    change = await billing.api.post("/api/billing/change", json={"plan": "PRO"})
    assert change.status_code == 409 and change.json()["error"]["code"] == "no_subscription"


async def test_resume_a_cancellation_set_for_the_period_end(billing: Billing) -> None:
    await billing.pay("paddle")
    assert (await billing.api.post("/api/billing/cancel", json={})).status_code == 200
    resumed = await billing.api.post("/api/billing/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["cancel_at_period_end"] is False
    assert resumed.json()["status"] == "active" and resumed.json()["plan_type"] == "GROWTH"
    await billing.settle()
    assert (await billing.view())["cancel_at_period_end"] is False
    assert len(await billing.events("subscription.resume_requested")) == 1
    nothing = await billing.api.post("/api/billing/resume")
    assert nothing.status_code == 409 and nothing.json()["error"]["code"] == "not_paused"


# --- refusals --------------------------------------------------------------------------------


async def test_refusals(billing: Billing) -> None:
    for plan in ("TRIAL", "ENTERPRISE"):
        refused = await billing.api.post(
            "/api/billing/checkout", json={"plan": plan, "gateway": "razorpay"}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "plan_not_for_sale"
    unknown = await billing.api.post(
        "/api/billing/checkout", json={"plan": "GROWTH", "gateway": "stripe"}
    )
    assert unknown.status_code == 422
    for path, body in (
        ("/api/billing/change", {"plan": "PRO", "when": "now"}),
        ("/api/billing/cancel", {"at_period_end": False}),
        ("/api/billing/resume", None),
    ):
        refused = await billing.api.post(path, json=body)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["error"]["code"] == "no_subscription"
    change = await billing.api.post("/api/billing/change", json={"plan": "TRIAL"})
    assert change.status_code == 400
    anonymous = await billing.http.get(f"{billing.url}/api/billing")
    assert anonymous.status_code == 401
    assert not await billing.events("subscription.*_requested")


@pytest.mark.parametrize("unset", ["paddle_api_key", "paddle_webhook_secret"])
async def test_an_unconfigured_gateway_is_refused(billing: Billing, unset: str) -> None:
    """Without its API key, or without its webhook secret (its payment would never reach
    us), a gateway is not offered."""
    engine: AsyncEngine = billing.sessions.kw["bind"]
    settings = billing.merchant.settings.model_copy(update={unset: None})
    app = create_app(engine, None, settings)
    async with (
        serve_app(app) as url,
        httpx.AsyncClient(base_url=url, headers=billing.api.headers) as api,
    ):
        assert (await api.get("/api/billing")).json()["gateways"] == ["razorpay"]
        refused = await api.post(
            "/api/billing/checkout", json={"plan": "GROWTH", "gateway": "paddle"}
        )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "gateway_not_configured"
    assert not billing.merchant.sandbox.paddle.transactions  # nothing asked of Paddle


async def test_a_second_paid_checkout_cancels_the_first_at_its_gateway(
    billing: Billing,
) -> None:
    """Two checkouts open (two tabs, or back and another gateway), both paid: the later
    payment's subscription is the account's, and the first is cancelled at Paddle so the
    merchant is not charged twice, nor is the account taken back by its news."""
    razorpay = await billing.checkout("razorpay", plan="PRO")
    paddle = await billing.checkout("paddle", plan="GROWTH")
    first = await billing.http.post(paddle["checkout_url"], json={"outcome": "paid"})
    assert first.status_code == 200, first.text
    await billing.settle()
    on_paddle = await billing.view()
    assert (on_paddle["payment_gateway"], on_paddle["plan_type"]) == ("paddle", "GROWTH")

    second = await billing.http.post(razorpay["checkout_url"], json={"outcome": "paid"})
    assert second.status_code == 200, second.text
    await billing.settle()
    paddle_subscription = billing.merchant.sandbox.paddle.subscriptions[
        on_paddle["gateway_subscription_id"]
    ]

    async def cancelled() -> bool:
        return paddle_subscription.status == "canceled"

    await eventually(cancelled, WAIT_S, "the replaced Paddle subscription cancelled")
    await billing.settle()  # Paddle's subscription.canceled, answered and applied
    view = await billing.view()
    assert (view["payment_gateway"], view["plan_type"], view["status"]) == (
        "razorpay",
        "PRO",
        "active",
    )
    assert view["entitled"] is True
    (replaced,) = await billing.events("subscription.replaced")
    assert replaced["payload"]["replaced_subscription_id"] == on_paddle["gateway_subscription_id"]
    assert await billing.events("subscription.replaced_cancelled")


async def test_another_merchant_sees_and_changes_only_its_own(billing: Billing) -> None:
    mine = await billing.pay("razorpay")
    async with unit_of_work(billing.sessions) as session:
        other = await create_user(session, f"other-{uuid.uuid4().hex[:6]}@store.test")
    headers = {"Authorization": f"Bearer {await token_for(billing.sessions, other.id)}"}
    async with httpx.AsyncClient(base_url=billing.url, headers=headers) as theirs:
        view = (await theirs.get("/api/billing")).json()
        assert view["plan_type"] == "TRIAL" and view["gateway_subscription_id"] is None
        refused = await theirs.post("/api/billing/cancel", json={"at_period_end": False})
        assert refused.status_code == 409
        events = (await theirs.get("/api/events", params={"type": "subscription.*"})).json()
    assert mine["gateway_subscription_id"] not in str(events)
    assert (await billing.view())["status"] == "active"


# --- Razorpay's checkout return --------------------------------------------------------------


@asynccontextmanager
async def signed_in(billing: Billing) -> AsyncIterator[httpx.AsyncClient]:
    """A browser's client, signed in as the merchant with the session cookie."""
    async with unit_of_work(billing.sessions) as session:
        await set_password(session, billing.merchant.user_id, PASSWORD)
        email = (await session.get_one(User, billing.merchant.user_id)).email
    async with httpx.AsyncClient(base_url=billing.url, timeout=30) as web:
        page = await web.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert csrf, page.text
        form = {"email": email, "password": PASSWORD, "csrf": csrf.group(1)}
        assert (await web.post("/login", data=form)).status_code == 303
        yield web


async def test_razorpays_return_is_verified_and_says_the_plan_is_activating(
    billing: Billing,
) -> None:
    checkout = await billing.checkout("razorpay")
    async with signed_in(billing) as web:
        # A forged result: refused with a message, and nothing changes.
        forged = await web.get(
            "/billing/razorpay/return",
            params={
                "razorpay_payment_id": "pay_forged0000000",
                "razorpay_subscription_id": "sub_forged0000000",
                "razorpay_signature": "0" * 64,
            },
        )
        assert forged.status_code == 400
        assert "could not be verified" in forged.text and "nothing was changed" in forged.text
        assert (await billing.view())["plan_type"] == "TRIAL"

        paid = await billing.http.post(checkout["checkout_url"], json={"outcome": "paid"})
        redirect = paid.json()["redirect"]
        assert redirect.startswith(f"{billing.url}/billing/razorpay/return?")
        # The signature is over this payment and subscription: another payment id fails it.
        tampered = await web.get(
            redirect.replace("razorpay_payment_id=pay_", "razorpay_payment_id=pay_x")
        )
        assert tampered.status_code == 400
        back = await web.get(redirect)
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/usage?notice=payment_received"
        page = await web.get(back.headers["location"])
        assert "Payment received — activating" in page.text
    await billing.settle()
    view = await billing.view()
    assert view["plan_type"] == "GROWTH" and view["status"] == "active"


async def test_razorpay_cannot_take_back_a_cancellation_at_the_cycles_end(
    billing: Billing,
) -> None:
    await billing.pay("razorpay")
    assert (await billing.api.post("/api/billing/cancel", json={})).status_code == 200
    refused = await billing.api.post("/api/billing/resume")
    assert refused.status_code == 409, refused.text
    assert "cannot undo" in refused.json()["error"]["message"]
    assert (await billing.view())["cancel_at_period_end"] is True


# --- the pages -------------------------------------------------------------------------------


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def test_the_usage_page_buys_changes_and_cancels_with_its_forms(billing: Billing) -> None:
    async with signed_in(billing) as web:
        page = await web.get("/usage")
        assert page.status_code == 200
        assert "Trial plan" in page.text
        for plan in ("Starter", "Growth", "Pro"):
            for gateway in ("Razorpay", "Paddle"):
                assert f'aria-label="Choose {plan} with {gateway}"' in page.text
        assert "₹3,999.00 a month" in page.text and "$49.00 a month" in page.text
        csrf = _csrf(page.text)
        unsigned = await web.post("/billing/checkout", data={"plan": "GROWTH", "gateway": "paddle"})
        assert unsigned.status_code == 403

        chosen = await web.post(
            "/billing/checkout", data={"plan": "GROWTH", "gateway": "paddle", "csrf": csrf}
        )
        assert chosen.status_code == 303, chosen.text
        checkout = chosen.headers["location"]
        assert checkout.startswith(f"{billing.merchant.sandbox_url}/paddle/checkout/")
        paid = await billing.http.post(checkout, json={"outcome": "paid"})
        assert paid.json()["redirect"] == f"{billing.url}/usage?notice=checkout_done"
        await billing.settle()
        page = await web.get("/usage?notice=checkout_done")
        assert "Growth plan" in page.text and "Checkout finished — activating" in page.text
        assert "Choose Growth with" not in page.text and "current plan" in page.text
        assert 'aria-label="Switch to Pro now"' in page.text and "Cancel now" in page.text
        # Paddle changes plans at once only: no later change is offered, nor taken.
        assert "Switch to Pro at the end of the period" not in page.text
        for when in ("period_end", "tomorrow"):
            refused = await web.post(
                "/billing/change", data={"plan": "PRO", "when": when, "csrf": csrf}
            )
            assert refused.status_code == 400, (when, refused.status_code)
        assert (await billing.view())["plan_type"] == "GROWTH"

        again = await web.post(
            "/billing/checkout", data={"plan": "PRO", "gateway": "razorpay", "csrf": csrf}
        )
        assert again.status_code == 409 and "is running" in again.text

        upgraded = await web.post("/billing/change", data={"plan": "PRO", "csrf": csrf})
        assert upgraded.status_code == 303
        assert upgraded.headers["location"] == "/usage?notice=changed#plan"
        assert (await billing.view())["plan_type"] == "PRO"

        ending = await web.post("/billing/cancel", data={"at_period_end": "true", "csrf": csrf})
        assert ending.status_code == 303
        page = await web.get("/usage")
        assert "— ends on" in page.text and "Keep the subscription" in page.text
        kept = await web.post("/billing/resume", data={"csrf": csrf})
        assert kept.status_code == 303
        assert (await billing.view())["cancel_at_period_end"] is False

        ended = await web.post("/billing/cancel", data={"at_period_end": "false", "csrf": csrf})
        assert ended.status_code == 303
    view = await billing.view()
    assert view["status"] == "cancelled" and view["entitled"] is False
    assert view["entitlement_reason"] == "cancelled"


async def test_an_account_that_is_not_entitled_is_told_why_on_the_usage_page_and_the_inbox(
    billing: Billing,
) -> None:
    # The trial's two weeks are over.
    async with unit_of_work(billing.sessions) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.user_id == billing.merchant.user_id)
            .values(
                current_period_start=Subscription.current_period_start - timedelta(days=15),
                current_period_end=Subscription.current_period_end - timedelta(days=15),
            )
        )
    view = await billing.view()
    assert view["entitled"] is False and view["entitlement_reason"] == "trial_ended"
    async with signed_in(billing) as web:
        inbox = await web.get("/inbox")
        assert inbox.status_code == 200
        assert "Your free trial has ended." in inbox.text
        assert 'href="/usage#plans"' in inbox.text
        usage = await web.get("/usage")
        assert 'data-reason="trial_ended"' in usage.text and 'href="#plans"' in usage.text
        assert 'aria-label="Choose Growth with Razorpay"' in usage.text
    # A paid plan makes it entitled again, and the banner goes.
    await billing.pay("razorpay")
    async with signed_in(billing) as web:
        assert "not-entitled" not in (await web.get("/inbox")).text
