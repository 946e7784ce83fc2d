"""The Razorpay and Paddle stand-ins, driven through the vendors' official SDKs over real
loopback HTTP, with their webhooks landing on a real receiver and verified by the SDKs'
own signature checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import paddle_billing
import pytest
import razorpay
from fastapi import FastAPI, Request, Response
from paddle_billing.Entities.Event import Event as PaddleEvent
from paddle_billing.Entities.Shared import CustomData
from paddle_billing.Entities.Subscriptions import (
    SubscriptionEffectiveFrom,
    SubscriptionProrationBillingMode,
)
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Notifications import Secret, Verifier
from paddle_billing.Resources.Subscriptions.Operations import (
    CancelSubscription,
    PauseSubscription,
    ResumeSubscription,
    UpdateSubscription,
)
from paddle_billing.Resources.Subscriptions.Operations.Update import SubscriptionUpdateItem
from paddle_billing.Resources.Transactions.Operations import CreateTransaction
from paddle_billing.Resources.Transactions.Operations.Create import TransactionCreateItem
from starlette.datastructures import Headers

from deskpilot.demo_billing import demo_billing_banner, demo_billing_settings
from kernel.settings import Settings
from sandbox.server import Sandbox, serve_app, serving

KEY_ID, KEY_SECRET, RZP_HOOK_SECRET = "rzp_test_h1", "rzp-key-secret", "rzp-hook-secret"
PADDLE_KEY, PADDLE_HOOK_SECRET = "pdl_sdbx_apikey_h1", "pdl_ntfset_secret"
STARTER, GROWTH = "plan_t_starter", "plan_t_growth"
PRI_STARTER, PRI_GROWTH = "pri_t_starter", "pri_t_growth"


@dataclass
class Hook:
    """One request the receiver got: the raw body and headers, as a web framework has them."""

    body: bytes
    headers: Headers

    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    hooks: list[Hook] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests, to see the retries

    def events(self, key: str) -> list[str]:
        return [h.payload()[key] for h in self.hooks]


@dataclass
class Stack:
    sandbox: Sandbox
    url: str
    rzp_hooks: Receiver
    paddle_hooks: Receiver

    def razorpay(self, secret: str = KEY_SECRET) -> razorpay.Client:
        return razorpay.Client(auth=(KEY_ID, secret), base_url=f"{self.url}/razorpay")

    def paddle(self, key: str = PADDLE_KEY) -> paddle_billing.Client:
        env = SimpleNamespace(base_url=f"{self.url}/paddle")
        return paddle_billing.Client(key, options=paddle_billing.Options(environment=env))

    async def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(url, json=body)


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[tuple[Receiver, Receiver]]:
    app = FastAPI()
    boxes = {"razorpay": Receiver(), "paddle": Receiver()}

    @app.post("/hooks/{gateway}")
    async def hooks(gateway: str, request: Request) -> Response:
        box = boxes[gateway]
        box.hooks.append(Hook(await request.body(), request.headers))
        if box.fail_next:
            box.fail_next -= 1
            return Response(status_code=500)
        return Response(status_code=200)

    async with serve_app(app) as url:
        for name, box in boxes.items():
            box.url = f"{url}/hooks/{name}"
        yield boxes["razorpay"], boxes["paddle"]


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    sandbox = Sandbox()
    async with receiving() as (rzp, pdl), serving(sandbox) as url:
        sandbox.razorpay.configure(
            key_id=KEY_ID,
            key_secret=KEY_SECRET,
            webhook_secret=RZP_HOOK_SECRET,
            webhook_url=rzp.url,
        )
        sandbox.razorpay.add_plan(STARTER, 149900, "INR")
        sandbox.razorpay.add_plan(GROWTH, 399900, "INR")
        sandbox.paddle.configure(
            api_key=PADDLE_KEY, webhook_secret=PADDLE_HOOK_SECRET, webhook_url=pdl.url
        )
        sandbox.paddle.add_price(PRI_STARTER, 1900, "USD")
        sandbox.paddle.add_price(PRI_GROWTH, 4900, "USD")
        sandbox.razorpay.dispatcher.backoff = sandbox.paddle.dispatcher.backoff = 0.01
        yield Stack(sandbox, url, rzp, pdl)


# Razorpay


def rzp_verified(client: razorpay.Client, hook: Hook) -> bool:
    return client.utility.verify_webhook_signature(
        hook.body.decode(), hook.headers["x-razorpay-signature"], RZP_HOOK_SECRET
    )


async def rzp_subscription(stack: Stack, **notes: str) -> dict[str, Any]:
    client = stack.razorpay()
    body = {"plan_id": STARTER, "total_count": 12, "quantity": 1, "customer_notify": 1}
    return await asyncio.to_thread(
        client.subscription.create, {**body, "notes": {"user_id": "u-1", **notes}}
    )


async def rzp_paid(stack: Stack, delivery: str = "ordered") -> dict[str, Any]:
    sub = await rzp_subscription(stack)
    answer = await stack.post(sub["short_url"], {"outcome": "paid", "delivery": delivery})
    assert answer.status_code == 200, answer.text
    await stack.sandbox.razorpay.settle()
    return sub


async def test_razorpay_checkout_paid_sends_signed_webhooks_in_order(stack: Stack) -> None:
    client = stack.razorpay()
    sub = await rzp_subscription(stack)
    assert sub["entity"] == "subscription" and sub["id"].startswith("sub_")
    assert sub["status"] == "created" and sub["notes"] == {"user_id": "u-1"}
    assert sub["short_url"] == f"{stack.url}/razorpay/checkout/{sub['id']}"
    for name in ("current_start", "current_end", "ended_at", "charge_at", "start_at", "end_at"):
        assert name in sub
    assert sub["remaining_count"] == 12 and sub["has_scheduled_changes"] is False

    answer = await stack.post(
        sub["short_url"], {"outcome": "paid", "return_url": "http://app.test/billing/return?x=1"}
    )
    await stack.sandbox.razorpay.settle()

    redirect = urlsplit(answer.json()["redirect"])
    fields = {k: v[0] for k, v in parse_qs(redirect.query).items()}
    assert redirect.path == "/billing/return" and fields["x"] == "1"
    assert fields["razorpay_subscription_id"] == sub["id"]
    assert client.utility.verify_subscription_payment_signature(dict(fields))
    hooks = stack.rzp_hooks.hooks
    assert stack.rzp_hooks.events("event") == [
        "subscription.authenticated",
        "subscription.activated",
        "subscription.charged",
    ]
    assert all(rzp_verified(client, h) for h in hooks)
    assert len({h.headers["x-razorpay-event-id"] for h in hooks}) == 3
    envelope = hooks[-1].payload()
    assert envelope["entity"] == "event" and envelope["contains"] == ["subscription", "payment"]
    charged = envelope["payload"]["subscription"]["entity"]
    payment = envelope["payload"]["payment"]["entity"]
    assert hooks[0].payload()["payload"]["subscription"]["entity"]["status"] == "authenticated"
    assert charged["status"] == "active" and charged["notes"] == {"user_id": "u-1"}
    assert charged["current_end"] - charged["current_start"] in range(28 * 86400, 31 * 86400 + 1)
    assert payment["id"] == fields["razorpay_payment_id"] and payment["amount"] == 149900
    assert payment["status"] == "captured" and payment["currency"] == "INR"
    fetched = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    assert fetched["status"] == "active" and fetched["customer_id"].startswith("cust_")
    assert fetched["paid_count"] == 1
    assert stack.sandbox.razorpay.deliveries == [
        ("subscription.authenticated", 200),
        ("subscription.activated", 200),
        ("subscription.charged", 200),
    ]


async def test_razorpay_return_url_from_notes(stack: Stack) -> None:
    sub = await rzp_subscription(stack, return_url="http://app.test/back")
    answer = await stack.post(sub["short_url"], {"outcome": "paid"})
    assert answer.json()["redirect"].startswith("http://app.test/back?razorpay_payment_id=pay_")


async def test_razorpay_duplicated_and_shuffled_deliveries(stack: Stack) -> None:
    await rzp_paid(stack, "duplicated")
    hooks = stack.rzp_hooks.hooks
    assert [h.payload()["event"] for h in hooks] == [
        e for e in ("authenticated", "activated", "charged") for e in (f"subscription.{e}",) * 2
    ]
    ids = [h.headers["x-razorpay-event-id"] for h in hooks]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5] and len(set(ids)) == 3
    stack.rzp_hooks.hooks.clear()
    await rzp_paid(stack, "shuffled")
    assert stack.rzp_hooks.events("event") == [
        "subscription.charged",
        "subscription.activated",
        "subscription.authenticated",
    ]


async def test_razorpay_retries_a_failed_delivery_with_the_same_event_id(stack: Stack) -> None:
    stack.rzp_hooks.fail_next = 2
    await rzp_paid(stack)
    hooks = stack.rzp_hooks.hooks
    assert [h.payload()["event"] for h in hooks[:3]] == ["subscription.authenticated"] * 3
    assert len({h.headers["x-razorpay-event-id"] for h in hooks[:3]}) == 1
    assert stack.sandbox.razorpay.deliveries[0] == ("subscription.authenticated", 200)
    assert stack.sandbox.razorpay.dispatcher.records[0].attempts == 3


async def test_razorpay_failed_payment_leaves_the_subscription_created(stack: Stack) -> None:
    sub = await rzp_subscription(stack)
    answer = await stack.post(sub["short_url"], {"outcome": "failed"})
    await stack.sandbox.razorpay.settle()
    assert answer.json() == {"redirect": None}
    assert stack.rzp_hooks.events("event") == ["payment.failed"]
    payment = stack.rzp_hooks.hooks[0].payload()["payload"]["payment"]["entity"]
    assert payment["status"] == "failed" and payment["error_code"] == "BAD_REQUEST_ERROR"
    fetched = await asyncio.to_thread(stack.razorpay().subscription.fetch, sub["id"])
    assert fetched["status"] == "created" and fetched["auth_attempts"] == 1


async def renew(stack: Stack, gateway: str, sub_id: str, outcome: str) -> httpx.Response:
    answer = await stack.post(
        f"{stack.url}/{gateway}/_sandbox/subscriptions/{sub_id}/renew", {"outcome": outcome}
    )
    assert answer.status_code == 200, answer.text
    await getattr(stack.sandbox, gateway).settle()
    return answer


async def test_razorpay_renewals_paid_pending_halted(stack: Stack) -> None:
    sub = await rzp_paid(stack)
    client = stack.razorpay()
    before = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    stack.rzp_hooks.hooks.clear()
    await renew(stack, "razorpay", sub["id"], "paid")
    after = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    assert after["current_start"] == before["current_end"] and after["paid_count"] == 2
    assert stack.rzp_hooks.events("event") == ["subscription.charged"]
    await renew(stack, "razorpay", sub["id"], "failed")
    assert (await asyncio.to_thread(client.subscription.fetch, sub["id"]))["status"] == "pending"
    await renew(stack, "razorpay", sub["id"], "failed")
    halted = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    assert halted["status"] == "halted" and halted["current_end"] == after["current_end"]
    assert stack.rzp_hooks.events("event") == [
        "subscription.charged",
        "payment.failed",
        "subscription.pending",
        "payment.failed",
        "subscription.halted",
    ]
    assert all(rzp_verified(client, h) for h in stack.rzp_hooks.hooks)


async def test_razorpay_cancel_at_cycle_end_then_immediately(stack: Stack) -> None:
    client = stack.razorpay()
    sub = await rzp_paid(stack)
    stack.rzp_hooks.hooks.clear()
    kept = await asyncio.to_thread(
        client.subscription.cancel, sub["id"], {"cancel_at_cycle_end": 1}
    )
    assert kept["status"] == "active" and kept["end_at"] == kept["current_end"]
    await stack.sandbox.razorpay.settle()
    assert stack.rzp_hooks.hooks == []
    await renew(stack, "razorpay", sub["id"], "paid")
    ended = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    assert ended["status"] == "cancelled" and ended["ended_at"] == kept["current_end"]
    assert stack.rzp_hooks.events("event") == ["subscription.cancelled"]

    other = await rzp_paid(stack)
    stack.rzp_hooks.hooks.clear()
    now = await asyncio.to_thread(
        client.subscription.cancel, other["id"], {"cancel_at_cycle_end": 0}
    )
    await stack.sandbox.razorpay.settle()
    assert now["status"] == "cancelled" and now["ended_at"] is not None
    assert stack.rzp_hooks.events("event") == ["subscription.cancelled"]
    with pytest.raises(razorpay.errors.BadRequestError, match="not cancellable"):
        await asyncio.to_thread(client.subscription.cancel, other["id"], {})


async def test_razorpay_plan_change_now_and_at_cycle_end(stack: Stack) -> None:
    client = stack.razorpay()
    sub = await rzp_paid(stack)
    stack.rzp_hooks.hooks.clear()
    scheduled = await asyncio.to_thread(
        client.subscription.edit, sub["id"], {"plan_id": GROWTH, "schedule_change_at": "cycle_end"}
    )
    assert scheduled["plan_id"] == STARTER and scheduled["has_scheduled_changes"] is True
    assert scheduled["change_scheduled_at"] == scheduled["current_end"]
    await renew(stack, "razorpay", sub["id"], "paid")
    renewed = await asyncio.to_thread(client.subscription.fetch, sub["id"])
    assert renewed["plan_id"] == GROWTH and renewed["has_scheduled_changes"] is False
    assert stack.rzp_hooks.events("event") == ["subscription.updated", "subscription.charged"]
    charged = stack.rzp_hooks.hooks[-1].payload()["payload"]["payment"]["entity"]
    assert charged["amount"] == 399900

    now = await asyncio.to_thread(
        client.subscription.edit, sub["id"], {"plan_id": STARTER, "schedule_change_at": "now"}
    )
    await stack.sandbox.razorpay.settle()
    assert now["plan_id"] == STARTER and stack.rzp_hooks.events("event")[-1] == (
        "subscription.updated"
    )


async def test_razorpay_pause_and_resume(stack: Stack) -> None:
    client = stack.razorpay()
    sub = await rzp_paid(stack)
    stack.rzp_hooks.hooks.clear()
    paused = await asyncio.to_thread(client.subscription.pause, sub["id"], {"pause_at": "now"})
    resumed = await asyncio.to_thread(client.subscription.resume, sub["id"], {"resume_at": "now"})
    await stack.sandbox.razorpay.settle()
    assert (paused["status"], resumed["status"]) == ("paused", "active")
    assert stack.rzp_hooks.events("event") == ["subscription.paused", "subscription.resumed"]


async def test_razorpay_bad_auth_is_a_401_in_razorpays_shape(stack: Stack) -> None:
    with pytest.raises(razorpay.errors.BadRequestError, match="Authentication failed"):
        await asyncio.to_thread(stack.razorpay("wrong").subscription.fetch, "sub_x")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{stack.url}/razorpay/v1/subscriptions/sub_x")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    with pytest.raises(razorpay.errors.BadRequestError, match="does not exist"):
        await asyncio.to_thread(stack.razorpay().subscription.fetch, "sub_missing")


# Paddle


def paddle_verified(hook: Hook) -> bool:
    return Verifier().verify(hook, Secret(PADDLE_HOOK_SECRET))


async def paddle_transaction(stack: Stack, price: str = PRI_STARTER) -> Any:
    operation = CreateTransaction(
        items=[TransactionCreateItem(price_id=price, quantity=1)],
        custom_data=CustomData({"user_id": "u-2"}),
    )
    return await asyncio.to_thread(stack.paddle().transactions.create, operation)


async def paddle_paid(stack: Stack, delivery: str = "ordered") -> str:
    """A paid checkout; the new subscription's id. The receiver is cleared afterwards."""
    txn = await paddle_transaction(stack)
    answer = await stack.post(txn.checkout.url, {"outcome": "paid", "delivery": delivery})
    assert answer.status_code == 200, answer.text
    await stack.sandbox.paddle.settle()
    completed = await asyncio.to_thread(stack.paddle().transactions.get, txn.id)
    stack.paddle_hooks.hooks.clear()
    return completed.subscription_id


