"""Playbook waits, follow-ups and idle triggers under the time-skipping test server: days
pass in seconds, the activities are the real ones against PostgreSQL and the sandbox.

A wait is a durable timer; a customer's reply ends the waits that say so; a thread left
idle after our reply gets its follow-up, once, and a reply in time cancels it.
"""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from kernel.enums import ActionStatus, PlaybookExecutionStatus
from models import Action
from models.playbook import PlaybookExecution
from tests.pipeline import Merchant, running_pipeline
from tests.playbook_support import (
    act,
    add_playbook,
    approve,
    eventually,
    executions,
    finished,
    on_message,
    only_playbooks,
    paid_refundable,
    playbook,
    rule,
    send_message,
    skip_time,
)
from workflows.contracts import Stage
from workflows.playbook_contracts import CUSTOMER_REPLIED_SIGNAL

DAYS = 86_400
DAMAGED_TEXT = "My order #{n} arrived broken. I would like a refund please."


@pytest.fixture
async def desk(
    temporal_time_skipping: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
):
    queue = f"timers-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_time_skipping.client, own_sessions, queue) as merchant:
        await only_playbooks(own_sessions, merchant.user_id)  # none of the defaults
        yield temporal_time_skipping, own_sessions, merchant, queue


def _text(delivery: Any) -> str:
    """The delivered message's text part, decoded."""
    message = message_from_bytes(base64.b64decode(delivery.raw_b64), policy=default)
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


def _replies(merchant: Merchant) -> list[Any]:
    return [d for d in merchant.sandbox.sink.deliveries if d.message_id.startswith("<reply-")]


async def _run(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID
) -> tuple[PlaybookExecution, WorkflowHandle[Any, Any]]:
    found = await eventually(lambda: executions(sessions, playbook_id), 30, "an execution")
    assert len(found) == 1 and found[0].workflow_id
    return found[0], env.client.get_workflow_handle(found[0].workflow_id)


async def _refund_then_followup(sessions, merchant: Merchant, **wait: Any) -> uuid.UUID:
    return await add_playbook(
        sessions,
        merchant.user_id,
        "Refund, then ask how it went",
        on_message("damaged_item"),
        [
            act("approve_suggestion", action_types=["REFUND"]),
            act("wait", seconds=3 * DAYS, **wait),
            act(
                "send_followup", template="Hi {customer_first_name}, is all well with {order_name}?"
            ),
        ],
        [rule("suggestion.action_type", "eq", "REFUND")],
        requires_approval=False,
        confidence_threshold=0.5,
    )


