"""Recording a person's decision on a pending action: the API, the pages and the CLI send it
to the action's MessageWorkflow as an update, whose validator is the authority on whether
it is still possible. The database check here only saves a round trip for the obvious case.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from kernel.enums import ActionStatus
from kernel.errors import Conflict, NotFound, Transient
from models.action import Action
from models.conversation import Message
from workflows.contracts import (
    APPROVE_UPDATE,
    REJECT_UPDATE,
    ApproveInput,
    DecisionResult,
    RejectInput,
)

logger = logging.getLogger(__name__)

# The update returns once the decision is durable; a workflow that takes longer is not
# being served by any worker, which the caller should hear about instead of hanging.
UPDATE_TIMEOUT_S = 60


async def _pending_action_workflow(
    session: AsyncSession, user_id: uuid.UUID, action_id: uuid.UUID
) -> str:
    """The workflow id deciding this action; NotFound for another merchant's, Conflict if
    already decided."""
    found = (
        await session.execute(
            select(Action.status, Message.workflow_id)
            .outerjoin(Message, Message.id == Action.message_id)
            .where(Action.id == action_id, Action.user_id == user_id)
        )
    ).one_or_none()
    # Release the connection before waiting on Temporal: the workflow writes this row.
    await session.close()
    if found is None:
        raise NotFound(f"action {action_id} not found")
    status, workflow_id = found
    if status is not ActionStatus.PENDING:
        raise Conflict(f"action {action_id} is already {status.value}")
    if workflow_id is None:
        raise Conflict(f"action {action_id} is not waiting for a decision in a workflow")
    return workflow_id


async def _send(
    client: Client | None, workflow_id: str, update: str, arg: ApproveInput | RejectInput
) -> DecisionResult:
    if client is None:
        raise Transient("Temporal is not configured for this API process")
    log_context = {"workflow_id": workflow_id, "action_id": str(arg.action_id)}
    try:
        async with asyncio.timeout(UPDATE_TIMEOUT_S):
            result: DecisionResult = await client.get_workflow_handle(workflow_id).execute_update(
                update, arg, result_type=DecisionResult
            )
    except WorkflowUpdateFailedError as exc:
        # The validator (or handler) refused: a stale, repeated or invalid decision.
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise Conflict(reason or "the decision was refused") from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise Conflict(
                "the decision window is closed: the message's workflow is no longer running"
            ) from exc
        logger.warning("decision not delivered: %s", exc, extra=log_context)
        raise Transient(f"Temporal did not take the decision: {exc}") from exc
    except TimeoutError as exc:
        logger.warning("decision timed out", extra=log_context)
        raise Transient(
            "the workflow did not answer in time; the decision may still apply, "
            "check the message before retrying"
        ) from exc
    logger.info("decision %s -> %s", update, result.status, extra=log_context)
    return result


async def approve(
    session: AsyncSession,
    temporal: Client | None,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    *,
    reply: str | None = None,
    payload: dict[str, Any] | None = None,
) -> DecisionResult:
    """Approve, with the reply and payload edited or (None) as suggested."""
    workflow_id = await _pending_action_workflow(session, user_id, action_id)
    return await _send(
        temporal,
        workflow_id,
        APPROVE_UPDATE,
        ApproveInput(action_id=action_id, reply=reply, payload=payload),
    )


async def reject(
    session: AsyncSession,
    temporal: Client | None,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    reason: str,
) -> DecisionResult:
    workflow_id = await _pending_action_workflow(session, user_id, action_id)
    return await _send(
        temporal, workflow_id, REJECT_UPDATE, RejectInput(action_id=action_id, reason=reason)
    )
