"""Gateway webhooks end to end over loopback HTTP: the API served by uvicorn, a worker on
the Temporal dev server, the real PostgreSQL; payloads built and signed here in the
vendors' formats, and the gateway clients (the official SDKs) against the sandbox's
Razorpay and Paddle stand-ins, whose webhooks come back to the served API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.billing import PlanCatalog
from integrations.billing_gateways import billing_gateways, plan_catalog
from integrations.offline_suggester import OfflineSuggester
from integrations.sandbox_mailer import NoMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import PlanType, SubscriptionStatus
from kernel.errors import IntegrationError, Refused
from kernel.settings import Settings
from models import BillingEvent, Event, Subscription, UsageRecord
from models.db import unit_of_work
from sandbox.server import Sandbox, serve_app, serving
from services.accounts import create_user
from services.billing_apply import apply_snapshot
from services.billing_webhooks import reconcile_unprocessed_billing_events
from tests.pipeline import (
    PADDLE_WEBHOOK_SECRET,
    RAZORPAY_WEBHOOK_SECRET,
    billing_settings,
    configure_gateways,
    gateway_id,
)
from worker import WorkerDependencies, build_worker

WAIT_S = 20
# Whole seconds, as Razorpay's clock: the first cycle began 40 days ago, the second 10.
T0 = int(time.time()) - 40 * 86400
R1 = T0 + 30 * 86400


@dataclass
class Desk:
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient  # to the served API
    sandbox: Sandbox
    sandbox_url: str
    settings: Settings
    user_id: uuid.UUID
    temporal: Client
    task_queue: str

    async def subscription(self) -> Subscription:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(Subscription).where(Subscription.user_id == self.user_id)
                )
            ).scalar_one()

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessions() as session:
            return (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()

    async def events(self, prefix: str = "subscription.") -> list[str]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Event.type)
                .where(Event.user_id == self.user_id, Event.type.startswith(prefix))
                .order_by(Event.created_at, Event.id)
            )
            return list(rows.scalars())

    async def processed(self, gateway: str, event_id: str) -> BillingEvent:
        async with asyncio.timeout(WAIT_S):
            while True:
                async with self.sessions() as session:
                    row = (
                        await session.execute(
                            select(BillingEvent).where(
                                BillingEvent.gateway == gateway, BillingEvent.event_id == event_id
                            )
                        )
                    ).scalar_one_or_none()
                if row is not None and row.processed_at is not None:
                    return row
                await asyncio.sleep(0.05)

    async def all_processed(self) -> None:
        """Every stored delivery applied (after the sandbox has delivered its webhooks)."""
        await self.sandbox.razorpay.settle()
        await self.sandbox.paddle.settle()
        async with asyncio.timeout(WAIT_S):
            while True:
                if not await self.count(BillingEvent, BillingEvent.processed_at.is_(None)):
                    return
                await asyncio.sleep(0.05)

    async def razorpay(self, event: str, entity: dict[str, Any], **kw: Any) -> httpx.Response:
        event_id = kw.pop("event_id", None) or f"evt_{uuid.uuid4().hex[:14]}"
        body, headers = razorpay_delivery(event, entity, event_id=event_id, **kw)
        return await self.http.post("/billing/webhooks/razorpay", content=body, headers=headers)

    async def paddle(self, event_type: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
        body, headers = paddle_delivery(event_type, data, **kw)
        return await self.http.post("/billing/webhooks/paddle", content=body, headers=headers)

    async def deliver(self, gateway: str, event: str, data: dict[str, Any], **kw: Any) -> None:
        """Send a signed event and wait until its workflow has applied it."""
        send = self.razorpay if gateway == "razorpay" else self.paddle
        response = await send(event, data, **kw)
        assert response.status_code == 200, response.text
        await self.processed(gateway, response.json()["event_id"])


# --- the vendors' formats, signed as they sign them ------------------------------------------


def razorpay_entity(user_id: uuid.UUID, status: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": "sub_TestRzp0001",
        "entity": "subscription",
        "plan_id": gateway_id("razorpay", PlanType.GROWTH),
        "customer_id": "cust_TestRzp0001",
        "status": status,
        "current_start": T0,
        "current_end": T0 + 30 * 86400,
        "ended_at": None,
        "quantity": 1,
        "notes": {"user_id": str(user_id)},
        "end_at": T0 + 120 * 30 * 86400,
        "total_count": 120,
        "paid_count": 1,
    } | changes


def razorpay_delivery(
    event: str,
    entity: dict[str, Any],
    *,
    event_id: str,
    at: int = T0,
    secret: str = RAZORPAY_WEBHOOK_SECRET,
    payment: bool = False,
) -> tuple[bytes, dict[str, str]]:
    payload: dict[str, Any] = {"subscription": {"entity": entity}}
    if payment:
        payload["payment"] = {"entity": {"id": "pay_Test0001", "status": "captured"}}
    body = json.dumps(
        {
            "entity": "event",
            "account_id": "acc_Test0001",
            "event": event,
            "contains": list(payload),
            "payload": payload,
            "created_at": at,
        }
    ).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": signature,
        "x-razorpay-event-id": event_id,
    }


def iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def paddle_data(user_id: uuid.UUID, status: str, at: int, **changes: Any) -> dict[str, Any]:
    price = gateway_id("paddle", PlanType.GROWTH)
    return {
        "id": "sub_01testpaddle",
        "status": status,
        "customer_id": "ctm_01testpaddle",
        "updated_at": iso(at),
        "current_billing_period": {"starts_at": iso(T0), "ends_at": iso(T0 + 30 * 86400)},
        "scheduled_change": None,
        "canceled_at": None,
        "items": [{"quantity": 1, "price": {"id": price}}],
        "custom_data": {"user_id": str(user_id)},
    } | changes


def paddle_delivery(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    ts: int | None = None,
    secret: str = PADDLE_WEBHOOK_SECRET,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "event_id": event_id or f"evt_{uuid.uuid4().hex}",
            "event_type": event_type,
            "occurred_at": data.get("updated_at"),
            "notification_id": f"ntf_{uuid.uuid4().hex}",
            "data": data,
        }
    ).encode()
    stamp = int(time.time()) if ts is None else ts
    digest = hmac.new(secret.encode(), f"{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Paddle-Signature": f"ts={stamp};h1={digest}"}


# --- the desk: sandbox, served API, worker ---------------------------------------------------


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    queue = f"billing-{uuid.uuid4().hex[:8]}"
    sandbox = Sandbox()
    async with serving(sandbox) as sandbox_url:
        settings = Settings(_env_file=None).model_copy(update=billing_settings(sandbox_url))  # type: ignore[call-arg]
        app = create_app(own_sessions.kw["bind"], temporal_dev.client, settings, task_queue=queue)
        store = ShopifyAdmin()
        deps = WorkerDependencies(
            own_sessions, store, NoMailer(), OfflineSuggester(), settings=settings
        )
        worker = build_worker(temporal_dev.client, deps, task_queue=queue)
        async with worker, serve_app(app) as api_url, httpx.AsyncClient(base_url=api_url) as http:
            configure_gateways(sandbox, api_url)
            async with unit_of_work(own_sessions) as session:
                user = await create_user(session, f"billing-{uuid.uuid4().hex[:8]}@example.com")
            yield Desk(
                own_sessions,
                http,
                sandbox,
                sandbox_url,
                settings,
                user.id,
                temporal_dev.client,
                queue,
            )
            await sandbox.razorpay.settle()
            await sandbox.paddle.settle()
        await store.aclose()


# --- signatures ------------------------------------------------------------------------------


async def test_a_forged_signature_is_refused_and_nothing_is_stored(desk: Desk) -> None:
    before = await desk.subscription()
    entity = razorpay_entity(desk.user_id, "active")
    forged = await desk.razorpay("subscription.activated", entity, secret="not-the-secret")
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "unauthorized"
    body, headers = razorpay_delivery("subscription.activated", entity, event_id="evt_tamper")
    tampered = body.replace(b'"active"', b'"halted"')
    answer = await desk.http.post("/billing/webhooks/razorpay", content=tampered, headers=headers)
    assert answer.status_code == 401
    paddle = await desk.paddle(
        "subscription.activated", paddle_data(desk.user_id, "active", T0), secret="forged"
    )
    assert paddle.status_code == 401
    unsigned = await desk.http.post("/billing/webhooks/paddle", content=b"{}")
    assert unsigned.status_code == 401
    assert await desk.count(BillingEvent) == 0
    after = await desk.subscription()
    assert (after.plan_type, after.status, after.payment_gateway) == (
        before.plan_type,
        before.status,
        None,
    )
    assert await desk.events() == ["subscription.trial_started"]


async def test_a_signed_event_in_an_unknown_shape_is_refused_clearly(desk: Desk) -> None:
    """Signed, but not the documented shape: a 422 naming it, never a 500; nothing stored."""
    entity = razorpay_entity(desk.user_id, "active")
    del entity["id"]
    no_id = await desk.razorpay("subscription.activated", entity)
    unstamped = await desk.paddle(
        "subscription.activated", paddle_data(desk.user_id, "active", T0) | {"updated_at": "x"}
    )
    for answer in (no_id, unstamped):
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "bad_webhook"
        assert "cannot be read" in answer.json()["error"]["message"]
    assert await desk.count(BillingEvent) == 0
    assert (await desk.subscription()).plan_type is PlanType.TRIAL


async def test_a_stale_paddle_signature_is_refused(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's Verifier skips its own time check under TEST_MODE=1; ours still holds.
    monkeypatch.setenv("TEST_MODE", "1")
    data = paddle_data(desk.user_id, "active", T0)
    for stamp in (int(time.time()) - 30, int(time.time()) + 30):
        answer = await desk.paddle("subscription.activated", data, ts=stamp)
        assert answer.status_code == 401, answer.text
    assert await desk.count(BillingEvent) == 0
    assert (await desk.subscription()).plan_type is PlanType.TRIAL


async def test_a_gateway_without_its_webhook_secret_answers_503(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    app = create_app(own_sessions.kw["bind"], None, settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        for name in ("razorpay", "paddle"):
            answer = await http.post(f"/billing/webhooks/{name}", content=b"{}")
            assert answer.status_code == 503
            assert "not configured" in answer.json()["error"]["message"]
    async with own_sessions() as session:
        assert (await session.execute(select(func.count()).select_from(BillingEvent))).scalar() == 0


async def test_without_temporal_the_delivery_is_kept_and_a_redelivery_applies_it(
    desk: Desk,
) -> None:
    offline = create_app(desk.sessions.kw["bind"], None, desk.settings)
    body, headers = razorpay_delivery(
        "subscription.activated", razorpay_entity(desk.user_id, "active"), event_id="evt_later"
    )
    async with serve_app(offline) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/billing/webhooks/razorpay", content=body, headers=headers)
    assert answer.status_code == 503
    assert await desk.count(BillingEvent, BillingEvent.processed_at.is_(None)) == 1
    assert (await desk.subscription()).plan_type is PlanType.TRIAL
    # Nothing is started for a delivery the API may still be starting.
    assert await reconcile_unprocessed_billing_events(desk.sessions, desk.temporal) == 0
    # Razorpay delivers it again; this API can start its workflow.
    again = await desk.http.post("/billing/webhooks/razorpay", content=body, headers=headers)
    assert again.status_code == 200 and again.json() == {"event_id": "evt_later", "duplicate": True}
    await desk.processed("razorpay", "evt_later")
    assert (await desk.subscription()).plan_type is PlanType.GROWTH


async def test_the_reconciler_starts_what_the_api_could_not(desk: Desk) -> None:
    offline = create_app(desk.sessions.kw["bind"], None, desk.settings)
    body, headers = razorpay_delivery(
        "subscription.activated", razorpay_entity(desk.user_id, "active"), event_id="evt_lost"
    )
    async with serve_app(offline) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.post("/billing/webhooks/razorpay", content=body, headers=headers)
    assert answer.status_code == 503
    started = await reconcile_unprocessed_billing_events(
        desk.sessions, desk.temporal, task_queue=desk.task_queue, grace=timedelta(0)
    )
    assert started == 1
    await desk.processed("razorpay", "evt_lost")
    assert (await desk.subscription()).plan_type is PlanType.GROWTH
    assert (
        await reconcile_unprocessed_billing_events(
            desk.sessions, desk.temporal, task_queue=desk.task_queue, grace=timedelta(0)
        )
        == 0
    )


# --- dedupe and order -----------------------------------------------------------------------


async def test_a_duplicate_event_is_stored_once_and_applied_once(desk: Desk) -> None:
    entity = razorpay_entity(desk.user_id, "active")
    first = await desk.razorpay("subscription.activated", entity, event_id="evt_dup")
    assert first.status_code == 200 and first.json()["duplicate"] is False
    await desk.processed("razorpay", "evt_dup")
    second = await desk.razorpay("subscription.activated", entity, event_id="evt_dup")
    assert second.status_code == 200 and second.json()["duplicate"] is True
    # The same news under another event id (activated, then charged) is a second row, no change.
    await desk.deliver("razorpay", "subscription.charged", entity, payment=True)
    assert await desk.count(BillingEvent) == 2
    assert await desk.events() == ["subscription.trial_started", "subscription.activated"]


async def test_razorpay_events_out_of_order_never_move_backwards(desk: Desk) -> None:
    user = desk.user_id
    renewed = {"current_start": R1, "current_end": R1 + 30 * 86400}
    # charged (of the second cycle) before activated.
    await desk.deliver(
        "razorpay", "subscription.charged", razorpay_entity(user, "active", **renewed), at=R1 + 600
    )
    await desk.deliver("razorpay", "subscription.activated", razorpay_entity(user, "active"), at=T0)
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.active
    assert sub.current_period_start == datetime.fromtimestamp(R1, UTC)
    # halted before pending.
    await desk.deliver(
        "razorpay", "subscription.halted", razorpay_entity(user, "halted", **renewed), at=R1 + 900
    )
    await desk.deliver(
        "razorpay", "subscription.pending", razorpay_entity(user, "pending", **renewed), at=R1 + 800
    )
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.past_due
    assert sub.metadata_ is not None and sub.metadata_["gateway_status"] == "halted"
    assert sub.metadata_["past_due_since"] == datetime.fromtimestamp(R1 + 800, UTC).isoformat()
    # cancelled, then an old active.
    ended = {**renewed, "ended_at": R1 + 1000}
    await desk.deliver(
        "razorpay",
        "subscription.cancelled",
        razorpay_entity(user, "cancelled", **ended),
        at=R1 + 1000,
    )
    await desk.deliver(
        "razorpay", "subscription.charged", razorpay_entity(user, "active", **renewed), at=R1 + 700
    )
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.cancelled
    assert sub.current_period_end == datetime.fromtimestamp(R1 + 1000, UTC)
    assert await desk.events() == [
        "subscription.trial_started",
        "subscription.activated",
        "subscription.past_due",
        "subscription.updated",  # the late pending moved past_due_since back
        "subscription.cancelled",
    ]


@pytest.mark.parametrize(
    ("status", "expected", "event"),
    [
        ("authenticated", SubscriptionStatus.active, None),  # not paid: the trial's status
        ("active", SubscriptionStatus.active, "subscription.activated"),
        ("pending", SubscriptionStatus.past_due, "subscription.past_due"),
        ("halted", SubscriptionStatus.past_due, "subscription.past_due"),
        ("paused", SubscriptionStatus.cancelled, "subscription.cancelled"),
        ("cancelled", SubscriptionStatus.cancelled, "subscription.cancelled"),
        ("completed", SubscriptionStatus.expired, "subscription.expired"),
    ],
)
async def test_every_razorpay_state_maps_to_its_seed_status(
    desk: Desk, status: str, expected: SubscriptionStatus, event: str | None
) -> None:
    await desk.deliver(
        "razorpay", "subscription.activated", razorpay_entity(desk.user_id, "active")
    )
    if status == "authenticated":
        # A second, unpaid subscription does not replace the paid one.
        other = razorpay_entity(desk.user_id, "authenticated", id="sub_TestRzp0002")
        await desk.deliver("razorpay", "subscription.authenticated", other, at=T0 + 60)
    else:
        await desk.deliver(
            "razorpay", f"subscription.{status}", razorpay_entity(desk.user_id, status), at=T0 + 60
        )
    sub = await desk.subscription()
    assert sub.status is expected
    assert sub.gateway_subscription_id == "sub_TestRzp0001"
    events = await desk.events()
    assert events[-1] == (event or "subscription.activated")


@pytest.mark.parametrize(
    ("status", "expected", "extra"),
    [
        ("trialing", SubscriptionStatus.active, {}),
        ("past_due", SubscriptionStatus.past_due, {}),
        ("paused", SubscriptionStatus.cancelled, {}),
        ("canceled", SubscriptionStatus.cancelled, {"current_billing_period": None}),
    ],
)
async def test_every_paddle_state_maps_to_its_seed_status(
    desk: Desk, status: str, expected: SubscriptionStatus, extra: dict[str, Any]
) -> None:
    await desk.deliver("paddle", "subscription.activated", paddle_data(desk.user_id, "active", T0))
    if status == "canceled":
        extra = {**extra, "canceled_at": iso(T0 + 120)}
    data = paddle_data(desk.user_id, status, T0 + 120, **extra)
    await desk.deliver("paddle", f"subscription.{status}", data)
    sub = await desk.subscription()
    assert sub.status is expected
    assert sub.metadata_ is not None and sub.metadata_["gateway_status"] == status
    if status == "canceled":
        assert sub.current_period_end == datetime.fromtimestamp(T0 + 120, UTC)


async def test_a_paddle_scheduled_cancel_sets_cancel_at_period_end(desk: Desk) -> None:
    await desk.deliver("paddle", "subscription.activated", paddle_data(desk.user_id, "active", T0))
    change = {"action": "cancel", "effective_at": iso(T0 + 30 * 86400), "resume_at": None}
    await desk.deliver(
        "paddle",
        "subscription.updated",
        paddle_data(desk.user_id, "active", T0 + 60, scheduled_change=change),
    )
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.active
    assert sub.metadata_ is not None and sub.metadata_["cancel_at_period_end"] is True
    assert (await desk.events())[-1] == "subscription.cancel_scheduled"
    # A transaction that names no subscription says nothing about one.
    await desk.deliver("paddle", "transaction.created", {"id": "txn_01", "status": "ready"})
    assert (await desk.subscription()).metadata_ == sub.metadata_


async def test_razorpay_charged_rolls_the_period_and_opens_its_usage_record(desk: Desk) -> None:
    user = desk.user_id
    await desk.deliver(
        "razorpay", "subscription.charged", razorpay_entity(user, "active"), payment=True
    )
    renewed = razorpay_entity(
        user, "active", current_start=T0 + 30 * 86400, current_end=T0 + 60 * 86400, paid_count=2
    )
    await desk.deliver("razorpay", "subscription.charged", renewed, at=T0 + 60, payment=True)
    sub = await desk.subscription()
    assert sub.current_period_start == datetime.fromtimestamp(T0 + 30 * 86400, UTC)
    assert sub.current_period_end == datetime.fromtimestamp(T0 + 60 * 86400, UTC)
    async with desk.sessions() as session:
        periods = (
            await session.execute(
                select(UsageRecord.period_start)
                .where(UsageRecord.subscription_id == sub.id)
                .order_by(UsageRecord.period_start)
            )
        ).scalars()
        starts = list(periods)
    # The trial's record (from its first use) is history; each paid period has its own.
    assert datetime.fromtimestamp(T0, UTC) in starts
    assert datetime.fromtimestamp(T0 + 30 * 86400, UTC) in starts
    assert (await desk.events())[-1] == "subscription.period_changed"


async def test_the_seed_payment_fields_are_written(desk: Desk) -> None:
    await desk.deliver(
        "razorpay", "subscription.activated", razorpay_entity(desk.user_id, "active")
    )
    sub = await desk.subscription()
    assert sub.plan_type is PlanType.GROWTH
    assert sub.payment_gateway == "razorpay"
    assert sub.gateway_subscription_id == "sub_TestRzp0001"
    assert sub.gateway_customer_id == "cust_TestRzp0001"
    assert sub.gateway_plan_id == gateway_id("razorpay", PlanType.GROWTH)
    assert sub.metadata_ == {
        "gateway_status": "active",
        "as_of": datetime.fromtimestamp(T0, UTC).isoformat(),
        "as_of_from_api": False,
        "cancel_at_period_end": False,
        "past_due_since": None,
        "scheduled_plan": None,
    }


# --- the gateway clients against the stand-ins ----------------------------------------------


async def pay(desk: Desk, url: str, delivery: str = "ordered") -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, json={"outcome": "paid", "delivery": delivery})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def apply_now(desk: Desk, snapshot: Any) -> None:
    async with unit_of_work(desk.sessions) as session:
        await apply_snapshot(session, snapshot, source="api", catalog=_catalog(desk))


def _catalog(desk: Desk) -> PlanCatalog:
    return plan_catalog(desk.settings)


async def test_razorpay_through_the_sdk_checkout_change_cancel(desk: Desk) -> None:
    gateway = billing_gateways(desk.settings)["razorpay"]
    checkout = await gateway.checkout(
        user_id=desk.user_id, email="m@example.com", plan=PlanType.GROWTH, return_url="http://x/r"
    )
    assert checkout.subscription_id and checkout.url.startswith(desk.sandbox_url)
    answer = await pay(desk, checkout.url, delivery="shuffled")
    redirect = httpx.URL(answer["redirect"])
    assert gateway.verify_checkout_signature(
        payment_id=redirect.params["razorpay_payment_id"],
        subscription_id=redirect.params["razorpay_subscription_id"],
        signature=redirect.params["razorpay_signature"],
    )
    assert not gateway.verify_checkout_signature(
        payment_id="pay_other", subscription_id=checkout.subscription_id, signature="0" * 64
    )
    await desk.all_processed()
    sub = await desk.subscription()
    assert (sub.plan_type, sub.status) == (PlanType.GROWTH, SubscriptionStatus.active)
    assert sub.gateway_subscription_id == checkout.subscription_id
    assert sub.gateway_customer_id and sub.gateway_customer_id.startswith("cust_")

    await apply_now(
        desk, await gateway.change_plan(checkout.subscription_id, PlanType.PRO, at_period_end=False)
    )
    await desk.all_processed()
    assert (await desk.subscription()).plan_type is PlanType.PRO
    snapshot = await gateway.change_plan(
        checkout.subscription_id, PlanType.STARTER, at_period_end=True
    )
    await apply_now(desk, snapshot)
    sub = await desk.subscription()
    assert sub.plan_type is PlanType.PRO and sub.metadata_["scheduled_plan"] == "STARTER"

    await apply_now(desk, await gateway.cancel(checkout.subscription_id, at_period_end=True))
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.active and sub.metadata_["cancel_at_period_end"]
    with pytest.raises(Refused):
        await gateway.resume(checkout.subscription_id)
    await apply_now(desk, await gateway.cancel(checkout.subscription_id, at_period_end=False))
    await desk.all_processed()
    assert (await desk.subscription()).status is SubscriptionStatus.cancelled
    with pytest.raises(IntegrationError, match="Razorpay refused to cancel"):
        await gateway.cancel(checkout.subscription_id, at_period_end=False)


async def test_razorpay_renewals_through_the_stand_in(desk: Desk) -> None:
    gateway = billing_gateways(desk.settings)["razorpay"]
    checkout = await gateway.checkout(
        user_id=desk.user_id, email="m@example.com", plan=PlanType.STARTER, return_url="http://x"
    )
    await pay(desk, checkout.url, delivery="duplicated")
    await desk.all_processed()
    first = await desk.subscription()
    renew = f"{desk.sandbox_url}/razorpay/_sandbox/subscriptions/{checkout.subscription_id}/renew"
    async with httpx.AsyncClient() as client:
        assert (await client.post(renew, json={"outcome": "failed"})).status_code == 200
        await desk.all_processed()
        failed = await desk.subscription()
        assert failed.status is SubscriptionStatus.past_due
        assert failed.metadata_ and failed.metadata_["past_due_since"]
        assert (await client.post(renew, json={"outcome": "paid"})).status_code == 200
    await desk.all_processed()
    paid = await desk.subscription()
    assert paid.status is SubscriptionStatus.active and paid.metadata_["past_due_since"] is None
    assert paid.current_period_end > first.current_period_end
    assert await desk.count(UsageRecord, UsageRecord.period_start == paid.current_period_start) == 1


async def test_paddle_through_the_sdk_checkout_change_cancel_resume(desk: Desk) -> None:
    gateway = billing_gateways(desk.settings)["paddle"]
    checkout = await gateway.checkout(
        user_id=desk.user_id, email="m@example.com", plan=PlanType.GROWTH, return_url="http://x/u"
    )
    assert checkout.url.startswith(desk.sandbox_url) and checkout.subscription_id is None
    answer = await pay(desk, checkout.url, delivery="shuffled")
    assert answer["redirect"] == "http://x/u"
    await desk.all_processed()
    sub = await desk.subscription()
    assert (sub.plan_type, sub.status, sub.payment_gateway) == (
        PlanType.GROWTH,
        SubscriptionStatus.active,
        "paddle",
    )
    assert sub.gateway_subscription_id and sub.gateway_customer_id
    sub_id = sub.gateway_subscription_id

    await apply_now(desk, await gateway.change_plan(sub_id, PlanType.PRO, at_period_end=False))
    assert (await desk.subscription()).plan_type is PlanType.PRO
    await apply_now(desk, await gateway.cancel(sub_id, at_period_end=True))
    assert (await desk.subscription()).metadata_["cancel_at_period_end"] is True
    await apply_now(desk, await gateway.resume(sub_id))
    sub = await desk.subscription()
    assert (
        sub.metadata_["cancel_at_period_end"] is False and sub.status is SubscriptionStatus.active
    )
    await desk.all_processed()

    renew = f"{desk.sandbox_url}/paddle/_sandbox/subscriptions/{sub_id}/renew"
    async with httpx.AsyncClient() as client:
        assert (await client.post(renew, json={"outcome": "failed"})).status_code == 200
    await desk.all_processed()
    assert (await desk.subscription()).status is SubscriptionStatus.past_due

    await apply_now(desk, await gateway.cancel(sub_id, at_period_end=False))
    await desk.all_processed()
    sub = await desk.subscription()
    assert sub.status is SubscriptionStatus.cancelled
    assert sub.current_period_end <= datetime.now(UTC)
    with pytest.raises(IntegrationError, match="Paddle refused"):
        await gateway.change_plan("sub_missing", PlanType.PRO, at_period_end=False)


async def test_a_gateway_that_cannot_be_reached_is_a_retryable_error(desk: Desk) -> None:
    settings = desk.settings.model_copy(
        update={"razorpay_api_url": "http://127.0.0.1:9", "paddle_api_url": "http://127.0.0.1:9"}
    )
    for gateway in billing_gateways(settings).values():
        with pytest.raises(IntegrationError) as caught:
            await gateway.cancel("sub_x", at_period_end=True)
        assert caught.value.retryable and "could not be reached" in caught.value.message
