"""The JSON shapes of messages, threads, suggestions and actions, shared by the API's routes
and the web pages (which render the same data), built from the rows `models` reads; and the
error body every route answers with (`api/errors.py`), documented by `error_responses`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.inbox_listing import InboxPage
from models.thread_view import ThreadRecords


class ErrorInfo(BaseModel):
    # Some errors add machine-readable fields beside these (a decision's `field` and `reason`).
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="machine-readable, e.g. not_found, invalid_request")
    message: str = Field(description="for a person")


class ErrorOut(BaseModel):
    """The body of every error answer of the JSON API."""

    error: ErrorInfo


# What each status means on this API: kernel.errors' classes as api/errors.py maps them,
# plus 422 for a request FastAPI could not read into the route's parameters.
_ERROR_MEANINGS: dict[int, str] = {
    400: "the input cannot be used as given (a JSON body that does not parse, too)",
    401: "no valid API token or session",
    403: "signed in with the session cookie, but without its X-CSRF-Token",
    404: "no such row for this merchant (another merchant's id answers the same)",
    409: "the row's state does not allow this, or we refuse to do it",
    413: "the body is over the size limit",
    422: "the parameters or body are not valid, or their content cannot be used",
    429: "too many attempts; Retry-After says when trying again can pass",
    502: "the vendor refused or failed the request made for the caller",
    503: "something this depends on is unavailable for now; try again later",
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds, when known"}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds, when known"}},
}


def error_responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each error status it can answer, with the shared body.

    A status alone gets its generic meaning; `(status, "...")` says what it means there.
    503 is always among them: any route that reads the database answers it when every
    pooled connection is busy or the database cannot be reached."""
    responses: dict[int | str, dict[str, Any]] = {}
    given = {entry[0] if isinstance(entry, tuple) else entry for entry in statuses}
    if 503 not in given:
        statuses = (*statuses, 503)
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, None)
        response: dict[str, Any] = {
            "model": ErrorOut,
            "description": description or _ERROR_MEANINGS[status],
        }
        if status in _ERROR_HEADERS:
            response["headers"] = _ERROR_HEADERS[status]
        responses[status] = response
    return responses


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
