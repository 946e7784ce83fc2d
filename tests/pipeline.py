"""A merchant wired to the sandbox stand-ins, and a worker for its messages.

Shared by the workflow tests (time-skipping server) and the HTTP tests (dev server).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import make_msgid
from typing import Any

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.gmail_access import GmailAccess
from domain.plans import PAID_PLANS, PLAN_LIMITS
from integrations.offline_suggester import OfflineSuggester
from integrations.ports import MailPort, SuggesterPort
from integrations.sandbox_mailer import SandboxMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ConnectionType, MessageDirection, PlanType
from kernel.settings import Settings
from kernel.values import ShopTarget
from models import Connection, CustomEmailMetadata, Message, Thread
from models.db import unit_of_work
from models.shopify_sync import upsert_order_snapshots
from sandbox.server import Sandbox, serving, shop_base
from sandbox.shopify.state import Shop
from services.accounts import create_user
from worker import WorkerDependencies, build_worker, google_oauth_client
from workflows.contracts import message_workflow_id

TEST_APP_KEY = "deskpilot-tests"


GOOGLE_CLIENT_ID = "deskpilot-tests.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "GOCSPX-deskpilot-tests"
GMAIL_TOPIC = "projects/deskpilot-tests/topics/gmail"
PUSH_SECRET = "push-secret-for-tests"

# Both payment gateways, at the sandbox's stand-ins: our paid plans at each, and the keys.
RAZORPAY_KEY_ID = "rzp_test_deskpilottests"
RAZORPAY_KEY_SECRET = "razorpay-key-secret-for-tests"
RAZORPAY_WEBHOOK_SECRET = "razorpay-webhook-secret-for-tests"
PADDLE_API_KEY = "pdl_sdbx_apikey_deskpilottests"
PADDLE_WEBHOOK_SECRET = "pdl_ntfset_deskpilottests"


def gateway_id(gateway: str, plan: PlanType) -> str:
    """The tests' Razorpay plan id or Paddle price id of a paid plan."""
    return f"{'plan' if gateway == 'razorpay' else 'pri'}_tests_{plan.value.lower()}"


def billing_settings(sandbox_url: str) -> dict[str, Any]:
    """The Settings fields that point both gateways at the sandbox."""
    return {
        "razorpay_key_id": RAZORPAY_KEY_ID,
        "razorpay_key_secret": SecretStr(RAZORPAY_KEY_SECRET),
        "razorpay_webhook_secret": SecretStr(RAZORPAY_WEBHOOK_SECRET),
        "razorpay_api_url": f"{sandbox_url}/razorpay",
        "paddle_api_key": SecretStr(PADDLE_API_KEY),
        "paddle_webhook_secret": SecretStr(PADDLE_WEBHOOK_SECRET),
        "paddle_api_url": f"{sandbox_url}/paddle",
        **{f"razorpay_plan_{p.value.lower()}": gateway_id("razorpay", p) for p in PAID_PLANS},
        **{f"paddle_price_{p.value.lower()}": gateway_id("paddle", p) for p in PAID_PLANS},
    }


def configure_gateways(sandbox: Sandbox, api_url: str | None) -> None:
    """The stand-ins know our keys and plans; with `api_url` they send their signed
    webhooks to that app's /billing/webhooks/<gateway>, without it they send none."""
    hooks = None if api_url is None else f"{api_url.rstrip('/')}/billing/webhooks"
    sandbox.razorpay.configure(
        key_id=RAZORPAY_KEY_ID,
        key_secret=RAZORPAY_KEY_SECRET,
        webhook_secret=RAZORPAY_WEBHOOK_SECRET,
        webhook_url=hooks and f"{hooks}/razorpay",
    )
    sandbox.paddle.configure(
        api_key=PADDLE_API_KEY,
        webhook_secret=PADDLE_WEBHOOK_SECRET,
        webhook_url=hooks and f"{hooks}/paddle",
    )
    for plan in PAID_PLANS:
        rupees, dollars = (PLAN_LIMITS[plan].prices[name] for name in ("razorpay", "paddle"))
        sandbox.razorpay.add_plan(
            gateway_id("razorpay", plan), rupees.amount_minor, rupees.currency
        )
        sandbox.paddle.add_price(gateway_id("paddle", plan), dollars.amount_minor, dollars.currency)


def sandbox_settings(sandbox_url: str, **changes: Any) -> Settings:
    """Settings that point Google's endpoints (OAuth, Gmail, Pub/Sub) and both payment
    gateways at the sandbox."""
    return Settings().model_copy(
        update={
            **billing_settings(sandbox_url),
            "gmail_client_id": GOOGLE_CLIENT_ID,
            "gmail_client_secret": SecretStr(GOOGLE_CLIENT_SECRET),
            "google_auth_url": f"{sandbox_url}/o/oauth2/v2/auth",
            "google_token_url": f"{sandbox_url}/token",
            "gmail_api_base_url": sandbox_url,
            "gmail_pubsub_topic": GMAIL_TOPIC,
            "gmail_push_secret": SecretStr(PUSH_SECRET),
            **changes,
        }
    )


