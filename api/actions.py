"""Decisions on a pending action: POST /api/actions/{id}/approve and /reject.

Both go through `services.decisions`, the same path the web pages take."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentUser, OptionalTemporalDep, SessionDep
from kernel.enums import ActionStatus
from services import decisions

router = APIRouter(prefix="/api/actions", tags=["actions"])


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


@router.post("/{action_id}/approve", response_model=DecisionOut)
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


@router.post("/{action_id}/reject", response_model=DecisionOut)
async def reject(
    action_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    body: RejectBody,
) -> DecisionOut:
    result = await decisions.reject(session, temporal, user_id, action_id, body.reason)
    return DecisionOut(action_id=result.action_id, status=result.status)