async def test_a_wait_of_three_days_then_a_followup_sent_once(desk) -> None:
    env, sessions, merchant, queue = desk
    playbook_id = await _refund_then_followup(sessions, merchant)
    number = paid_refundable(merchant)
    handle, _ = await send_message(
        env.client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    assert (await finished(handle, env=env)).stage == Stage.EXECUTED
    execution, run = await _run(env, sessions, playbook_id)
    await skip_time(env, timedelta(days=3))
    outcome = await finished(run, env=env)

    assert outcome["status"] == "executed", outcome
    assert len(merchant.refunds()) == 1
    replies = _replies(merchant)
    assert len(replies) == 2 and len({r.message_id for r in replies}) == 2
    followup = _text(replies[-1])
    assert f"is all well with #{number}?" in followup
    (done,) = await executions(sessions, playbook_id)
    assert done.status is PlaybookExecutionStatus.executed and "waiting" not in (done.result or {})
    assert (await playbook(sessions, playbook_id)).execution_count == 1
    async with sessions() as session:
        followups = (
            await session.execute(select(Action).where(Action.payload["followup"].is_not(None)))
        ).scalars()
        assert [(a.status, a.payload["followup"]) for a in followups] == [
            (ActionStatus.EXECUTED, str(execution.id))
        ]


async def test_a_customer_reply_ends_the_wait_and_no_followup_goes_out(desk) -> None:
    env, sessions, merchant, queue = desk
    playbook_id = await _refund_then_followup(sessions, merchant)
    number = paid_refundable(merchant)
    handle, thread = await send_message(
        env.client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    assert (await finished(handle, env=env)).stage == Stage.EXECUTED
    _, run = await _run(env, sessions, playbook_id)
    await eventually(lambda: _waiting(sessions, playbook_id), 30, "the wait to start")

    await send_message(
        env.client, sessions, merchant, queue, number=number, text="Thanks!", thread_id=thread
    )
    # The reply ends the wait at once: no time needs to pass.
    await eventually(lambda: _signalled(run), 90, "the reply to reach the run")
    outcome = await finished(run, env=env)

    assert outcome["status"] == "executed" and "customer replied" in outcome["stopped"], outcome
    assert len(_replies(merchant)) == 1  # the refund's reply, no follow-up


async def test_a_wait_that_ignores_replies_still_sends_the_followup(desk) -> None:
    env, sessions, merchant, queue = desk
    playbook_id = await _refund_then_followup(sessions, merchant, cancel_on_reply=False)
    number = paid_refundable(merchant)
    handle, thread = await send_message(
        env.client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    await finished(handle, env=env)
    _, run = await _run(env, sessions, playbook_id)
    await eventually(lambda: _waiting(sessions, playbook_id), 30, "the wait to start")
    await send_message(
        env.client, sessions, merchant, queue, number=number, text="Thanks!", thread_id=thread
    )
    await eventually(lambda: _signalled(run), 90, "the reply to reach the run")
    await skip_time(env, timedelta(days=3))
    outcome = await finished(run, env=env)
    assert outcome["status"] == "executed" and "stopped" not in outcome
    assert len(_replies(merchant)) == 2


async def _idle_followup(sessions, merchant: Merchant) -> uuid.UUID:
    return await add_playbook(
        sessions,
        merchant.user_id,
        "Nudge after two quiet days",
        {"version": 2, "event": "thread.idle", "after_seconds": 2 * DAYS, "since": "our_reply"},
        [act("send_followup", template="Did our answer about {order_name} help?")],
        requires_approval=False,
    )


async def test_two_idle_days_after_our_reply_bring_one_followup(desk) -> None:
    env, sessions, merchant, queue = desk
    playbook_id = await _idle_followup(sessions, merchant)
    number = paid_refundable(merchant)
    handle, _ = await send_message(
        env.client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    assert (await approve(handle, env)).stage == Stage.EXECUTED  # a person approves the refund
    _, run = await _run(env, sessions, playbook_id)
    await skip_time(env, timedelta(days=2, minutes=1))
    outcome = await finished(run, env=env)

    assert outcome["status"] == "executed", outcome
    replies = _replies(merchant)
    assert len(replies) == 2 and f"about #{number} help?" in _text(replies[-1])
    (done,) = await executions(sessions, playbook_id)
    assert done.trigger_data["event"]["event"] == "thread.idle"


async def test_a_reply_within_the_idle_time_cancels_the_idle_playbook(desk) -> None:
    env, sessions, merchant, queue = desk
    playbook_id = await _idle_followup(sessions, merchant)
    number = paid_refundable(merchant)
    handle, thread = await send_message(
        env.client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    await approve(handle, env)
    _, run = await _run(env, sessions, playbook_id)
    await send_message(
        env.client, sessions, merchant, queue, number=number, text="Thanks!", thread_id=thread
    )
    # The reply ends the idle time at once: no time needs to pass.
    await eventually(lambda: _signalled(run), 90, "the reply to reach the run")
    outcome = await finished(run, env=env)

    assert outcome == {"fired": False}
    (done,) = await executions(sessions, playbook_id)
    assert done.status is PlaybookExecutionStatus.rejected
    assert done.error == "the customer replied before the idle time ran out"
    assert len(_replies(merchant)) == 1
    assert (await playbook(sessions, playbook_id)).execution_count == 0


async def _waiting(sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID) -> bool:
    return any("waiting" in (e.result or {}) for e in await executions(sessions, playbook_id))


async def _signalled(run: WorkflowHandle[Any, Any]) -> bool:
    """The run has heard that the customer wrote again."""
    async for event in run.fetch_history_events():
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and event.workflow_execution_signaled_event_attributes.signal_name
            == CUSTOMER_REPLIED_SIGNAL
        ):
            return True
    return False