async def test_paddle_checkout_paid_sends_signed_webhooks_in_order(stack: Stack) -> None:
    txn = await paddle_transaction(stack)
    assert txn.id.startswith("txn_") and txn.status == "ready"
    assert txn.checkout.url == f"{stack.url}/paddle/checkout/{txn.id}"
    answer = await stack.post(
        txn.checkout.url, {"outcome": "paid", "return_url": "http://app.test/billing/done"}
    )
    await stack.sandbox.paddle.settle()
    assert answer.json() == {"redirect": "http://app.test/billing/done"}

    hooks = stack.paddle_hooks.hooks
    assert stack.paddle_hooks.events("event_type") == [
        "transaction.created",
        "transaction.paid",
        "subscription.created",
        "subscription.activated",
        "transaction.completed",
    ]
    assert all(paddle_verified(h) for h in hooks)
    events = [PaddleEvent.from_dict(h.payload()) for h in hooks]  # the SDK parses them
    for hook in hooks:
        envelope = hook.payload()
        assert envelope["event_id"].startswith("evt_")
        assert envelope["notification_id"].startswith("ntf_")
        assert envelope["occurred_at"].endswith("Z")
    created = hooks[2].payload()["data"]
    assert created["status"] == "active" and created["custom_data"] == {"user_id": "u-2"}
    assert created["customer_id"].startswith("ctm_")
    assert created["items"][0]["price"]["id"] == PRI_STARTER
    period = created["current_billing_period"]
    length = datetime.fromisoformat(period["ends_at"]) - datetime.fromisoformat(period["starts_at"])
    assert timedelta(days=28) <= length <= timedelta(days=31)
    assert events[-1].data.subscription_id == created["id"]
    assert events[2].data.transaction_id == txn.id

    client = stack.paddle()
    sub = await asyncio.to_thread(client.subscriptions.get, created["id"])
    assert sub.status == "active" and sub.custom_data.data == {"user_id": "u-2"}
    done = await asyncio.to_thread(client.transactions.get, txn.id)
    assert done.status == "completed" and done.payments[0].status == "captured"


