"""Recording a person's decision on a pending action: the API, the pages and the CLI send it
to the action's MessageWorkflow as an update, whose validator and recording step are the
authority on whether it is still possible (and reserve the reply's email). The checks
here answer the obvious cases without a round trip: a decided action, an edit that
cannot be carried out (`check_decision`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.decision_check import decision_problems, edit_problems
from domain.guardrails.payload import PAYLOAD_KEYS
from kernel.enums import ActionStatus
from kernel.errors import (
    Conflict,
    DeskpilotError,
    Invalid,
    InvalidDecision,
    Malformed,
    NotEntitled,
    NotFound,
    PlanLimit,
    Refused,
    Transient,
)
from kernel.values import OrderSnapshot
from models.action import Action
from models.conversation import Message
from models.order import Order
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


def last_read_order(order: Order | None) -> OrderSnapshot | None:
    """The full order as the pipeline last read it from Shopify, if it did."""
    if order is None or not order.details:
        return None
    try:
        return OrderSnapshot.model_validate(order.details)
    except ValueError:  # a synced summary without its line items
        return None


def check_decision(
    action: Action, order: Order | None, reply: str | None, payload: dict[str, Any] | None
) -> None:
    """InvalidDecision naming the first field of the approval (the suggestion with the edit
    applied) that cannot be carried out."""
    problems = edit_problems(action.type, reply, payload)
    effective_reply = reply if reply is not None else str(action.payload.get("reply") or "")
    keys = PAYLOAD_KEYS[action.type]
    effective = {k: v for k, v in action.payload.items() if k in keys} | (payload or {})
    problems = problems or decision_problems(
        action.type, effective_reply, effective, last_read_order(order)
    )
    if problems:
        first = problems[0]
        raise InvalidDecision(first.field, first.reason)


async def _pending_action_workflow(
    session: AsyncSession,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    check: Callable[[Action, Order | None], object] | None = None,
) -> str:
    """The workflow id deciding this action; NotFound for another merchant's, Conflict if
    already decided."""
    found = (
        await session.execute(
            select(Action, Message.workflow_id)
            .outerjoin(Message, Message.id == Action.message_id)
            .where(Action.id == action_id, Action.user_id == user_id)
        )
    ).one_or_none()
    if found is None:
        await session.close()
        raise NotFound(f"action {action_id} not found")
    action, workflow_id = found
    order = await session.get(Order, action.order_id) if action.order_id else None
    # Release the connection before waiting on Temporal: the workflow writes this row.
    await session.close()
    if action.status is not ActionStatus.PENDING:
        raise Conflict(f"action {action_id} is already {action.status.value}")
    if workflow_id is None:
        raise Conflict(f"action {action_id} is not waiting for a decision in a workflow")
    if check is not None:
        check(action, order)
    return workflow_id


# What the validator and the recording step refuse a decision with, by the class name the
# error travels under (activities/errors.py); anything else reads as a conflict.
_REFUSALS: dict[str, type[DeskpilotError]] = {
    cls.__name__: cls
    for cls in (Conflict, NotFound, Refused, NotEntitled, PlanLimit, Invalid, Malformed)
}


def _refusal(exc: WorkflowUpdateFailedError) -> DeskpilotError:
    """The kernel error the validator or the recording step refused with, rebuilt from the
    ApplicationError it travelled as (its type is the class name, its detail the details)."""
    cause: BaseException | None = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = getattr(cause, "cause", None)
    if not isinstance(cause, ApplicationError):
        return Conflict(str(exc.cause) or "the decision was refused")
    message = cause.message or "the decision was refused"
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    if cause.type == InvalidDecision.__name__ and {"field", "reason"} <= set(details):
        return InvalidDecision(str(details["field"]), str(details["reason"]))
    return _REFUSALS.get(cause.type or "", Conflict)(message)


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
        # The validator (or handler) refused: a stale, repeated or invalid decision, or one
        # the plan does not allow. The action is still PENDING.
        raise _refusal(exc) from exc
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
    decided_by: str = "api",
) -> DecisionResult:
    """Approve, with the reply and payload edited or (None) as suggested; `decided_by` is
    "api" for a person, "playbook:<id>" for an automatic approval."""
    workflow_id = await _pending_action_workflow(
        session,
        user_id,
        action_id,
        lambda action, order: check_decision(action, order, reply, payload),
    )
    return await _send(
        temporal,
        workflow_id,
        APPROVE_UPDATE,
        ApproveInput(action_id=action_id, reply=reply, payload=payload, decided_by=decided_by),
    )


async def reject(
    session: AsyncSession,
    temporal: Client | None,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    reason: str,
) -> DecisionResult:
    if "\x00" in reason:  # PostgreSQL could not store it in the audit log
        raise InvalidDecision("reason", "the reason contains a NUL character")
    workflow_id = await _pending_action_workflow(session, user_id, action_id)
    return await _send(
        temporal, workflow_id, REJECT_UPDATE, RejectInput(action_id=action_id, reason=reason)
    )
