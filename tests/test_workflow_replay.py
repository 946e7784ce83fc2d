"""MessageWorkflow stays deterministic: today's runs replay, and so do the histories kept in
tests/data/histories (recorded from earlier code). A change that breaks an old history needs
`workflow.patched`. Set DESKPILOT_RECORD_HISTORIES=1 to record today's runs there."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from tests.pipeline import running_pipeline, store_message
from tests.test_message_workflow import _awaiting, _customer, _start
from workflows.contracts import APPROVE_UPDATE, ApproveInput
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
    temporal_time_skipping: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    env = temporal_time_skipping
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
            handle = await _start(env, merchant, queue, message_id, workflow_id)
            state = await _awaiting(handle)
            if name == "approved-refund":
                await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
            await handle.result()
            histories[name] = await handle.fetch_history()
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("DESKPILOT_RECORD_HISTORIES"):
            _record(name, history)