async def test_paddle_signature_is_fresh_on_each_retry(stack: Stack) -> None:
    stack.paddle_hooks.fail_next = 1
    await paddle_transaction(stack)
    await stack.sandbox.paddle.settle()
    first, again = stack.paddle_hooks.hooks
    assert first.payload()["event_id"] == again.payload()["event_id"]
    assert paddle_verified(again)
    assert stack.sandbox.paddle.deliveries == [("transaction.created", 200)]


async def test_paddle_duplicated_and_shuffled_deliveries(stack: Stack) -> None:
    txn = await paddle_transaction(stack)
    await stack.sandbox.paddle.settle()
    stack.paddle_hooks.hooks.clear()
    await stack.post(txn.checkout.url, {"outcome": "paid", "delivery": "duplicated"})
    await stack.sandbox.paddle.settle()
    ids = [h.payload()["event_id"] for h in stack.paddle_hooks.hooks]
    assert len(ids) == 8 and len(set(ids)) == 4 and ids[0::2] == ids[1::2]
    assert all(paddle_verified(h) for h in stack.paddle_hooks.hooks)

    txn = await paddle_transaction(stack)
    await stack.sandbox.paddle.settle()
    stack.paddle_hooks.hooks.clear()
    await stack.post(txn.checkout.url, {"outcome": "paid", "delivery": "shuffled"})
    await stack.sandbox.paddle.settle()
    assert stack.paddle_hooks.events("event_type") == [
        "transaction.completed",
        "subscription.activated",
        "subscription.created",
        "transaction.paid",
    ]


