"""MessageWorkflow under the time-skipping test server: decisions, reminder, expiry, supersede.

Activities are the real ones, against a real PostgreSQL and the sandbox over loopback.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from integrations.sandbox_mailer import NoMailer
from kernel.enums import ActionStatus, ActionType, MessageDirection
from models import Action, Event, Message
from tests.pipeline import Merchant, running_pipeline, store_message
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    REJECT_UPDATE,
    STATE_QUERY,
    ApproveInput,
    DecisionResult,
    MessageState,
    MessageWorkflowInput,
    RejectInput,
    Stage,
)


@pytest.fixture
async def pipeline(
    temporal_time_skipping: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_time_skipping.client, own_sessions, queue) as merchant:
        yield temporal_time_skipping, own_sessions, merchant, queue


async def _start(
    env: WorkflowEnvironment,
    merchant: Merchant,
    queue: str,
    message_id: uuid.UUID,
    workflow_id: str,
) -> WorkflowHandle:
    return await env.client.start_workflow(
        MESSAGE_WORKFLOW,
        MessageWorkflowInput(user_id=merchant.user_id, message_id=message_id),
        id=workflow_id,
        task_queue=queue,
        result_type=MessageState,
    )


async def _awaiting(handle: WorkflowHandle) -> MessageState:
    """Query until the suggestion is ready (the query answers as soon as the workflow ran)."""
    for _ in range(200):
        try:
            state = await handle.query(STATE_QUERY, result_type=MessageState)
        except (RPCError, WorkflowQueryFailedError):  # the first workflow task has not run yet
            state = None
        if state is not None and state.stage != Stage.RECEIVED:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the suggestion never became ready")


async def _action(sessions: async_sessionmaker[AsyncSession], action_id: uuid.UUID) -> Action:
    async with sessions() as session:
        return (await session.execute(select(Action).where(Action.id == action_id))).scalar_one()


async def _events(sessions: async_sessionmaker[AsyncSession], action_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Event.type).where(Event.entity_id == str(action_id)).order_by(Event.created_at)
        )
        return list(rows.scalars())


async def _approval_edited(
    sessions: async_sessionmaker[AsyncSession], action_id: uuid.UUID
) -> list[str]:
    async with sessions() as session:
        payload = await session.scalar(
            select(Event.payload).where(
                Event.entity_id == str(action_id), Event.type == "action.approved"
            )
        )
    assert payload is not None
    return list(payload["edited"])


def _customer(merchant: Merchant, number: str) -> str:
    return merchant.orders[number]["email"]


async def _pending_refund(
    pipeline: tuple[WorkflowEnvironment, async_sessionmaker[AsyncSession], Merchant, str],
    *,
    unfulfilled: bool = False,
) -> tuple[str, WorkflowHandle, MessageState]:
    """A refund request for a refundable order, its workflow waiting for a decision."""
    env, sessions, merchant, queue = pipeline
    number = merchant.number(
        lambda o: (
            not o["cancelled"]
            and o["refundable"] > 0
            and (not unfulfilled or o["fulfillment_status"] == "UNFULFILLED")
        )
    )
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, number),
        subject="Refund",
        text=f"Refund order #{number}",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    return number, handle, await _awaiting(handle)


async def test_approved_refund_executes_once_and_replies_in_thread(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, "1001"),
        subject="Damaged mug",
        text="My order #1001 arrived broken, I want a refund.",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    state = await _awaiting(handle)
    assert state.stage == Stage.AWAITING_DECISION and state.action_type == ActionType.REFUND

    result = await handle.execute_update(
        APPROVE_UPDATE,
        ApproveInput(action_id=state.action_id, reply="Refunded, sorry!"),
        result_type=DecisionResult,
    )
    assert result.status == ActionStatus.APPROVED
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            REJECT_UPDATE, RejectInput(action_id=state.action_id, reason="no")
        )

    final = await handle.result()
    assert final.stage == Stage.EXECUTED and final.action_status == ActionStatus.EXECUTED
    action = await _action(sessions, state.action_id)
    assert action.status == ActionStatus.EXECUTED and action.executed_at is not None
    assert action.payload["reply"] == "Refunded, sorry!"
    # The sent reply ended the action, and with no thread.idle playbook no idle timer was
    # asked for while the suggestion waited: only after the reply.
    history = await handle.fetch_history()
    steps = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert steps == [
        "prepare_message",
        "fire_playbooks",
        "record_decision",
        "execute_action",
        "send_reply",
        "idle_playbooks",
    ], steps
    refunds = merchant.refunds()
    assert len(refunds) == 1 and refunds[0]["order"] == "#1001"
    assert merchant.shop.by_name("#1001").financial_status == "REFUNDED"

    deliveries = merchant.sandbox.sink.deliveries
    assert len(deliveries) == 1 and deliveries[0].recipients == [_customer(merchant, "1001")]
    raw = merchant.sandbox.sink.raw(0).decode()
    assert (
        "Auto-Submitted: auto-replied" in raw
        and "In-Reply-To: <" in raw
        and "Refunded, sorry!" in raw
    )
    async with sessions() as session:
        outbound = (
            (
                await session.execute(
                    select(Message).where(Message.direction == MessageDirection.OUTBOUND)
                )
            )
            .scalars()
            .all()
        )
    assert [m.message_id for m in outbound] == [deliveries[0].message_id]
    assert {"action.pending", "action.approved", "action.performed", "action.executed"} <= set(
        await _events(sessions, state.action_id)
    )
    assert await _approval_edited(sessions, state.action_id) == ["reply"]


async def test_an_approval_sending_the_draft_back_unchanged_records_no_edit(pipeline) -> None:
    """The inbox sends the reply with every approval, through a textarea (CRLF): only a
    reply that differs from the draft counts as edited, for the backtest and the proposed
    thresholds that read these events."""
    _, sessions, _, _ = pipeline
    _, handle, state = await _pending_refund(pipeline)
    drafted = (await _action(sessions, state.action_id)).payload["reply"]
    assert drafted
    await handle.execute_update(
        APPROVE_UPDATE,
        ApproveInput(action_id=state.action_id, reply=drafted.replace("\n", "\r\n") + " "),
        result_type=DecisionResult,
    )
    await handle.result()
    assert await _approval_edited(sessions, state.action_id) == []


async def test_rejection_closes_without_side_effects(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, "1002"),
        subject="Cancel",
        text="Please cancel order #1002",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    state = await _awaiting(handle)
    result = await handle.execute_update(
        REJECT_UPDATE,
        RejectInput(action_id=state.action_id, reason="customer called instead"),
        result_type=DecisionResult,
    )
    assert result.status == ActionStatus.REJECTED
    final = await handle.result()
    assert final.stage == Stage.REJECTED and final.note == "customer called instead"
    assert merchant.shop.ledger == [] and merchant.sandbox.sink.deliveries == []


async def test_pending_decision_reminds_after_a_day_and_expires_after_a_week(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, "1003"),
        subject="Where is it?",
        text="Where is my order #1003?",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    state = await _awaiting(handle)
    await env.sleep(timedelta(hours=25))
    assert "action.reminder" in await _events(sessions, state.action_id)
    assert (await _action(sessions, state.action_id)).status == ActionStatus.PENDING

    final = await handle.result()  # time skips to the 7-day expiry
    assert final.stage == Stage.REJECTED and "expired" in (final.note or "")
    assert (await _action(sessions, state.action_id)).status == ActionStatus.REJECTED
    assert merchant.sandbox.sink.deliveries == []


async def test_newer_message_in_the_thread_supersedes_the_pending_suggestion(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    sender = _customer(merchant, "1004")
    first_id, thread_id, first_wf = await store_message(
        sessions,
        merchant,
        sender=sender,
        subject="Refund",
        text="Refund order #1004 please",
    )
    first = await _start(env, merchant, queue, first_id, first_wf)
    first_state = await _awaiting(first)
    second_id, _, second_wf = await store_message(
        sessions,
        merchant,
        sender=sender,
        subject="Re: Refund",
        text="Actually, cancel order #1004 instead.",
        thread_id=thread_id,
    )
    second = await _start(env, merchant, queue, second_id, second_wf)
    second_state = await _awaiting(second)

    superseded = await first.result()
    assert superseded.stage == Stage.REJECTED and "superseded" in (superseded.note or "")
    assert (await _action(sessions, first_state.action_id)).status == ActionStatus.REJECTED
    assert second_state.stage == Stage.AWAITING_DECISION
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # the workflow has closed
        await first.execute_update(APPROVE_UPDATE, ApproveInput(action_id=first_state.action_id))
    await second.terminate("test done")


async def test_an_approval_the_order_cannot_carry_is_refused_and_stays_pending(pipeline) -> None:
    _, sessions, merchant, _ = pipeline
    number, handle, state = await _pending_refund(pipeline)
    too_much = str(merchant.orders[number]["refundable"] + 100)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            APPROVE_UPDATE,
            ApproveInput(action_id=state.action_id, payload={"amount": too_much}),
            result_type=DecisionResult,
        )
    cause = refused.value.cause.cause  # the recording step's error
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidDecision"
    assert cause.details[0]["field"] == "payload.amount" and "exceeds" in cause.message
    assert (await _action(sessions, state.action_id)).status == ActionStatus.PENDING
    assert (await handle.query(STATE_QUERY, result_type=MessageState)).stage == (
        Stage.AWAITING_DECISION
    )

    # A smaller amount under the suggested reply would tell the customer the wrong sum.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            APPROVE_UPDATE,
            ApproveInput(action_id=state.action_id, payload={"amount": "1.00"}),
            result_type=DecisionResult,
        )
    cause = refused.value.cause.cause
    assert isinstance(cause, ApplicationError) and cause.details[0]["field"] == "reply"

    # Corrected, the same action is approved and carried out.
    result = await handle.execute_update(
        APPROVE_UPDATE,
        ApproveInput(
            action_id=state.action_id,
            payload={"amount": "1.00"},
            reply=f"We have refunded 1.00 USD on order #{number}.",
        ),
        result_type=DecisionResult,
    )
    assert result.status == ActionStatus.APPROVED
    final = await handle.result()
    assert final.stage == Stage.EXECUTED
    assert [r["amount"] for r in merchant.refunds()] == ["1.00"]


async def test_an_edit_that_can_never_run_is_refused_by_the_update_validator(pipeline) -> None:
    sessions = pipeline[1]
    _, handle, state = await _pending_refund(pipeline)
    for edit, field in (
        (ApproveInput(action_id=state.action_id, reply="   "), "reply"),
        (ApproveInput(action_id=state.action_id, payload={"amount": "1e309"}), "payload.amount"),
        (ApproveInput(action_id=state.action_id, payload={"order_id": "x"}), "payload.order_id"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(APPROVE_UPDATE, edit, result_type=DecisionResult)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "InvalidDecision"
        assert cause.details[0]["field"] == field
    assert (await _action(sessions, state.action_id)).status == ActionStatus.PENDING
    await handle.terminate("test done")


async def test_refusal_by_the_store_marks_the_action_failed(pipeline) -> None:
    _, sessions, merchant, _ = pipeline
    number, handle, state = await _pending_refund(pipeline, unfulfilled=True)
    # The merchant cancels (and so refunds) the order in Shopify after the suggestion: the
    # approval passes on the order as last read, and the store refuses at execution.
    order = merchant.shop.by_name(f"#{number}")
    assert order is not None
    merchant.shop.cancel(
        order.id, reason="CUSTOMER", restock=True, refund=True, notify=False, staff_note=None
    )
    merchant.shop.run_due_jobs(everything=True)
    await handle.execute_update(
        APPROVE_UPDATE, ApproveInput(action_id=state.action_id), result_type=DecisionResult
    )
    final = await handle.result()
    assert final.stage == Stage.FAILED and "exceeds" in (final.note or "")
    action = await _action(sessions, state.action_id)
    assert action.status == ActionStatus.FAILED and "exceeds" in (action.error or "")
    assert merchant.refunds() == [] and merchant.sandbox.sink.deliveries == []


async def test_auto_replies_are_stored_but_never_answered(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, "1006"),
        subject="Out of office",
        text="I am away until Monday.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    final = await (await _start(env, merchant, queue, message_id, workflow_id)).result()
    assert final.stage == Stage.SKIPPED and "Auto-Submitted" in (final.note or "")
    async with sessions() as session:
        assert (await session.execute(select(Action))).scalars().all() == []


async def test_a_decision_for_another_action_is_refused(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, "1007"),
        subject="Hi",
        text="Status of #1007?",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    await _awaiting(handle)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=uuid.uuid4()))
    await handle.terminate("test done")


async def test_refund_done_but_reply_unsendable_is_executed_with_a_note(
    temporal_time_skipping: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(
        temporal_time_skipping.client, own_sessions, queue, mailer=NoMailer()
    ) as merchant:
        message_id, _, workflow_id = await store_message(
            own_sessions,
            merchant,
            sender=_customer(merchant, "1008"),
            subject="Broken",
            text="Order #1008 arrived damaged, refund please",
        )
        handle = await _start(temporal_time_skipping, merchant, queue, message_id, workflow_id)
        state = await _awaiting(handle)
        await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
        final = await handle.result()
    assert final.stage == Stage.EXECUTED and "reply was not sent" in (final.note or "")
    assert [e["type"] for e in merchant.shop.ledger] == ["refund"]
    action = await _action(own_sessions, state.action_id)
    assert action.status == ActionStatus.EXECUTED and "no outbound mail" in (action.error or "")
    assert "reply.failed" in await _events(own_sessions, state.action_id)


async def test_approved_cancellation_cancels_the_order_once(pipeline) -> None:
    env, sessions, merchant, queue = pipeline
    number = merchant.number(
        lambda o: (
            o["fulfillment_status"] == "UNFULFILLED"
            and not o["cancelled"]
            and o["financial_status"] == "PAID"
        )
    )
    message_id, _, workflow_id = await store_message(
        sessions,
        merchant,
        sender=_customer(merchant, number),
        subject="Please cancel",
        text=f"I ordered by mistake, please cancel order #{number}.",
    )
    handle = await _start(env, merchant, queue, message_id, workflow_id)
    state = await _awaiting(handle)
    assert state.action_type == ActionType.CANCEL
    await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
    final = await handle.result()
    assert final.stage == Stage.EXECUTED, final.note
    order = merchant.shop.by_name(f"#{number}")
    assert order is not None and order.cancelled_at is not None
    assert order.financial_status == "REFUNDED"  # refunded to the original payment
    assert [e["type"] for e in merchant.shop.ledger if e["type"] == "cancel"] == ["cancel"]
