"""Every path after the expiry ends: a decision in flight when the expiry fires, whose
recording then fails, leaves the action expired instead of a workflow waiting for ever.

Workflow logic alone, under the dev server with windows of seconds: the steps are stand-ins
registered under the activities' contract names, so the decision's recording can be held
until the workflow's history shows the expiry fired, then failed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.enums import ActionStatus, ActionType
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    PREPARE_MESSAGE,
    RECORD_DECISION,
    REMIND,
    STATE_QUERY,
    ActionRef,
    ApproveInput,
    DecisionInput,
    MessageState,
    MessageWorkflowInput,
    Prepared,
    PrepareInput,
    Stage,
)
from workflows.message import MessageWorkflow

ACTION_ID = uuid.uuid4()


class Steps:
    def __init__(self) -> None:
        self.approval_started = asyncio.Event()
        self.fail_approval = asyncio.Event()
        self.recorded: list[DecisionInput] = []

    @activity.defn(name=PREPARE_MESSAGE)
    async def prepare(self, data: PrepareInput) -> Prepared:
        return Prepared(
            action_id=ACTION_ID, action_type=ActionType.REFUND, action_status=ActionStatus.PENDING
        )

    @activity.defn(name=REMIND)
    async def remind(self, data: ActionRef) -> None:
        return None

    @activity.defn(name=RECORD_DECISION)
    async def record(self, data: DecisionInput) -> ActionStatus:
        if data.decision == "approve":
            self.approval_started.set()
            await self.fail_approval.wait()
            raise ApplicationError("the database refused it", type="Conflict", non_retryable=True)
        self.recorded.append(data)
        return ActionStatus.REJECTED


async def _timers_fired(handle: WorkflowHandle, *, at_least: int) -> bool:
    history = await handle.fetch_history()
    fired = sum(1 for event in history.events if event.HasField("timer_fired_event_attributes"))
    return fired >= at_least


async def _awaiting(handle: WorkflowHandle) -> bool:
    state = await handle.query(STATE_QUERY, result_type=MessageState)
    return state.stage == Stage.AWAITING_DECISION


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the workflow until `check` holds (the caller's timeout bounds the wait)."""
    while not await check():  # noqa: ASYNC110 (the server offers no event to wait on)
        await asyncio.sleep(0.05)


async def test_a_decision_whose_recording_fails_after_the_expiry_still_ends(
    temporal_dev: WorkflowEnvironment,
) -> None:
    env, steps, queue = temporal_dev, Steps(), f"expiry-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[MessageWorkflow],
        activities=[steps.prepare, steps.remind, steps.record],
    ):
        handle = await env.client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageWorkflowInput(
                user_id=uuid.uuid4(),
                message_id=uuid.uuid4(),
                reminder_after=timedelta(seconds=1),
                expire_after=timedelta(seconds=2),
            ),
            id=f"msg-expiry-{uuid.uuid4()}",
            task_queue=queue,
            result_type=MessageState,
        )
        async with asyncio.timeout(30):
            await _until(lambda: _awaiting(handle))
            approval = asyncio.create_task(
                handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=ACTION_ID))
            )
            await steps.approval_started.wait()
            # The reminder's timer, then the expiry's, fire while the approval is recording.
            await _until(lambda: _timers_fired(handle, at_least=2))
            steps.fail_approval.set()
            try:
                await approval
            except WorkflowUpdateFailedError:
                pass
            else:
                raise AssertionError("a decision that could not be recorded was accepted")
            final = await handle.result()

    assert final.stage == Stage.REJECTED and final.action_status == ActionStatus.REJECTED
    assert final.note is not None and final.note.startswith("expired after")
    assert [d.decided_by for d in steps.recorded] == ["system"]