async def test_paddle_failed_payment(stack: Stack) -> None:
    txn = await paddle_transaction(stack)
    answer = await stack.post(txn.checkout.url, {"outcome": "failed"})
    await stack.sandbox.paddle.settle()
    assert answer.json() == {"redirect": None}
    assert stack.paddle_hooks.events("event_type") == [
        "transaction.created",
        "transaction.payment_failed",
    ]
    still = await asyncio.to_thread(stack.paddle().transactions.get, txn.id)
    assert still.status == "ready" and still.payments[0].status == "error"
    assert stack.sandbox.paddle.subscriptions == {}


async def test_paddle_renewals_paid_then_past_due(stack: Stack) -> None:
    client = stack.paddle()
    sub_id = await paddle_paid(stack)
    before = await asyncio.to_thread(client.subscriptions.get, sub_id)
    await renew(stack, "paddle", sub_id, "paid")
    after = await asyncio.to_thread(client.subscriptions.get, sub_id)
    assert after.current_billing_period.starts_at == before.current_billing_period.ends_at
    assert stack.paddle_hooks.events("event_type") == [
        "transaction.completed",
        "subscription.updated",
    ]
    stack.paddle_hooks.hooks.clear()
    await renew(stack, "paddle", sub_id, "failed")
    past_due = await asyncio.to_thread(client.subscriptions.get, sub_id)
    assert past_due.status == "past_due"
    assert stack.paddle_hooks.events("event_type") == [
        "transaction.past_due",
        "subscription.past_due",
    ]
    stack.paddle_hooks.hooks.clear()
    await renew(stack, "paddle", sub_id, "paid")  # the retry succeeds: same period, active
    healed = await asyncio.to_thread(client.subscriptions.get, sub_id)
    assert healed.status == "active"
    assert healed.current_billing_period == past_due.current_billing_period
    assert all(paddle_verified(h) for h in stack.paddle_hooks.hooks)


