"""GET /api/messages/{id}: a message with its thread, latest suggestion and action, and the
playbook that handled it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from api.schemas import ActionOut, MessageOut, SuggestionOut, ThreadOut, error_responses
from kernel.errors import NotFound
from models.action import Action
from models.conversation import Message, Thread
from models.suggestion import AISuggestion
from services.playbook_executions import MessagePlaybookOut, playbook_for_message

router = APIRouter(prefix="/api/messages", tags=["messages"])


class MessageDetail(BaseModel):
    message: MessageOut
    thread: ThreadOut
    suggestion: SuggestionOut | None
    action: ActionOut | None
    workflow_id: str | None
    playbook: MessagePlaybookOut | None  # the newest playbook execution for this message


@router.get("/{message_id}", response_model=MessageDetail, responses=error_responses(401, 404, 422))
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
        raise NotFound(f"message {message_id} not found")
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
        playbook=await playbook_for_message(session, user_id, message.id),
    )
