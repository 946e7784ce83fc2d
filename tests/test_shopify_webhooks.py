"""POST /shopify/webhooks end to end: signature, dedupe, the workflow under the Temporal
dev server with the real worker, and what each topic does to the database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from integrations.offline_suggester import OfflineSuggester
from integrations.sandbox_mailer import NoMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ActionType, PlaybookExecutionStatus
from kernel.settings import Settings
from models import (
    Action,
    AISuggestion,
    ComplianceExport,
    Connection,
    Event,
    Message,
    Order,
    ShopifyWebhook,
    Thread,
    User,
    log_event,
)
from models.db import unit_of_work
from services.shopify_webhook_workflows import reconcile_unprocessed_webhooks
from tests.api_support import api_client, token_for
from tests.factories import (
    make_message,
    make_order,
    make_shopify_connection,
    make_thread,
    make_user,
)
from tests.playbook_support import act, add_playbook, eventually, executions
from worker import WorkerDependencies, build_worker

SECRET = "webhook-test-secret"
CUSTOMER = "customer@example.com"
WAIT_S = 20


def signed_headers(body: bytes, topic: str, shop: str, event_id: str, secret: str = SECRET):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }


def order_payload(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": number,
        "admin_graphql_api_id": f"gid://shopify/Order/{number}",
        "name": f"#{number % 10000 + 1000}",
        "email": CUSTOMER,
        "total_price": "59.90",
        "currency": "EUR",
        "financial_status": "paid",
        "fulfillment_status": None,
        "cancelled_at": None,
        "closed_at": None,
        "updated_at": "2026-11-20T10:00:00-05:00",
        "line_items": [{"id": 1, "title": "Mug", "quantity": 2, "price": "29.95"}],
        "shipping_address": {"city": "Lyon", "country_code": "FR"},
    } | changes


@dataclass
class Merchant:
    user_id: uuid.UUID
    shop: str
    connection_id: uuid.UUID
    token: str


@dataclass
class Desk:
    sessions: async_sessionmaker[AsyncSession]
    api: httpx.AsyncClient
    me: Merchant
    other: Merchant

    async def send(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        shop: str | None = None,
        event_id: str | None = None,
        secret: str = SECRET,
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        event_id = event_id or str(uuid.uuid4())
        return await self.api.post(
            "/shopify/webhooks",
            content=body,
            headers=signed_headers(body, topic, shop or self.me.shop, event_id, secret),
        )

    async def deliver(self, topic: str, payload: dict[str, Any], **kw: Any) -> ShopifyWebhook:
        """Send and wait until the workflow has processed it."""
        response = await self.send(topic, payload, **kw)
        assert response.status_code == 200, response.text
        return await self.processed(response.json()["event_id"])

    async def processed(self, event_id: str) -> ShopifyWebhook:
        async with asyncio.timeout(WAIT_S):
            while True:
                async with self.sessions() as session:
                    row = (
                        await session.execute(
                            select(ShopifyWebhook).where(ShopifyWebhook.event_id == event_id)
                        )
                    ).scalar_one()
                if row.processed_at is not None:
                    return row
                await asyncio.sleep(0.05)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.sessions() as session:
            return (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()


async def _merchant(sessions: async_sessionmaker[AsyncSession]) -> Merchant:
    async with unit_of_work(sessions) as session:
        user = await make_user(session)
        connection = await make_shopify_connection(session, user)
        assert connection.shop_domain is not None
        merchant = Merchant(user.id, connection.shop_domain, connection.id, "")
    merchant.token = await token_for(sessions, merchant.user_id)
    return merchant


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    queue = f"shopify-{uuid.uuid4().hex[:8]}"
    settings = Settings(_env_file=None, SHOPIFY_API_SECRET=SECRET)  # type: ignore[call-arg]
    app = create_app(own_sessions.kw["bind"], temporal_dev.client, settings, task_queue=queue)
    store = ShopifyAdmin()
    deps = WorkerDependencies(own_sessions, store, NoMailer(), OfflineSuggester())
    worker = build_worker(temporal_dev.client, deps, task_queue=queue)
    async with worker, api_client(app) as api:
        me, other = await _merchant(own_sessions), await _merchant(own_sessions)
        yield Desk(own_sessions, api, me, other)
    await store.aclose()


async def _conversation(
    sessions: async_sessionmaker[AsyncSession], merchant: Merchant, email: str = CUSTOMER
) -> dict[str, uuid.UUID]:
    """An order, a thread with a message, a suggestion, an action and events, for `email`."""
    async with unit_of_work(sessions) as session:
        connection = await session.get(Connection, merchant.connection_id)
        assert connection is not None
        order = await make_order(session, connection)
        order.email = email
        thread = await make_thread(session, await session.get_one(User, merchant.user_id))
        thread.customer_email = email
        message = await make_message(session, thread)
        message.from_address = email
        message.order_id = order.id
        suggestion = AISuggestion(
            message_id=message.id,
            reply="Hello",
            proposed_action=ActionType.REFUND,
            order_id=order.id,
            confidence=0.9,
        )
        session.add(suggestion)
        await session.flush()
        action = Action(
            user_id=merchant.user_id,
            message_id=message.id,
            suggestion_id=suggestion.id,
            order_id=order.id,
            type=ActionType.REFUND,
            payload={"note": f"refund for {email}"},
        )
        session.add(action)
        await session.flush()
        await log_event(
            session,
            "message.received",
            user_id=merchant.user_id,
            entity="message",
            entity_id=message.id,
        )
        await log_event(
            session,
            "action.created",
            user_id=merchant.user_id,
            entity="action",
            entity_id=action.id,
        )
        return {
            "order": order.id,
            "thread": thread.id,
            "message": message.id,
            "suggestion": suggestion.id,
            "action": action.id,
        }


async def _exists(desk: Desk, ids: dict[str, uuid.UUID]) -> dict[str, bool]:
    models = {
        "order": Order,
        "thread": Thread,
        "message": Message,
        "suggestion": AISuggestion,
        "action": Action,
    }
    return {k: await desk.count(models[k], models[k].id == v) == 1 for k, v in ids.items()}


# --- receiving ----------------------------------------------------------------------------


async def test_order_create_is_stored_and_upserted(desk: Desk) -> None:
    delivery = await desk.deliver("orders/create", order_payload(5001))
    assert delivery.topic == "orders/create"
    assert delivery.user_id == desk.me.user_id
    assert delivery.error is None
    # Customer data leaves the delivery once applied; the order's id and events stay.
    assert set(delivery.payload) == {"user_id", "order_id", "order_events"}
    assert delivery.payload["order_events"] == ["created"]
    async with desk.sessions() as session:
        order = (
            await session.execute(
                select(Order).where(Order.shopify_id == "gid://shopify/Order/5001")
            )
        ).scalar_one()
    assert (order.connection_id, order.shop_domain) == (desk.me.connection_id, desk.me.shop)
    assert order.name == "#6001"
    assert order.email == CUSTOMER
    assert order.total_amount == Decimal("59.90")
    assert (order.currency, order.status) == ("EUR", "open")
    assert (order.financial_status, order.fulfillment_status) == ("PAID", "UNFULFILLED")
    assert order.details is not None and order.details["line_items"][0]["title"] == "Mug"

    later = "2026-11-21T10:00:00-05:00"
    await desk.deliver(
        "orders/updated",
        order_payload(
            5001,
            updated_at=later,
            fulfillment_status="fulfilled",
            financial_status="partially_refunded",
        ),
    )
    # An older version delivered late does not win.
    await desk.deliver("orders/updated", order_payload(5001, fulfillment_status=None))
    await desk.deliver(
        "orders/cancelled",
        order_payload(
            5001,
            updated_at="2026-11-22T10:00:00Z",
            cancelled_at="2026-11-22T10:00:00Z",
            fulfillment_status="fulfilled",
            financial_status="refunded",
        ),
    )
    async with desk.sessions() as session:
        rows = (
            (
                await session.execute(
                    select(Order).where(Order.shopify_id == "gid://shopify/Order/5001")
                )
            )
            .scalars()
            .all()
        )
    assert len(rows) == 1
    assert (rows[0].status, rows[0].fulfillment_status, rows[0].financial_status) == (
        "cancelled",
        "FULFILLED",
        "REFUNDED",
    )


async def test_late_older_update_is_ignored(desk: Desk) -> None:
    await desk.deliver(
        "orders/updated",
        order_payload(5002, updated_at="2026-11-21T10:00:00Z", fulfillment_status="fulfilled"),
    )
    await desk.deliver("orders/updated", order_payload(5002, updated_at="2026-11-20T10:00:00Z"))
    async with desk.sessions() as session:
        order = (
            await session.execute(
                select(Order).where(Order.shopify_id == "gid://shopify/Order/5002")
            )
        ).scalar_one()
    assert order.fulfillment_status == "FULFILLED"


async def test_forged_or_missing_signature_is_401_and_stores_nothing(desk: Desk) -> None:
    before = await desk.count(ShopifyWebhook)
    response = await desk.send("orders/create", order_payload(5003), secret="not-the-secret")
    assert response.status_code == 401
    body = json.dumps(order_payload(5003)).encode()
    headers = signed_headers(body, "orders/create", desk.me.shop, str(uuid.uuid4()))
    del headers["X-Shopify-Hmac-Sha256"]
    assert (
        await desk.api.post("/shopify/webhooks", content=body, headers=headers)
    ).status_code == 401
    # A body changed after signing.
    headers = signed_headers(body, "orders/create", desk.me.shop, str(uuid.uuid4()))
    tampered = body.replace(b"59.90", b"0.01")
    assert (
        await desk.api.post("/shopify/webhooks", content=tampered, headers=headers)
    ).status_code == 401
    # Refused before anything is stored: the answer comes after the handler is done.
    assert await desk.count(ShopifyWebhook) == before
    assert await desk.count(Order, Order.shopify_id == "gid://shopify/Order/5003") == 0


async def test_a_redelivered_event_is_processed_once(
    desk: Desk, temporal_dev: WorkflowEnvironment
) -> None:
    event_id = str(uuid.uuid4())
    first = await desk.send("orders/create", order_payload(5004), event_id=event_id)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    await desk.processed(event_id)
    # Same event id, even with another body: acknowledged, not stored, not applied.
    again = await desk.send(
        "orders/create", order_payload(5004, total_price="1.00"), event_id=event_id
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await desk.count(ShopifyWebhook, ShopifyWebhook.event_id == event_id) == 1
    async with desk.sessions() as session:
        order = (
            await session.execute(
                select(Order).where(Order.shopify_id == "gid://shopify/Order/5004")
            )
        ).scalar_one()
    assert order.total_amount == Decimal("59.90")
    handle = temporal_dev.client.get_workflow_handle(f"shopify-webhook-{event_id}")
    await asyncio.wait_for(handle.result(), WAIT_S)  # it also fires the order's playbooks
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_stored_while_temporal_is_away_then_reconciled(
    desk: Desk, temporal_dev: WorkflowEnvironment
) -> None:
    settings = Settings(_env_file=None, SHOPIFY_API_SECRET=SECRET)  # type: ignore[call-arg]
    offline = create_app(desk.sessions.kw["bind"], None, settings)
    body = json.dumps(order_payload(5005)).encode()
    event_id = str(uuid.uuid4())
    async with api_client(offline) as api:
        response = await api.post(
            "/shopify/webhooks",
            content=body,
            headers=signed_headers(body, "orders/create", desk.me.shop, event_id),
        )
    assert response.status_code == 200
    async with desk.sessions() as session:
        row = (
            await session.execute(select(ShopifyWebhook).where(ShopifyWebhook.event_id == event_id))
        ).scalar_one()
    assert row.processed_at is None
    queue = desk.api._transport.app.state.task_queue  # type: ignore[attr-defined]
    started = await reconcile_unprocessed_webhooks(
        desk.sessions,
        temporal_dev.client,
        task_queue=queue,
        grace=timedelta(0),
    )
    assert started >= 1
    assert (await desk.processed(event_id)).error is None
    assert await desk.count(Order, Order.shopify_id == "gid://shopify/Order/5005") == 1


async def test_a_signed_body_postgres_cannot_store_is_refused_with_a_reason(desk: Desk) -> None:
    before = await desk.count(ShopifyWebhook)
    response = await desk.send("orders/create", {**order_payload(5007), "note": "a\x00b"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_webhook"
    assert await desk.count(ShopifyWebhook) == before


async def test_a_bad_order_body_is_recorded_not_retried(desk: Desk) -> None:
    delivery = await desk.deliver("orders/create", {"id": 5006, "name": "#5006"})
    assert delivery.error is not None and "currency" in delivery.error


# --- topics -------------------------------------------------------------------------------


async def test_app_uninstalled_disables_the_connection(desk: Desk) -> None:
    ids = await _conversation(desk.sessions, desk.me)
    await desk.deliver("app/uninstalled", {"id": 1, "domain": desk.me.shop})
    async with desk.sessions() as session:
        connection = await session.get(Connection, desk.me.connection_id)
        assert connection is not None
        assert connection.metadata_ is not None and connection.metadata_["disabled"] is True
        events = (
            (await session.execute(select(Event.type).where(Event.entity_id == str(connection.id))))
            .scalars()
            .all()
        )
    assert "shopify.uninstalled" in events
    assert all((await _exists(desk, ids)).values())  # nothing erased before shop/redact
    other = await desk.count(Connection, Connection.id == desk.other.connection_id)
    assert other == 1
    async with desk.sessions() as session:
        untouched = await session.get(Connection, desk.other.connection_id)
    assert untouched is not None and not (untouched.metadata_ or {}).get("disabled")


async def test_customers_data_request_exports_what_we_hold(desk: Desk) -> None:
    ids = await _conversation(desk.sessions, desk.me)
    theirs = await _conversation(desk.sessions, desk.other)  # same address, other merchant
    payload = {
        "shop_id": 1,
        "shop_domain": desk.me.shop,
        "orders_requested": [],
        "customer": {"id": 7, "email": CUSTOMER.upper(), "phone": None},
        "data_request": {"id": 99},
    }
    delivery = await desk.deliver("customers/data_request", payload)
    assert delivery.error is None
    async with desk.sessions() as session:
        export = (
            await session.execute(
                select(ComplianceExport).where(ComplianceExport.event_id == delivery.event_id)
            )
        ).scalar_one()
        event = (
            await session.execute(
                select(Event).where(
                    Event.type == "shopify.customer_data_exported",
                    Event.entity_id == str(export.id),
                )
            )
        ).scalar_one()
    assert CUSTOMER not in json.dumps(event.payload).lower()
    data = export.data
    assert [o["id"] for o in data["orders"]] == [str(ids["order"])]
    assert [t["id"] for t in data["threads"]] == [str(ids["thread"])]
    assert [m["id"] for m in data["messages"]] == [str(ids["message"])]
    assert [s["id"] for s in data["suggestions"]] == [str(ids["suggestion"])]
    assert [a["id"] for a in data["actions"]] == [str(ids["action"])]
    assert {e["type"] for e in data["events"]} == {"message.received", "action.created"}
    assert str(theirs["order"]) not in json.dumps(data)

    mine = await desk.api.get(
        f"/api/compliance/exports/{export.id}", headers={"Authorization": f"Bearer {desk.me.token}"}
    )
    assert mine.status_code == 200
    assert mine.json()["data"]["orders"][0]["email"] == CUSTOMER
    listed = await desk.api.get(
        "/api/compliance/exports", headers={"Authorization": f"Bearer {desk.me.token}"}
    )
    assert [e["id"] for e in listed.json()] == [str(export.id)]
    not_theirs = await desk.api.get(
        f"/api/compliance/exports/{export.id}",
        headers={"Authorization": f"Bearer {desk.other.token}"},
    )
    assert not_theirs.status_code == 404


async def test_customers_redact_erases_that_customer_only(desk: Desk) -> None:
    ids = await _conversation(desk.sessions, desk.me)
    by_order_only = await _conversation(desk.sessions, desk.me, email="old-address@example.com")
    someone_else = await _conversation(desk.sessions, desk.me, email="someone@example.com")
    other_merchant = await _conversation(desk.sessions, desk.other)
    async with desk.sessions() as session:
        order_gid = (await session.get_one(Order, by_order_only["order"])).shopify_id
    await desk.deliver(
        "customers/data_request",
        {
            "shop_domain": desk.me.shop,
            "customer": {"email": CUSTOMER},
            "orders_requested": [],
            "data_request": {"id": 1},
        },
    )
    assert await desk.count(ComplianceExport, ComplianceExport.user_id == desk.me.user_id) == 1
    payload = {
        "shop_id": 1,
        "shop_domain": desk.me.shop,
        "customer": {"id": 7, "email": CUSTOMER, "phone": None},
        "orders_to_redact": [int(order_gid.rsplit("/", 1)[1])],
    }
    delivery = await desk.deliver("customers/redact", payload)
    assert delivery.error is None
    assert not any((await _exists(desk, ids)).values())
    assert not any((await _exists(desk, by_order_only)).values())
    assert all((await _exists(desk, someone_else)).values())
    assert all((await _exists(desk, other_merchant)).values())
    assert (
        await desk.count(Event, Event.entity_id.in_([str(ids["message"]), str(ids["action"])])) == 0
    )
    assert await desk.count(ComplianceExport, ComplianceExport.user_id == desk.me.user_id) == 0
    async with desk.sessions() as session:
        event = (
            await session.execute(
                select(Event).where(
                    Event.type == "shopify.customer_redacted", Event.user_id == desk.me.user_id
                )
            )
        ).scalar_one()
    assert CUSTOMER not in json.dumps(event.payload)
    assert event.payload is not None and event.payload["deleted"]["messages"] == 2


async def test_shop_redact_erases_the_shop(desk: Desk) -> None:
    ids = await _conversation(desk.sessions, desk.me)
    other_merchant = await _conversation(desk.sessions, desk.other)
    async with unit_of_work(desk.sessions) as session:
        unrelated = await make_thread(session, await session.get_one(User, desk.me.user_id))
        unrelated.customer_email = "walk-in@example.com"
        unrelated_id = unrelated.id
    await desk.deliver("orders/create", order_payload(5010))
    delivery = await desk.deliver("shop/redact", {"shop_id": 1, "shop_domain": desk.me.shop})
    assert delivery.error is None
    assert await desk.count(Connection, Connection.id == desk.me.connection_id) == 0
    assert await desk.count(Order, Order.shop_domain == desk.me.shop) == 0
    assert not any((await _exists(desk, ids)).values())
    assert await desk.count(Thread, Thread.id == unrelated_id) == 1  # not tied to the shop
    assert all((await _exists(desk, other_merchant)).values())
    # Earlier deliveries of the shop are gone; this one stays as the record of the erasure.
    assert await desk.count(ShopifyWebhook, ShopifyWebhook.shop_domain == desk.me.shop) == 1
    assert (
        await desk.count(
            Event, Event.type == "shopify.shop_redacted", Event.user_id == desk.me.user_id
        )
        == 1
    )


async def test_another_shop_cannot_touch_this_merchants_data(desk: Desk) -> None:
    ids = await _conversation(desk.sessions, desk.me)
    async with desk.sessions() as session:
        gid = (await session.get_one(Order, ids["order"])).shopify_id
    number = int(gid.rsplit("/", 1)[1])
    other = desk.other.shop
    await desk.deliver(
        "customers/redact",
        {"shop_domain": other, "customer": {"email": CUSTOMER}, "orders_to_redact": [number]},
        shop=other,
    )
    await desk.deliver(
        "orders/updated",
        order_payload(number, total_price="0.01", updated_at="2030-01-01T00:00:00Z"),
        shop=other,
    )
    await desk.deliver("app/uninstalled", {"domain": other}, shop=other)
    await desk.deliver("shop/redact", {"shop_domain": other}, shop=other)
    assert all((await _exists(desk, ids)).values())
    async with desk.sessions() as session:
        order = await session.get_one(Order, ids["order"])
        connection = await session.get_one(Connection, desk.me.connection_id)
    assert order.total_amount == Decimal("59.90")
    assert not (connection.metadata_ or {}).get("disabled")
    # A shop nobody connected: stored, processed, touches nothing.
    stranger = f"nobody-{uuid.uuid4().hex[:6]}.myshopify.com"
    delivery = await desk.deliver(
        "customers/redact",
        {"shop_domain": stranger, "customer": {"email": CUSTOMER}},
        shop=stranger,
    )
    assert delivery.user_id is None and delivery.error is None
    assert all((await _exists(desk, ids)).values())


async def test_an_order_fulfilled_fires_its_playbook_once(desk: Desk) -> None:
    playbook_id = await add_playbook(
        desk.sessions,
        desk.me.user_id,
        "Tag shipped orders",
        {"version": 2, "event": "order.event", "topics": ["fulfilled"]},
        [act("tag_thread", tags=["shipped"])],
        requires_approval=False,
    )
    await desk.deliver("orders/create", order_payload(5010))
    async with unit_of_work(desk.sessions) as session:
        order = (
            await session.execute(
                select(Order).where(Order.shopify_id == "gid://shopify/Order/5010")
            )
        ).scalar_one()
        thread = await make_thread(session, await session.get_one(User, desk.me.user_id))
        message = await make_message(session, thread)
        message.from_address, message.order_id = CUSTOMER, order.id
        thread_id = thread.id
    assert await executions(desk.sessions, playbook_id) == []  # created, not fulfilled

    shipped = order_payload(
        5010, fulfillment_status="fulfilled", updated_at="2026-11-21T10:00:00-05:00"
    )
    event_id = str(uuid.uuid4())
    delivery = await desk.deliver("orders/updated", shipped, event_id=event_id)
    assert delivery.payload["order_events"] == ["updated", "fulfilled"]

    async def tagged() -> list[str] | None:
        async with desk.sessions() as session:
            found = await session.get(Thread, thread_id, populate_existing=True)
            return list(found.tags) if found is not None and found.tags else None

    assert await eventually(tagged, WAIT_S, "the thread to be tagged") == ["shipped"]
    again = await desk.send("orders/updated", shipped, event_id=event_id)
    assert again.json()["duplicate"] is True
    # Still fulfilled in a later update: no new firing.
    await desk.deliver(
        "orders/updated",
        order_payload(5010, fulfillment_status="fulfilled", updated_at="2026-11-22T10:00:00Z"),
    )
    done = await eventually(
        lambda: _all_final(desk.sessions, playbook_id), WAIT_S, "the run to finish"
    )
    assert [(e.status, e.thread_id) for e in done] == [
        (PlaybookExecutionStatus.executed, thread_id)
    ]
    assert done[0].trigger_data["event"] == {"event": "order.event", "topic": "fulfilled"}


async def _all_final(sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID):
    found = await executions(sessions, playbook_id)
    return (
        found
        if found and all(e.status is PlaybookExecutionStatus.executed for e in found)
        else None
    )
