"""The playbook engine end to end on the Temporal dev server: real activities, a real
PostgreSQL, the sandbox store and mail sink over loopback.

A playbook that may approve on its own carries a damaged-item refund out without a
person, once; anything a cap, the threshold, a guardrail or the customer's own words
hold back waits for a person, with the reason on the execution.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.plans import PLAN_LIMITS
from kernel.enums import ActionStatus, PlanType, PlaybookExecutionStatus
from kernel.settings import Settings
from models import Event, Thread
from tests.api_support import api_client, raw_email, token_for
from tests.factories import set_usage
from tests.pipeline import running_pipeline
from tests.playbook_support import (
    DAMAGED,
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


async def _tagger(sessions, user_id: uuid.UUID, name: str, tag: str, **flags: Any) -> uuid.UUID:
    return await add_playbook(
        sessions,
        user_id,
        name,
        on_message("damaged_item"),
        [act("tag_thread", tags=[tag])],
        requires_approval=False,
        **flags,
    )


async def _thread_tags(sessions, thread_id: uuid.UUID) -> list[str]:
    async with sessions() as session:
        thread = await session.get(Thread, thread_id)
        assert thread is not None
        return list(thread.tags)


async def test_priority_and_stop_processing_leave_one_execution(desk) -> None:
    client, sessions, merchant, queue = desk
    await only_playbooks(sessions, merchant.user_id)
    first = await _tagger(
        sessions, merchant.user_id, "First", "first", priority=10, stop_processing=True
    )
    second = await _tagger(sessions, merchant.user_id, "Second", "second", priority=20)
    number = paid_refundable(merchant)
    handle, thread = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    await approve(handle)  # nothing here approves the refund: a person does
    done = await eventually(lambda: _final(sessions, first), 30, "the first playbook's run")
    assert [e.status for e in done] == [PlaybookExecutionStatus.executed]
    assert await executions(sessions, second) == []
    assert await _thread_tags(sessions, thread) == ["first"]


async def test_without_stop_processing_both_playbooks_run_in_priority_order(desk) -> None:
    client, sessions, merchant, queue = desk
    await only_playbooks(sessions, merchant.user_id)
    first = await _tagger(sessions, merchant.user_id, "First", "first", priority=10)
    second = await _tagger(sessions, merchant.user_id, "Second", "second", priority=20)
    number = paid_refundable(merchant)
    handle, thread = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    await approve(handle)
    for playbook_id in (first, second):
        done = await eventually(lambda p=playbook_id: _final(sessions, p), 30, "both runs")
        assert len(done) == 1
    assert await _thread_tags(sessions, thread) == ["first", "second"]


async def test_a_person_approving_at_once_still_completes_the_playbook_run(desk) -> None:
    """A decision sent while the playbooks are being fired is recorded after them, so the
    run hears it (it used to wait for days, its execution pending)."""
    client, sessions, merchant, queue = desk
    playbook_id = await set_playbook(sessions, merchant.user_id, DAMAGED, confidence_threshold=0.5)
    number = paid_refundable(merchant)
    handle, _ = await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    assert (await approve(handle)).stage == Stage.EXECUTED
    done = await eventually(lambda: _final(sessions, playbook_id), 30, "the run to finish")
    assert [(e.status, e.decided_by) for e in done] == [
        (PlaybookExecutionStatus.executed, "person")
    ]


async def test_failures_in_a_row_pause_the_playbook_with_the_reason(desk) -> None:
    client, sessions, merchant, queue = desk
    await only_playbooks(sessions, merchant.user_id)
    await set_automation(sessions, merchant.user_id, pause_after_failures=1)
    playbook_id = await add_playbook(
        sessions,
        merchant.user_id,
        "Thank everyone at once",
        on_message(),
        [act("send_followup", template="Thanks, we are on it.")],
        requires_approval=False,
    )
    async with sessions() as session, session.begin():
        await set_usage(
            session, merchant.user_id, emails_sent=PLAN_LIMITS[PlanType.TRIAL].emails_sent or 0
        )
    number = paid_refundable(merchant)
    await send_message(
        client, sessions, merchant, queue, number=number, text=DAMAGED_TEXT.format(n=number)
    )
    done = await eventually(lambda: _final(sessions, playbook_id), 30, "the failed run")
    assert [e.status for e in done] == [PlaybookExecutionStatus.failed]
    assert "emails for this period are used" in (done[0].error or "")
    paused = await playbook(sessions, playbook_id)
    assert not paused.enabled and paused.consecutive_failures == 1
    assert paused.disabled_reason and "paused after 1 failed" in paused.disabled_reason
    async with sessions() as session:
        events = await session.execute(
            select(Event.type).where(Event.entity_id == str(playbook_id))
        )
        assert "playbook.paused" in set(events.scalars())


async def test_a_duplicate_delivery_makes_one_run(desk, temporal_dev, own_sessions) -> None:
    client, sessions, merchant, queue = desk
    playbook_id = await _automatic(sessions, merchant.user_id)
    engine = own_sessions.kw["bind"]
    token = await token_for(sessions, merchant.user_id)
    app = create_app(engine, client, Settings(), task_queue=queue)
    number = paid_refundable(merchant)
    raw = raw_email(
        sender=merchant.orders[number]["email"],
        subject="Damaged",
        body=DAMAGED_TEXT.format(n=number),
    )
    async with api_client(app, token) as api:
        answers = [await api.post("/api/inbound/email", content=raw) for _ in range(3)]
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["message_id"] for a in answers}) == 1
        message_id = answers[0].json()["message_id"]
        done = await eventually(lambda: _final(sessions, playbook_id), 60, "the run")
        detail = (await api.get(f"/api/messages/{message_id}")).json()
    assert len(done) == 1 and done[0].status is PlaybookExecutionStatus.executed
    assert detail["playbook"] == {
        "id": str(playbook_id),
        "name": "Refund damaged items",
        "execution_id": str(done[0].id),
    }
    assert len(merchant.refunds()) == 1
