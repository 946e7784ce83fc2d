"""Deleting an account while Temporal and a payment gateway still know it: the app served on
loopback with the Temporal dev server, a worker, real PostgreSQL and the sandbox's stores
and Paddle stand-in. A paid subscription is cancelled at its gateway first (and the
gateway's webhook about it, arriving for an account that is gone, is processed, not
retried forever); a message workflow waiting for a decision is stopped."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from models.db import unit_of_work
from models.event import Event
from models.user import User, set_password
from sandbox.server import serve_app
from services.message_workflows import start_message_workflow
from tests.api_support import token_for
from tests.pipeline import running_pipeline, store_message
from tests.test_billing_api import Billing
from workflows.contracts import STATE_QUERY, MessageState, Stage

PASSWORD = "correct horse battery staple"
WAIT_S = 60


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[Billing, str]]:
    """The billing tests' world (webhooks reach the app), and the worker's task queue."""
    queue = f"delete-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        app = create_app(engine, temporal_dev.client, merchant.settings, task_queue=queue)
        async with serve_app(app) as url:
            app.state.settings = merchant.settings.model_copy(update={"public_url": url})
            merchant.deliver_billing_webhooks(url)
            async with unit_of_work(own_sessions) as session:
                await set_password(session, merchant.user_id, PASSWORD)
            headers = {"Authorization": f"Bearer {await token_for(own_sessions, merchant.user_id)}"}
            async with (
                httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api,
                httpx.AsyncClient(timeout=30) as http,
            ):
                yield Billing(merchant, own_sessions, url, api, http), queue
                await merchant.sandbox.paddle.settle()


async def _delete(billing: Billing) -> httpx.Response:
    return await billing.api.request(
        "DELETE", "/api/account", json={"current_password": PASSWORD, "confirm": "DELETE"}
    )


async def _gone(billing: Billing) -> bool:
    async with billing.sessions() as session:
        return await session.get(User, billing.merchant.user_id) is None


async def _awaiting_decision(handle: WorkflowHandle[Any, Any]) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            state = await handle.query(STATE_QUERY, result_type=MessageState)
            if state.stage == Stage.AWAITING_DECISION:
                return
            await asyncio.sleep(0.1)


async def test_a_paid_subscription_is_cancelled_at_its_gateway_first(
    desk: tuple[Billing, str],
) -> None:
    billing, _ = desk
    view = await billing.pay("paddle")
    sub_id = view["gateway_subscription_id"]
    deleted = await _delete(billing)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["counts"]["subscriptions_cancelled"] == 1
    assert billing.merchant.sandbox.paddle.subscriptions[sub_id].status == "canceled"
    assert await _gone(billing)
    # The gateway's webhooks about it name an account that is gone: processed all the same.
    await billing.settle()
    async with billing.sessions() as session:
        kept = await session.scalar(
            select(Event.payload).where(
                Event.type == "account.deleted", Event.entity_id == str(billing.merchant.user_id)
            )
        )
    assert kept is not None and kept["subscriptions_cancelled"] == 1


async def test_a_workflow_waiting_for_a_decision_is_stopped(
    desk: tuple[Billing, str], temporal_dev: WorkflowEnvironment
) -> None:
    billing, queue = desk
    merchant = billing.merchant
    number = next(iter(merchant.orders))
    message_id, _, workflow_id = await store_message(
        billing.sessions,
        merchant,
        sender=merchant.orders[number]["email"],
        subject="Where is my order?",
        text=f"Hello, where is order #{number}? It has not arrived.",
    )
    await start_message_workflow(
        temporal_dev.client, merchant.user_id, message_id, workflow_id,
        timedelta(hours=24), timedelta(days=7), task_queue=queue,
    )  # fmt: skip
    handle = temporal_dev.client.get_workflow_handle(workflow_id)
    await _awaiting_decision(handle)

    deleted = await _delete(billing)
    assert deleted.status_code == 200, deleted.text
    assert await _gone(billing)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
