"""Helpers for the playbook engine's workflow tests: a merchant's playbooks set up as a
test needs them, and the executions and effects to assert on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.playbook_rules import PlaybookRules
from kernel.enums import PlaybookCategory
from models.automation import automation_settings
from models.playbook import Playbook, PlaybookExecution
from tests.pipeline import Merchant, store_message
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    STATE_QUERY,
    ApproveInput,
    DecisionResult,
    MessageState,
    MessageWorkflowInput,
    Stage,
)

T = TypeVar("T")
DAMAGED = "refund-damaged-item"


async def set_playbook(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID, key: str, **values: Any
) -> uuid.UUID:
    """Change one default playbook (by template key); returns its id."""
    async with sessions() as session, session.begin():
        playbook_id = (
            await session.execute(
                update(Playbook)
                .where(Playbook.user_id == user_id, Playbook.template_key == key)
                .values(**values)
                .returning(Playbook.id)
            )
        ).scalar_one()
    return playbook_id


async def only_playbooks(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID, *keep: str
) -> None:
    """Disable every default playbook but `keep`, so a test sees only its own."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(Playbook)
            .where(Playbook.user_id == user_id, Playbook.template_key.not_in(keep))
            .values(enabled=False)
        )


async def set_automation(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID, **values: Any
) -> None:
    async with sessions() as session, session.begin():
        settings = await automation_settings(session, user_id, lock=True)
        for name, value in values.items():
            setattr(settings, name, value)


async def executions(
    sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID
) -> list[PlaybookExecution]:
    async with sessions() as session:
        rows = await session.execute(
            select(PlaybookExecution)
            .where(PlaybookExecution.playbook_id == playbook_id)
            .order_by(PlaybookExecution.created_at)
        )
        return list(rows.scalars())


async def playbook(sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID) -> Playbook:
    async with sessions() as session:
        found = await session.get(Playbook, playbook_id)
        assert found is not None
        return found


async def eventually(probe: Callable[[], Awaitable[T | None]], seconds: float, what: str) -> T:
    """Poll until `probe` returns something truthy (the state a workflow moves to)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def send_message(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    merchant: Merchant,
    queue: str,
    *,
    number: str,
    text: str,
    subject: str = "About my order",
    thread_id: uuid.UUID | None = None,
    **workflow_input: Any,
) -> tuple[WorkflowHandle[Any, MessageState], uuid.UUID]:
    """A customer's message about order `number`, its MessageWorkflow started."""
    message_id, thread, workflow_id = await store_message(
        sessions,
        merchant,
        sender=merchant.orders[number]["email"],
        subject=subject,
        text=text,
        thread_id=thread_id,
        started=True,
    )
    handle = await client.start_workflow(
        MESSAGE_WORKFLOW,
        MessageWorkflowInput(user_id=merchant.user_id, message_id=message_id, **workflow_input),
        id=workflow_id,
        task_queue=queue,
        result_type=MessageState,
    )
    return handle, thread


def paid_refundable(merchant: Merchant) -> str:
    return merchant.number(
        lambda o: not o["cancelled"] and o["refundable"] > 0 and o["financial_status"] == "PAID"
    )


async def awaiting_decision(handle: WorkflowHandle[Any, MessageState]) -> MessageState:
    """The message's state once its suggestion is ready."""

    async def ready() -> MessageState | None:
        try:
            state = await handle.query(STATE_QUERY, result_type=MessageState)
        except (RPCError, WorkflowQueryFailedError):  # its first task has not run yet
            return None
        return state if state.stage != Stage.RECEIVED else None

    return await eventually(ready, 60, "the suggestion")


async def approve(
    handle: WorkflowHandle[Any, MessageState], env: WorkflowEnvironment | None = None
) -> MessageState:
    """A person approves the suggestion as it stands; returns the journey's end."""
    state = await awaiting_decision(handle)
    assert state.action_id is not None
    await handle.execute_update(
        APPROVE_UPDATE, ApproveInput(action_id=state.action_id), result_type=DecisionResult
    )
    return await finished(handle, env=env)


async def finished(
    handle: WorkflowHandle[Any, T], seconds: float = 90, env: WorkflowEnvironment | None = None
) -> T:
    """A workflow's result once it has closed; one still waiting (for a person, or on a
    timer) fails the test instead. Polled, not long-polled: awaiting a result on the
    time-skipping server (`env`) would let its timers fire meanwhile."""

    async def closed() -> bool:
        description = await handle.describe()
        return description.status is not None and description.status != (
            WorkflowExecutionStatus.RUNNING
        )

    await eventually(closed, seconds, f"workflow {handle.id} to close")
    if env is None or not env.supports_time_skipping:
        return await handle.result()
    with env.auto_time_skipping_disabled():
        return await handle.result()


async def add_playbook(
    sessions: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    name: str,
    trigger: dict[str, Any],
    actions: list[dict[str, Any]],
    conditions: list[dict[str, Any]] | None = None,
    **flags: Any,
) -> uuid.UUID:
    """A custom playbook, its documents validated and stored as the settings API does."""
    documents = PlaybookRules.parse(trigger, conditions or [], actions).to_json()
    async with sessions() as session, session.begin():
        playbook = Playbook(
            user_id=user_id,
            name=name,
            category=PlaybookCategory.CUSTOM,
            trigger=documents[0],
            conditions=documents[1],
            actions=documents[2],
            **flags,
        )
        session.add(playbook)
        await session.flush()
        return playbook.id


def on_message(*intents: str) -> dict[str, Any]:
    return {"version": 2, "event": "message.received", "intents": list(intents)}


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"version": 2, "field": field, "operator": operator, "value": value}


def act(kind: str, **fields: Any) -> dict[str, Any]:
    return {"version": 2, "type": kind, **fields}


async def skip_time(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Let `duration` pass on the time-skipping server. Its own sleep call times out after a
    few seconds of real time, which the steps that run meanwhile can take on a busy
    machine; this one waits for them."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(
        request, timeout=timedelta(minutes=2)
    )
