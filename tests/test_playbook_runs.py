"""The playbook engine end to end on the Temporal dev server: real activities, a real
PostgreSQL, the sandbox store and mail sink over loopback.

A playbook that may approve on its own carries a damaged-item refund out without a
person, once; anything a cap, the threshold, a guardrail or the customer's own words
hold back waits for a person, with the reason on the execution.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from kernel.enums import ActionStatus, PlaybookExecutionStatus
from tests.pipeline import running_pipeline
from tests.playbook_support import (
    DAMAGED,
    approve,
    eventually,
    executions,
    finished,
    only_playbooks,
    paid_refundable,
    playbook,
    send_message,
    set_automation,
    set_playbook,
)
from workflows.contracts import Stage

DAMAGED_TEXT = "My order #{n} arrived broken. I would like a refund please."


@pytest.fixture
async def desk(temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]):
    queue = f"pb-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        await only_playbooks(own_sessions, merchant.user_id, DAMAGED)
        yield temporal_dev.client, own_sessions, merchant, queue


async def _automatic(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> uuid.UUID:
    """The damaged-item playbook, approving on its own at a threshold the offline
    suggester reaches."""
    return await set_playbook(
        sessions, user_id, DAMAGED, requires_approval=False, confidence_threshold=0.5
    )


async def test_a_damaged_item_refund_executes_on_its_own_exactly_once(desk) -> None:
    client, sessions, merchant, queue = desk
    playbook_id = await _automatic(sessions, merchant.user_id)
    number = paid_refundable(merchant)

    handle, _ = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    state = await finished(handle)

    assert state.stage == Stage.EXECUTED and state.action_status == ActionStatus.EXECUTED
    assert len(merchant.refunds()) == 1
    replies = [d for d in merchant.sandbox.sink.deliveries if d.message_id.startswith("<reply-")]
    assert len(replies) == 1
    done = await eventually(lambda: _final(sessions, playbook_id), 30, "the execution to finish")
    assert [(e.status, e.automatic, e.decided_by) for e in done] == [
        (PlaybookExecutionStatus.executed, True, f"playbook:{playbook_id}")
    ]
    assert done[0].action_id == state.action_id and done[0].refund_amount is not None
    assert done[0].workflow_id and done[0].trigger_data["conditions"]
    counted = await playbook(sessions, playbook_id)
    assert counted.execution_count == 1 and counted.last_executed_at is not None


async def test_below_the_threshold_it_waits_for_a_person_who_approves(desk) -> None:
    client, sessions, merchant, queue = desk
    playbook_id = await set_playbook(
        sessions, merchant.user_id, DAMAGED, requires_approval=False, confidence_threshold=1.0
    )
    number = paid_refundable(merchant)
    handle, _ = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    pending = await eventually(
        lambda: _with_status(sessions, playbook_id, "pending"), 30, "pending"
    )
    assert [b["code"] for b in pending[0].trigger_data["blocked_by"]] == ["below_threshold"]
    assert merchant.refunds() == []

    assert (await approve(handle)).stage == Stage.EXECUTED
    done = await eventually(lambda: _final(sessions, playbook_id), 30, "the execution to finish")
    assert [(e.status, e.automatic, e.decided_by) for e in done] == [
        (PlaybookExecutionStatus.executed, False, "person")
    ]


async def test_a_refund_above_the_daily_cap_waits_with_the_reason(desk) -> None:
    client, sessions, merchant, queue = desk
    playbook_id = await _automatic(sessions, merchant.user_id)
    await set_automation(sessions, merchant.user_id, daily_refund_cap=Decimal("1"))
    number = paid_refundable(merchant)
    await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    pending = await eventually(lambda: _blocked(sessions, playbook_id), 30, "a blocked run")
    assert "daily_refund_cap" in [b["code"] for b in pending]
    assert merchant.refunds() == []


async def test_the_kill_switch_stops_every_playbook(desk) -> None:
    client, sessions, merchant, queue = desk
    playbook_id = await _automatic(sessions, merchant.user_id)
    await set_automation(sessions, merchant.user_id, enabled=False)
    number = paid_refundable(merchant)
    handle, _ = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    # Playbooks are evaluated before the suggestion waits: once a person has decided,
    # any run there would be has been started.
    assert (await approve(handle)).stage == Stage.EXECUTED
    assert await executions(sessions, playbook_id) == []
    assert len(merchant.refunds()) == 1  # the person's approval, not a playbook's


async def _final(sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID):
    found = await executions(sessions, playbook_id)
    final = {PlaybookExecutionStatus.executed, PlaybookExecutionStatus.failed}
    return found if found and all(e.status in final for e in found) else None


async def _with_status(sessions, playbook_id: uuid.UUID, status: str):
    found = await executions(sessions, playbook_id)
    return found if found and all(e.status.value == status for e in found) else None


async def _blocked(sessions, playbook_id: uuid.UUID):
    found = await executions(sessions, playbook_id)
    if not found:
        return None
    codes = (found[0].result or {}).get("blocked_by") or found[0].trigger_data.get("blocked_by")
    return codes or None