@dataclass
class Merchant:
    user_id: uuid.UUID
    shop: Shop  # the sandbox store's state: orders, ledger of every effect
    sandbox: Sandbox
    sandbox_url: str
    alias: str
    orders: dict[str, dict[str, Any]]  # "1001" -> name, email, cancelled, refundable, ...
    settings: Settings = field(default_factory=Settings)

    def refunds(self) -> list[dict[str, Any]]:
        return [entry for entry in self.shop.ledger if entry["type"] == "refund"]

    def deliver_billing_webhooks(self, api_url: str) -> None:
        """The gateways' stand-ins send their webhooks to the app served at `api_url`."""
        configure_gateways(self.sandbox, api_url)

    def number(self, wanted: Callable[[dict[str, Any]], bool]) -> str:
        """The first seeded order number whose facts satisfy `wanted`."""
        return next(n for n, facts in self.orders.items() if wanted(facts))


async def create_merchant(
    sessions: async_sessionmaker[AsyncSession], sandbox: Sandbox, sandbox_url: str
) -> Merchant:
    """A merchant whose Shopify connection points at a seeded sandbox store, with the
    store's orders synced through the Admin API as the product does."""
    domain = f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"
    token = f"shpat_{uuid.uuid4().hex}"
    if TEST_APP_KEY not in sandbox.shopify.state.apps:
        sandbox.shopify.state.register_app(TEST_APP_KEY, "test-app-secret")
    shop = sandbox.shopify.add_shop(domain, api_key=TEST_APP_KEY, token=token)
    target = ShopTarget(
        shop_domain=domain, access_token=token, api_base=shop_base(sandbox_url, domain)
    )
    admin = ShopifyAdmin()
    try:
        snapshots = await admin.list_orders(target)
    finally:
        await admin.aclose()
    orders = {
        o.name.lstrip("#"): {
            "name": o.name,
            "email": o.email,
            "cancelled": o.cancelled,
            "refundable": o.refundable,
            "fulfillment_status": o.fulfillment_status,
            "financial_status": o.financial_status,
        }
        for o in sorted(snapshots, key=lambda o: o.name)
    }
    alias = f"store-{uuid.uuid4().hex[:6]}@inbound.test"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, f"owner-{uuid.uuid4().hex[:6]}@store.test", "Owner")
        shopify = Connection(
            user_id=user.id,
            type=ConnectionType.SHOPIFY,
            access_token=token,
            shop_domain=domain,
            metadata_={"apiBase": target.api_base},
        )
        mailbox = Connection(
            user_id=user.id,
            type=ConnectionType.CUSTOM_EMAIL,
            access_token="-",
            metadata_=CustomEmailMetadata(
                alias=alias,
                domain="inbound.test",
                shop_domain=domain,
                support_email="help@store.test",
                store_name="Test Store",
            ).to_json(),
        )
        session.add_all([shopify, mailbox])
        await session.flush()
        await upsert_order_snapshots(session, shopify, snapshots)
    return Merchant(user.id, shop, sandbox, sandbox_url, alias, orders)


async def store_message(
    sessions: async_sessionmaker[AsyncSession],
    merchant: Merchant,
    *,
    sender: str,
    subject: str,
    text: str,
    thread_id: uuid.UUID | None = None,
    headers: dict[str, Any] | None = None,
    started: bool = False,
    hidden: str = "",
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """Store an inbound message as ingest would; returns (message id, thread id, workflow id)."""
    rfc_id = make_msgid(domain="customer.test")
    async with unit_of_work(sessions) as session:
        if thread_id is None:
            thread = Thread(
                user_id=merchant.user_id,
                customer_email=sender,
                subject=subject,
                last_message_at=datetime.now(UTC),
            )
            session.add(thread)
            await session.flush()
            thread_id = thread.id
        message = Message(
            user_id=merchant.user_id,
            thread_id=thread_id,
            direction=MessageDirection.INBOUND,
            message_id=rfc_id,
            from_address=sender,
            to_address=merchant.alias,
            subject=subject,
            body_text=text,
            hidden_text=hidden,
            headers={"Message-ID": rfc_id, "From": sender, **(headers or {})},
            sent_at=datetime.now(UTC),
            workflow_id=message_workflow_id(merchant.user_id, rfc_id),
            # True when the test starts the workflow itself, so a reconciler leaves it alone.
            workflow_started_at=datetime.now(UTC) if started else None,
        )
        session.add(message)
        await session.flush()
        return message.id, thread_id, message.workflow_id or ""


@asynccontextmanager
async def running_pipeline(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    *,
    mailer: MailPort | None = None,
    suggester: SuggesterPort | None = None,
) -> AsyncIterator[Merchant]:
    """Sandbox served over loopback, a merchant wired to it, and a worker polling `task_queue`.

    The worker reaches Gmail and Google's OAuth at the sandbox too (`merchant.settings`)."""
    sandbox = Sandbox()
    async with serving(sandbox) as url:
        merchant = await create_merchant(sessions, sandbox, url)
        merchant.settings = sandbox_settings(url)
        configure_gateways(sandbox, None)
        sandbox.google.register_client(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET)
        shopify, sink = ShopifyAdmin(), SandboxMailer(url)
        oauth = google_oauth_client(merchant.settings)
        gmail = GmailAccess(sessions, oauth)
        deps = WorkerDependencies(
            sessions,
            shopify,
            mailer or sink,
            suggester or OfflineSuggester(),
            gmail=gmail,
            settings=merchant.settings,
        )
        worker: Worker = build_worker(client, deps, task_queue=task_queue)
        try:
            async with worker:
                yield merchant
        finally:
            await shopify.aclose()
            await sink.aclose()
            await gmail.aclose()
            if oauth is not None:
                await oauth.aclose()