async def test_paddle_cancel_at_period_end_undo_and_immediately(stack: Stack) -> None:
    client = stack.paddle()
    sub_id = await paddle_paid(stack)
    scheduled = await asyncio.to_thread(
        client.subscriptions.cancel,
        sub_id,
        CancelSubscription(effective_from=SubscriptionEffectiveFrom.NextBillingPeriod),
    )
    assert scheduled.status == "active" and scheduled.scheduled_change.action == "cancel"
    assert scheduled.scheduled_change.effective_at == scheduled.current_billing_period.ends_at
    kept = await asyncio.to_thread(
        client.subscriptions.update, sub_id, UpdateSubscription(scheduled_change=None)
    )
    assert kept.scheduled_change is None
    await asyncio.to_thread(client.subscriptions.cancel, sub_id, CancelSubscription())
    await renew(stack, "paddle", sub_id, "paid")
    ended = await asyncio.to_thread(client.subscriptions.get, sub_id)
    assert ended.status == "canceled" and ended.canceled_at is not None
    assert stack.paddle_hooks.events("event_type") == [
        "subscription.updated",
        "subscription.updated",
        "subscription.updated",
        "subscription.canceled",
    ]

    other = await paddle_paid(stack)
    now = await asyncio.to_thread(
        client.subscriptions.cancel,
        other,
        CancelSubscription(effective_from=SubscriptionEffectiveFrom.Immediately),
    )
    await stack.sandbox.paddle.settle()
    assert now.status == "canceled" and now.canceled_at is not None
    assert stack.paddle_hooks.events("event_type") == ["subscription.canceled"]


