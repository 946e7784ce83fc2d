"""Decisions on a pending action: POST /api/actions/{id}/approve and /reject.

Both go through `services.decisions`, the same path the web pages take."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentUser, OptionalTemporalDep, SessionDep
from api.schemas import error_responses
from kernel.enums import ActionStatus
from kernel.values import STORABLE_TEXT
from services import decisions

router = APIRouter(prefix="/api/actions", tags=["actions"])


class ApproveBody(BaseModel):
    reply: str | None = Field(default=None, description="edited reply; null keeps the draft")
    payload: dict[str, Any] | None = Field(
        default=None, description="edited action payload; null keeps the suggestion's"
    )


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, pattern=STORABLE_TEXT)


class DecisionOut(BaseModel):
    action_id: uuid.UUID
    status: ActionStatus


# A decision is taken once, by the action's workflow (Temporal: 503 while unreachable).
DECISION_ERRORS = error_responses(
    400,
    401,
    403,
    404,
    (409, "already decided, or refused (codes limit_reached, not_entitled)"),
    (422, "the body is not valid, or the edited decision cannot be carried out"),
    503,
)


@router.post("/{action_id}/approve", response_model=DecisionOut, responses=DECISION_ERRORS)
async def approve(
    action_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    body: ApproveBody | None = None,
) -> DecisionOut:
    body = body or ApproveBody()
    result = await decisions.approve(
        session, temporal, user_id, action_id, reply=body.reply, payload=body.payload
    )
    return DecisionOut(action_id=result.action_id, status=result.status)


@router.post("/{action_id}/reject", response_model=DecisionOut, responses=DECISION_ERRORS)
async def reject(
    action_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    body: RejectBody,
) -> DecisionOut:
    result = await decisions.reject(session, temporal, user_id, action_id, body.reason)
    return DecisionOut(action_id=result.action_id, status=result.status)
