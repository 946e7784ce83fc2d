"""The JSON shapes of messages, threads, suggestions and actions, shared by the API's routes
and the web pages (which render the same data), built from the rows `models` reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.inbox_listing import InboxPage
from models.thread_view import ThreadRecords


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


def _out(model: type[BaseModel], row: object | None) -> Any:
    return None if row is None else model.model_validate(row, from_attributes=True)


def thread_detail_out(records: ThreadRecords) -> ThreadDetail:
    return ThreadDetail(
        thread=_out(ThreadOut, records.thread),
        messages=[_out(ThreadMessageOut, m) for m in records.messages],
        order=_out(ThreadOrderOut, records.order),
        suggestion=_out(SuggestionOut, records.suggestion),
        action=_out(ActionOut, records.action),
    )


def thread_page_out(page: InboxPage) -> ThreadPage:
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
