"""The whole pipeline over HTTP under the Temporal dev server: ingest → suggestion →
decision → execution, with the real worker, real PostgreSQL and the sandbox over loopback.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.plans import PLAN_LIMITS
from kernel.settings import Settings
from models import Action, UsageRecord
from services.message_workflows import reconcile_unstarted
from services.usage import ensure_subscription, increment_email_received
from tests.api_support import api_client, raw_email, token_for
from tests.pipeline import Merchant, running_pipeline
from workflows.contracts import STATE_QUERY, MessageState, Stage

SETTINGS = Settings()
WAIT_S = 30


@dataclass
class Pipeline:
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    merchant: Merchant
    token: str
    queue: str
    api: httpx.AsyncClient

    def customer(self, number: str = "1001") -> str:
        return self.merchant.orders[number]["email"]

    async def ingest(self, raw: bytes) -> dict[str, Any]:
        response = await self.api.post("/api/inbound/email", content=raw)
        assert response.status_code == 202, response.text
        return response.json()

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/api/messages/{message_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_for(
        self, message_id: str, ready: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                detail = await self.message(message_id)
                if ready(detail):
                    return detail
                await asyncio.sleep(0.05)

    async def wait_pending(self, message_id: str) -> dict[str, Any]:
        """The action shows PENDING, as a person in the inbox sees it. A decision sent
        right now must work even if the workflow has not yet taken in the activity's
        result (its update handler waits for that)."""
        return await self.wait_for(message_id, _status("PENDING"))


def _status(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: detail["action"] is not None and detail["action"]["status"] == status


@pytest.fixture
async def pipeline(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Pipeline]:
    queue = f"http-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        token = await token_for(own_sessions, merchant.user_id)
        app = create_app(engine, temporal_dev.client, SETTINGS, task_queue=queue)
        async with api_client(app, token) as api:
            yield Pipeline(temporal_dev, own_sessions, merchant, token, queue, api)


async def _result(pipeline: Pipeline, workflow_id: str) -> MessageState:
    handle = pipeline.env.client.get_workflow_handle(workflow_id, result_type=MessageState)
    async with asyncio.timeout(WAIT_S):
        return await handle.result()


async def test_ingest_suggest_approve_execute(pipeline: Pipeline) -> None:
    raw = raw_email(
        sender=pipeline.customer("1001"),
        subject="Broken mug",
        body="My order #1001 arrived broken. I would like a refund please.",
    )
    accepted = await pipeline.ingest(raw)
    pending = await pipeline.wait_pending(accepted["message_id"])

    # The message as the inbox shows it, with the suggestion and its pending action.
    assert pending["workflow_id"] == accepted["workflow_id"]
    assert pending["message"]["from_address"] == pipeline.customer("1001")
    assert pending["message"]["order_id"] is not None
    assert pending["thread"]["customer_email"] == pipeline.customer("1001")
    suggestion, action = pending["suggestion"], pending["action"]
    assert suggestion["proposed_action"] == "REFUND"
    assert suggestion["order_id"] == pending["message"]["order_id"]
    assert 0 <= suggestion["confidence"] <= 1 and "#1001" in suggestion["reply"]
    assert set(suggestion) == {
        "id",
        "reply",
        "proposed_action",
        "confidence",
        "order_id",
        "provider",
        "intent",
        "rationale",
        "guardrails",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
    }
    assert suggestion["provider"] == "offline-rules" and suggestion["guardrails"] == []
    assert action["type"] == "REFUND" and action["error"] is None and action["executed_at"] is None
    assert set(action) == {"id", "type", "status", "payload", "error", "executed_at"}
    state = await pipeline.env.client.get_workflow_handle(accepted["workflow_id"]).query(
        STATE_QUERY, result_type=MessageState
    )
    assert state.stage == Stage.AWAITING_DECISION and str(state.action_id) == action["id"]

    approved = await pipeline.api.post(
        f"/api/actions/{action['id']}/approve", json={"reply": "Refunded in full, sorry!"}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json() == {"action_id": action["id"], "status": "APPROVED"}

    final = await _result(pipeline, accepted["workflow_id"])
    assert final.stage == Stage.EXECUTED
    executed = await pipeline.message(accepted["message_id"])
    assert executed["action"]["status"] == "EXECUTED"
    assert executed["action"]["executed_at"] is not None
    refunds = pipeline.merchant.refunds()
    assert len(refunds) == 1 and refunds[0]["order"] == "#1001"
    assert len(pipeline.merchant.sandbox.sink.deliveries) == 1
    assert "Refunded in full, sorry!" in pipeline.merchant.sandbox.sink.raw(0).decode()

    # A second decision is refused, and so is a redelivery's attempt to start over.
    again = await pipeline.api.post(f"/api/actions/{action['id']}/approve")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    reject = await pipeline.api.post(f"/api/actions/{action['id']}/reject", json={"reason": "x"})
    assert reject.status_code == 409
    handle = pipeline.env.client.get_workflow_handle(accepted["workflow_id"])
    finished = await handle.describe()
    assert await pipeline.ingest(raw) == accepted
    # No second run exists that could act: the workflow id's latest run is the finished one.
    latest = await handle.describe()
    assert (latest.run_id, latest.status) == (finished.run_id, WorkflowExecutionStatus.COMPLETED)
    assert len(pipeline.merchant.refunds()) == 1
    assert len(pipeline.merchant.sandbox.sink.deliveries) == 1


async def test_concurrent_approvals_one_wins(pipeline: Pipeline) -> None:
    accepted = await pipeline.ingest(
        raw_email(
            sender=pipeline.customer("1002"),
            subject="Refund",
            body="Please refund order #1002, it arrived damaged.",
        )
    )
    pending = await pipeline.wait_pending(accepted["message_id"])
    action_id = pending["action"]["id"]

    # All pass the database check together; the workflow's validator refuses all but one.
    answers = await asyncio.gather(
        *(pipeline.api.post(f"/api/actions/{action_id}/approve") for _ in range(5))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409, 409, 409, 409], [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 409:
            # Refused while the winner's decision is recorded, or once its action runs.
            error = answer.json()["error"]
            assert error["code"] == "conflict", error
            assert any(
                why in error["message"].lower()
                for why in ("already approved", "not waiting for a decision")
            ), error
    assert (await _result(pipeline, accepted["workflow_id"])).stage == Stage.EXECUTED
    assert len(pipeline.merchant.refunds()) == 1


async def test_reject_records_the_reason_and_does_nothing(pipeline: Pipeline) -> None:
    accepted = await pipeline.ingest(
        raw_email(
            sender=pipeline.customer("1001"),
            subject="Cancel please",
            body="Please cancel my order #1001.",
        )
    )
    pending = await pipeline.wait_pending(accepted["message_id"])
    action_id = pending["action"]["id"]
    missing_reason = await pipeline.api.post(f"/api/actions/{action_id}/reject", json={})
    assert missing_reason.status_code == 422

    rejected = await pipeline.api.post(
        f"/api/actions/{action_id}/reject", json={"reason": "Order already packed"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json() == {"action_id": action_id, "status": "REJECTED"}
    final = await _result(pipeline, accepted["workflow_id"])
    assert final.stage == Stage.REJECTED and final.note == "Order already packed"
    assert (await pipeline.message(accepted["message_id"]))["action"]["status"] == "REJECTED"
    assert pipeline.merchant.shop.ledger == []
    assert pipeline.merchant.sandbox.sink.deliveries == []
    late = await pipeline.api.post(f"/api/actions/{action_id}/approve")
    assert late.status_code == 409


async def test_message_stored_while_temporal_was_away_is_picked_up(
    pipeline: Pipeline, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    offline = create_app(own_sessions.kw["bind"], None, SETTINGS)
    async with api_client(offline, pipeline.token) as api:
        response = await api.post(
            "/api/inbound/email",
            content=raw_email(sender=pipeline.customer("1003"), body="Where is #1003?"),
        )
    assert response.status_code == 202
    accepted = response.json()
    assert (await pipeline.message(accepted["message_id"]))["action"] is None

    started = await reconcile_unstarted(
        own_sessions, pipeline.env.client, SETTINGS, task_queue=pipeline.queue
    )
    assert started == 1
    pending = await pipeline.wait_pending(accepted["message_id"])
    assert pending["suggestion"] is not None
    handle = pipeline.env.client.get_workflow_handle(accepted["workflow_id"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.terminate("test over")


async def test_a_payload_the_store_client_cannot_read_is_refused_at_approval(
    pipeline: Pipeline,
) -> None:
    accepted = await pipeline.ingest(
        raw_email(sender=pipeline.customer("1001"), body="Order #1001 arrived broken, refund it.")
    )
    pending = await pipeline.wait_pending(accepted["message_id"])
    action_id = pending["action"]["id"]
    refused = {
        "payload.line_items": {"payload": {"line_items": [{"qty": 1}]}},
        "payload.amount": {"payload": {"amount": "-5"}},
        "payload.shop_domain": {"payload": {"shop_domain": "other.myshopify.com"}},
        "reply": {"reply": "  "},
    }
    for field, body in refused.items():
        answer = await pipeline.api.post(f"/api/actions/{action_id}/approve", json=body)
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["code"] == "invalid_decision" and error["field"].startswith(
            field.split(".")[0]
        )
        assert error["reason"], error
    # Too much money, checked against the order as last read.
    answer = await pipeline.api.post(
        f"/api/actions/{action_id}/approve", json={"payload": {"amount": "100000.00"}}
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "payload.amount"
    assert (await pipeline.message(accepted["message_id"]))["action"]["status"] == "PENDING"
    assert pipeline.merchant.refunds() == [] and pipeline.merchant.sandbox.sink.deliveries == []


async def test_a_payload_the_store_client_cannot_read_fails_at_once(pipeline: Pipeline) -> None:
    """A request stored by an earlier attempt that the Shopify client cannot read (here: no
    `refund_input`) raises a KeyError: bad data, final on the first attempt with its message,
    not retried for half an hour."""
    accepted = await pipeline.ingest(
        raw_email(sender=pipeline.customer("1001"), body="Order #1001 arrived broken, refund it.")
    )
    pending = await pipeline.wait_pending(accepted["message_id"])
    assert pending["action"]["type"] == "REFUND"
    async with pipeline.sessions() as session, session.begin():
        action = await session.get(Action, uuid.UUID(pending["action"]["id"]))
        assert action is not None
        action.payload = {**action.payload, "prepared": {"refund": {}}}
    approved = await pipeline.api.post(f"/api/actions/{pending['action']['id']}/approve")
    assert approved.status_code == 200, approved.text

    failed = await pipeline.wait_for(accepted["message_id"], _status("FAILED"))
    assert "KeyError" in failed["action"]["error"] and "refund_input" in failed["action"]["error"]
    handle = pipeline.env.client.get_workflow_handle(accepted["workflow_id"])
    execute_attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in (await handle.fetch_history()).events
        if event.HasField("activity_task_started_event_attributes")
    ]
    assert max(execute_attempts) == 1  # no step was tried twice


async def test_an_approval_the_plan_cannot_send_is_refused_and_nothing_moves(
    pipeline: Pipeline,
) -> None:
    accepted = await pipeline.ingest(
        raw_email(sender=pipeline.customer("1001"), body="Order #1001 arrived broken, refund it.")
    )
    action_id = (await pipeline.wait_pending(accepted["message_id"]))["action"]["id"]
    user_id = pipeline.merchant.user_id
    async with pipeline.sessions() as session, session.begin():
        subscription = await ensure_subscription(session, user_id)
        assert await increment_email_received(session, user_id)  # the period's row
        await session.execute(
            update(UsageRecord)
            .where(UsageRecord.subscription_id == subscription.id)
            .values(emails_sent=PLAN_LIMITS[subscription.plan_type].emails_sent)
        )
    at_limit = await pipeline.api.post(f"/api/actions/{action_id}/approve")
    assert at_limit.status_code == 409, at_limit.text
    assert at_limit.json()["error"]["code"] == "limit_reached"

    async with pipeline.sessions() as session, session.begin():
        subscription = await ensure_subscription(session, user_id)
        subscription.current_period_end = datetime.now(UTC) - timedelta(minutes=1)
        subscription.current_period_start = subscription.current_period_end - timedelta(days=14)
    expired = await pipeline.api.post(f"/api/actions/{action_id}/approve")
    assert expired.status_code == 409, expired.text
    assert expired.json()["error"]["code"] == "not_entitled"

    assert (await pipeline.message(accepted["message_id"]))["action"]["status"] == "PENDING"
    assert pipeline.merchant.refunds() == [] and pipeline.merchant.sandbox.sink.deliveries == []