async def test_paddle_plan_change_needs_a_proration_mode(stack: Stack) -> None:
    client = stack.paddle()
    sub_id = await paddle_paid(stack)
    with pytest.raises(ApiError) as error:
        await asyncio.to_thread(
            client.subscriptions.update,
            sub_id,
            UpdateSubscription(items=[SubscriptionUpdateItem(price_id=PRI_GROWTH, quantity=1)]),
        )
    assert error.value.response.status_code == 400
    assert error.value.field_errors[0].field == "proration_billing_mode"
    for mode in (
        SubscriptionProrationBillingMode.FullNextBillingPeriod,
        SubscriptionProrationBillingMode.ProratedImmediately,
    ):
        changed = await asyncio.to_thread(
            client.subscriptions.update,
            sub_id,
            UpdateSubscription(
                items=[SubscriptionUpdateItem(price_id=PRI_GROWTH, quantity=1)],
                proration_billing_mode=mode,
            ),
        )
        assert changed.items[0].price.id == PRI_GROWTH and changed.scheduled_change is None
    await stack.sandbox.paddle.settle()
    assert stack.paddle_hooks.events("event_type") == ["subscription.updated"] * 2
    updated = stack.paddle_hooks.hooks[-1].payload()["data"]
    assert updated["items"][0]["price"]["id"] == PRI_GROWTH


async def test_paddle_pause_and_resume(stack: Stack) -> None:
    client = stack.paddle()
    sub_id = await paddle_paid(stack)
    paused = await asyncio.to_thread(
        client.subscriptions.pause,
        sub_id,
        PauseSubscription(effective_from=SubscriptionEffectiveFrom.Immediately),
    )
    resumed = await asyncio.to_thread(client.subscriptions.resume, sub_id, ResumeSubscription())
    await stack.sandbox.paddle.settle()
    assert (paused.status, resumed.status) == ("paused", "active")
    assert stack.paddle_hooks.events("event_type") == [
        "subscription.paused",
        "subscription.resumed",
    ]


async def test_paddle_bad_key_and_unknown_ids(stack: Stack) -> None:
    with pytest.raises(ApiError) as error:
        await asyncio.to_thread(stack.paddle("pdl_wrong").subscriptions.get, "sub_x")
    assert error.value.error_code == "invalid_token"
    assert error.value.response.status_code == 403
    with pytest.raises(ApiError) as missing:
        await asyncio.to_thread(stack.paddle().subscriptions.get, "sub_missing")
    assert missing.value.error_code == "not_found"
    async with httpx.AsyncClient() as http:
        answer = await http.get(
            f"{stack.url}/paddle/subscriptions/sub_missing",
            headers={"Authorization": f"Bearer {PADDLE_KEY}"},
        )
    assert answer.status_code == 404 and "request_id" in answer.json()["meta"]


