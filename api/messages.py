"""GET /api/messages/{id}: a message with its thread, latest suggestion and action."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from api.errors import NotFoundError
from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.action import Action
from models.conversation import Message, Thread
from models.suggestion import AISuggestion

router = APIRouter(prefix="/api/messages", tags=["messages"])


class MessageOut(BaseModel):
    id: uuid.UUID
    direction: MessageDirection
    message_id: str
    from_address: str
    to_address: str | None
    subject: str
    body_text: str
    sent_at: datetime
    order_id: uuid.UUID | None


class ThreadOut(BaseModel):
    id: uuid.UUID
    subject: str
    customer_email: str
    last_message_at: datetime


class GuardrailNoteOut(BaseModel):
    code: str
    detail: str


class SuggestionOut(BaseModel):
    id: uuid.UUID
    reply: str
    proposed_action: ActionType
    confidence: float
    order_id: uuid.UUID | None
    provider: str
    intent: str
    rationale: str
    guardrails: list[GuardrailNoteOut]  # what the guardrails changed, and why
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime


class ActionOut(BaseModel):
    id: uuid.UUID
    type: ActionType
    status: ActionStatus
    payload: dict[str, Any]
    error: str | None
    executed_at: datetime | None


class MessageDetail(BaseModel):
    message: MessageOut
    thread: ThreadOut
    suggestion: SuggestionOut | None
    action: ActionOut | None
    workflow_id: str | None


@router.get("/{message_id}", response_model=MessageDetail)
async def get_message(
    message_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> MessageDetail:
    # One snapshot for the reads below: the workflow commits the suggestion and the
    # action together, and the answer must never show one without the other.
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # Scoped by owner in the query: another merchant's message is simply not found.
    found = (
        await session.execute(
            select(Message, Thread)
            .join(Thread, Thread.id == Message.thread_id)
            .where(Message.id == message_id, Message.user_id == user_id)
        )
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"message {message_id} not found")
    message, thread = found
    suggestion = (
        await session.execute(
            select(AISuggestion)
            .where(AISuggestion.message_id == message.id)
            .order_by(AISuggestion.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    action = (
        await session.execute(
            select(Action).where(Action.message_id == message.id, Action.user_id == user_id)
        )
    ).scalar_one_or_none()
    return MessageDetail(
        message=MessageOut.model_validate(message, from_attributes=True),
        thread=ThreadOut.model_validate(thread, from_attributes=True),
        suggestion=None
        if suggestion is None
        else SuggestionOut.model_validate(suggestion, from_attributes=True),
        action=None if action is None else ActionOut.model_validate(action, from_attributes=True),
        workflow_id=message.workflow_id,
    )
