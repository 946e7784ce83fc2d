"""Every path after the expiry ends: a decision in flight when the expiry fires, whose
recording then fails, leaves the action expired instead of a workflow waiting for ever.

The real worker, activities, PostgreSQL and sandbox, under the dev server with windows of
seconds. The test holds the action's row lock, so the approval's recording waits on it;
once the workflow's history shows the expiry fired, it marks the action decided elsewhere
and lets go, and the recording fails as it would on any conflict.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kernel.enums import ActionStatus
from models import Action
from services.message_workflows import start_message_workflow
from tests.pipeline import running_pipeline, store_message
from workflows.contracts import APPROVE_UPDATE, STATE_QUERY, ApproveInput, MessageState, Stage
from workflows.message import MessageWorkflow


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the workflow until `check` holds (the caller's timeout bounds the wait)."""
    while not await check():  # noqa: ASYNC110 (the server offers no event to wait on)
        await asyncio.sleep(0.05)


async def _timers_fired(handle: WorkflowHandle, *, at_least: int) -> bool:
    history = await handle.fetch_history()
    fired = sum(1 for event in history.events if event.HasField("timer_fired_event_attributes"))
    return fired >= at_least


async def test_a_decision_whose_recording_fails_after_the_expiry_still_ends(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    queue = f"expiry-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        message_id, _, workflow_id = await store_message(
            own_sessions,
            merchant,
            sender=merchant.orders["1001"]["email"],
            subject="Damaged mug",
            text="My order #1001 arrived broken, I want a refund.",
        )
        await start_message_workflow(
            temporal_dev.client,
            merchant.user_id,
            message_id,
            workflow_id,
            timedelta(seconds=1),
            timedelta(seconds=2),
            task_queue=queue,
        )
        handle = temporal_dev.client.get_workflow_handle(workflow_id, result_type=MessageState)

        async def awaiting() -> bool:
            # Waiting on its reminder's timer: past the hand-off to the playbooks, whose
            # execution rows would wait on the lock this test takes on the action.
            state = await handle.query(STATE_QUERY, result_type=MessageState)
            history = await handle.fetch_history()
            started = any(e.HasField("timer_started_event_attributes") for e in history.events)
            return state.stage == Stage.AWAITING_DECISION and started

        async with asyncio.timeout(60):
            await _until(awaiting)
            state = await handle.query(STATE_QUERY, result_type=MessageState)
            assert state.action_id is not None
            async with own_sessions() as elsewhere:
                action = (
                    await elsewhere.execute(
                        select(Action).where(Action.id == state.action_id).with_for_update()
                    )
                ).scalar_one()
                approval = asyncio.create_task(
                    handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
                )
                # The reminder's timer, then the expiry's, fire while the approval waits.
                await _until(lambda: _timers_fired(handle, at_least=2))
                action.status = ActionStatus.REJECTED
                await elsewhere.commit()
            with pytest.raises(WorkflowUpdateFailedError):
                await approval
            final = await handle.result()
            history = await handle.fetch_history()

    assert final.stage == Stage.REJECTED and final.action_status == ActionStatus.REJECTED
    assert final.note is not None and final.note.startswith("expired after")
    # The path replays: the workflow code reaches the same end from its history.
    await Replayer(
        workflows=[MessageWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)
