"""The inbox as JSON: GET /api/threads (a page of threads) and GET /api/threads/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from api.errors import BadRequestError, NotFoundError
from api.messages import ActionOut, SuggestionOut, ThreadOut
from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.action import Action
from models.conversation import Message, Thread
from models.inbox_listing import Cursor, InboxView, InvalidCursorError, list_threads
from models.order import Order
from models.suggestion import AISuggestion

router = APIRouter(prefix="/api/threads", tags=["threads"])

MAX_LIMIT = 100


class LatestActionOut(BaseModel):
    type: ActionType
    status: ActionStatus


class ThreadSummaryOut(BaseModel):
    id: uuid.UUID
    subject: str
    customer_email: str
    last_message_at: datetime
    message_count: int
    snippet: str  # the start of the latest message's new text
    order_name: str | None
    latest_action: LatestActionOut | None
    needs_decision: bool  # a PENDING action waits in the thread


class ThreadPage(BaseModel):
    threads: list[ThreadSummaryOut]
    next_cursor: str | None  # opaque; null on the last page


class ThreadMessageOut(BaseModel):
    id: uuid.UUID
    direction: MessageDirection
    from_address: str
    to_address: str | None
    subject: str
    body_text: str
    quoted_text: str
    sent_at: datetime
    attachments: list[Any]


class ThreadOrderOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    financial_status: str | None
    fulfillment_status: str | None
    total_amount: Decimal
    currency: str


class ThreadDetail(BaseModel):
    thread: ThreadOut
    messages: list[ThreadMessageOut]
    order: ThreadOrderOut | None
    suggestion: SuggestionOut | None
    action: ActionOut | None


@router.get("", response_model=ThreadPage)
async def get_threads(
    user_id: CurrentUser,
    session: SessionDep,
    view: Annotated[
        InboxView,
        Query(
            description="needs_decision: a PENDING action waits; handled: nothing pending or "
            "approved-and-running (the latest action ended, or none was needed); all"
        ),
    ] = InboxView.all,
    q: Annotated[str | None, Query(max_length=200, description="customer, order or words")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> ThreadPage:
    try:
        after = Cursor.decode(cursor) if cursor else None
    except InvalidCursorError as exc:
        raise BadRequestError(str(exc)) from exc
    page = await list_threads(session, user_id, view=view, q=q, cursor=after, limit=limit)
    return ThreadPage(
        threads=[
            ThreadSummaryOut(
                id=t.id,
                subject=t.subject,
                customer_email=t.customer_email,
                last_message_at=t.last_message_at,
                message_count=t.message_count,
                snippet=t.snippet,
                order_name=t.order_name,
                latest_action=None
                if t.action_type is None or t.action_status is None
                else LatestActionOut(type=t.action_type, status=t.action_status),
                needs_decision=t.needs_decision,
            )
            for t in page.threads
        ],
        next_cursor=page.next_cursor.encode() if page.next_cursor else None,
    )


@router.get("/{thread_id}", response_model=ThreadDetail)
async def get_thread(
    thread_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> ThreadDetail:
    # One snapshot: the workflow commits a suggestion and its action together.
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # Scoped by owner in the query: another merchant's thread is simply not found.
    thread = (
        await session.execute(
            select(Thread).where(Thread.id == thread_id, Thread.user_id == user_id)
        )
    ).scalar_one_or_none()
    if thread is None:
        raise NotFoundError(f"thread {thread_id} not found")
    messages = (
        (
            await session.execute(
                select(Message)
                .where(Message.thread_id == thread.id, Message.user_id == user_id)
                .order_by(Message.sent_at, Message.id)
            )
        )
        .scalars()
        .all()
    )
    message_ids = [m.id for m in messages]
    # The order the conversation is about: the latest one matched to a message.
    order_id = next((m.order_id for m in reversed(messages) if m.order_id), None)
    order = await session.get(Order, order_id) if order_id else None
    suggestion = (
        await session.execute(
            select(AISuggestion)
            .where(AISuggestion.message_id.in_(message_ids))
            .order_by(AISuggestion.created_at.desc(), AISuggestion.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    action = (
        await session.execute(
            select(Action)
            .where(Action.message_id.in_(message_ids), Action.user_id == user_id)
            .order_by(Action.created_at.desc(), Action.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return ThreadDetail(
        thread=ThreadOut.model_validate(thread, from_attributes=True),
        messages=[ThreadMessageOut.model_validate(m, from_attributes=True) for m in messages],
        order=None if order is None else ThreadOrderOut.model_validate(order, from_attributes=True),
        suggestion=None
        if suggestion is None
        else SuggestionOut.model_validate(suggestion, from_attributes=True),
        action=None if action is None else ActionOut.model_validate(action, from_attributes=True),
    )
