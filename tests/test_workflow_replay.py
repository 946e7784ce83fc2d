"""MessageWorkflow stays deterministic: today's runs replay, and so do the histories kept in
tests/data/histories (recorded from earlier code). A change that breaks an old history needs
`workflow.patched`. Set DESKPILOT_RECORD_HISTORIES=1 to record today's runs there."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.pipeline import running_pipeline, store_message
from tests.playbook_support import finished
from tests.test_message_workflow import _awaiting, _customer
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    ApproveInput,
    MessageState,
    MessageWorkflowInput,
)
from workflows.message import MessageWorkflow

HISTORIES = Path(__file__).parent / "data" / "histories"


def _replayer() -> Replayer:
    return Replayer(workflows=[MessageWorkflow], data_converter=pydantic_data_converter)


def _recorded() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(p.stem, p.read_text()) for p in sorted(HISTORIES.glob("*.json"))
    ]


def _record(name: str, history: WorkflowHistory) -> None:
    (HISTORIES / f"{name}.json").write_text(json.dumps(history.to_json_dict(), indent=1))


@pytest.mark.parametrize("history", _recorded(), ids=lambda h: h.workflow_id)
async def test_recorded_history_replays(history: WorkflowHistory) -> None:
    await _replayer().replay_workflow(history)


def test_histories_are_kept() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == ["approved-refund", "expired"]


async def test_todays_runs_replay(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    # The dev server with a short expiry, not the time-skipping one: that one sometimes
    # leaves a playbook run's first task started and never delivered, and time stands
    # still (seen ~1 run in 4).
    env = temporal_dev
    queue = f"replay-{uuid.uuid4().hex[:8]}"
    histories: dict[str, WorkflowHistory] = {}
    async with running_pipeline(env.client, own_sessions, queue) as merchant:
        for name, text in (
            ("approved-refund", "arrived broken, refund please"),
            ("expired", "status?"),
        ):
            message_id, _, workflow_id = await store_message(
                own_sessions,
                merchant,
                sender=_customer(merchant, "1001"),
                subject="Order #1001",
                text=f"Order #1001 {text}",
            )
            handle = await env.client.start_workflow(
                MESSAGE_WORKFLOW,
                MessageWorkflowInput(
                    user_id=merchant.user_id,
                    message_id=message_id,
                    reminder_after=timedelta(seconds=1),
                    expire_after=timedelta(seconds=2),
                ),
                id=workflow_id,
                task_queue=queue,
                result_type=MessageState,
            )
            state = await _awaiting(handle)
            if name == "approved-refund":
                await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
            await finished(handle)
            histories[name] = await handle.fetch_history()
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("DESKPILOT_RECORD_HISTORIES"):
            _record(name, history)