# The pages people click


async def test_checkout_pages_have_pay_and_fail_buttons_that_work(stack: Stack) -> None:
    sub = await rzp_subscription(stack)
    txn = await paddle_transaction(stack)
    back = "http://app.test/billing/return"
    async with httpx.AsyncClient(timeout=10) as browser:
        for url in (sub["short_url"], txn.checkout.url):
            page = await browser.get(url, params={"return_url": back})
            assert page.status_code == 200
            assert ">Pay</button>" in page.text and ">Fail payment</button>" in page.text
            assert 'name="return_url"' in page.text
            # What the Pay button submits: a form post, answered with a redirect.
            clicked = await browser.post(url, data={"outcome": "paid", "return_url": back})
            assert clicked.status_code == 303
            assert clicked.headers["location"].startswith(back)
    await stack.sandbox.razorpay.settle()
    await stack.sandbox.paddle.settle()
    assert stack.sandbox.razorpay.subscriptions[sub["id"]].status == "active"
    assert stack.sandbox.paddle.transactions[txn.id].status == "completed"


# Demo mode


async def test_demo_wiring_points_both_gateways_at_the_sandbox() -> None:
    sandbox = Sandbox()
    sandbox.razorpay.dispatcher.backoff = sandbox.paddle.dispatcher.backoff = 0.01
    async with receiving() as (rzp, _), serving(sandbox) as url:
        api_base = rzp.url.removesuffix("/hooks/razorpay")  # (no billing routes there)
        base = Settings(_env_file=None).model_copy(update={"sandbox_url": url})  # type: ignore[call-arg]
        settings = demo_billing_settings(base, sandbox, url, api_base=api_base + "/")
        assert settings.razorpay_api_url == f"{url}/razorpay"
        assert settings.paddle_api_url == f"{url}/paddle"
        assert (settings.razorpay_plan_starter, settings.razorpay_plan_pro) == (
            "plan_demo_starter",
            "plan_demo_pro",
        )
        assert settings.paddle_price_growth == "pri_demo_growth"
        assert sandbox.razorpay.plans["plan_demo_growth"].amount == 399900
        assert sandbox.paddle.prices["pri_demo_pro"].amount == 14900
        assert sandbox.razorpay.webhook_url == f"{api_base}/billing/webhooks/razorpay"
        assert sandbox.paddle.webhook_url == f"{api_base}/billing/webhooks/paddle"
        assert "Razorpay and Paddle (sandbox)" in (demo_billing_banner(settings) or "")

        # The SDKs, given only what Settings say, reach the stand-ins.
        assert settings.razorpay_key_id and settings.razorpay_key_secret
        client = razorpay.Client(
            auth=(settings.razorpay_key_id, settings.razorpay_key_secret.get_secret_value()),
            base_url=settings.razorpay_api_url,
        )
        body = {"plan_id": settings.razorpay_plan_pro, "total_count": 12, "quantity": 1}
        sub = await asyncio.to_thread(client.subscription.create, body)
        assert sub["status"] == "created"
        assert settings.paddle_api_key and settings.paddle_price_starter
        paddle = paddle_billing.Client(
            settings.paddle_api_key.get_secret_value(),
            options=paddle_billing.Options(
                environment=SimpleNamespace(base_url=settings.paddle_api_url)
            ),
        )
        item = TransactionCreateItem(price_id=settings.paddle_price_starter, quantity=1)
        txn = await asyncio.to_thread(paddle.transactions.create, CreateTransaction(items=[item]))
        assert txn.status == "ready"


def test_demo_wiring_leaves_a_gateway_with_real_credentials_alone() -> None:
    sandbox = Sandbox()
    real = Settings(_env_file=None).model_copy(  # type: ignore[call-arg]
        update={"razorpay_key_id": "rzp_live_real", "razorpay_plan_starter": "plan_real"}
    )
    settings = demo_billing_settings(real, sandbox, "http://127.0.0.1:9", api_base="http://x")
    assert settings.razorpay_key_id == "rzp_live_real" and settings.razorpay_api_url is None
    assert settings.razorpay_plan_starter == "plan_real" and sandbox.razorpay.plans == {}
    assert settings.paddle_api_url == "http://127.0.0.1:9/paddle"
