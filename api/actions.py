"""Decisions on a pending action, sent to its MessageWorkflow as updates.

The workflow's validator is the authority on whether a decision is still
possible; the database check here only saves a round trip for the obvious case.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CurrentUser, OptionalTemporalDep, SessionDep
from api.errors import ConflictError, NotFoundError, ServiceUnavailableError
from kernel.enums import ActionStatus
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
router = APIRouter(prefix="/api/actions", tags=["actions"])

# The update returns once the decision is durable; a workflow that takes longer is not
# being served by any worker, which the caller should hear about instead of hanging.
UPDATE_TIMEOUT_S = 60


class ApproveBody(BaseModel):
    reply: str | None = Field(default=None, description="edited reply; null keeps the draft")
    payload: dict[str, Any] | None = Field(
        default=None, description="edited action payload; null keeps the suggestion's"
    )


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class DecisionOut(BaseModel):
    action_id: uuid.UUID
    status: ActionStatus


async def _pending_action_workflow(
    session: AsyncSession, user_id: uuid.UUID, action_id: uuid.UUID
) -> str:
    """The workflow id deciding this action; 404 for another merchant's, 409 if decided."""
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
        raise NotFoundError(f"action {action_id} not found")
    status, workflow_id = found
    if status is not ActionStatus.PENDING:
        raise ConflictError(f"action {action_id} is already {status.value}")
    if workflow_id is None:
        raise ConflictError(f"action {action_id} is not waiting for a decision in a workflow")
    return workflow_id


async def _decide(
    client: Client | None,
    workflow_id: str,
    update: str,
    arg: ApproveInput | RejectInput,
) -> DecisionOut:
    if client is None:
        raise ServiceUnavailableError("Temporal is not configured for this API process")
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
        raise ConflictError(reason or "the decision was refused") from exc
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ConflictError(
                "the decision window is closed: the message's workflow is no longer running"
            ) from exc
        logger.warning("decision not delivered: %s", exc, extra=log_context)
        raise ServiceUnavailableError(f"Temporal did not take the decision: {exc}") from exc
    except TimeoutError as exc:
        logger.warning("decision timed out", extra=log_context)
        raise ServiceUnavailableError(
            "the workflow did not answer in time; the decision may still apply, "
            "check the message before retrying"
        ) from exc
    logger.info("decision %s -> %s", update, result.status, extra=log_context)
    return DecisionOut(action_id=result.action_id, status=result.status)


@router.post("/{action_id}/approve", response_model=DecisionOut)
async def approve(
    action_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    body: ApproveBody | None = None,
) -> DecisionOut:
    workflow_id = await _pending_action_workflow(session, user_id, action_id)
    body = body or ApproveBody()
    return await _decide(
        temporal,
        workflow_id,
        APPROVE_UPDATE,
        ApproveInput(action_id=action_id, reply=body.reply, payload=body.payload),
    )


@router.post("/{action_id}/reject", response_model=DecisionOut)
async def reject(
    action_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    body: RejectBody,
) -> DecisionOut:
    workflow_id = await _pending_action_workflow(session, user_id, action_id)
    return await _decide(
        temporal, workflow_id, REJECT_UPDATE, RejectInput(action_id=action_id, reason=body.reason)
    )
