"""The inbox and thread pages, their decision forms, and the live-update stream.

The pages read the same rows and shapes as the JSON API (`models.thread_view`,
`models.inbox_listing`, `api.schemas`) and decide through `services.decisions`, as
POST /api/actions/{id}/approve|reject does, so the browser and the API cannot drift
apart; they only turn errors into readable pages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select

from api.deps import CsrfProtected, OptionalTemporalDep, SessionsDep, WebUser
from api.errors import status_of
from api.live import event_stream
from api.rendering import render
from api.schemas import ActionOut, ThreadDetail, ThreadPage, thread_detail_out, thread_page_out
from api.temporal_links import temporal_ui_url
from kernel.enums import ActionStatus
from kernel.errors import Conflict, DeskpilotError, NotFound
from models.action import Action
from models.conversation import Message
from models.inbox_listing import Cursor, InboxView, list_threads
from models.order import Order
from models.playbook_history import thread_executions
from models.thread_view import load_thread
from services import decisions
from services.billing import entitlement_for
from services.onboarding import onboarding_for
from workflows.contracts import EXECUTION_KEYS

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
TABS = (
    (InboxView.needs_decision, "Needs decision"),
    (InboxView.handled, "Handled"),
    (InboxView.all, "All"),
)
# Shown beside the suggestion (or in the reply box), not in the editable payload.
_SHOWN_ELSEWHERE = frozenset({"reply", "intent", "rationale", "provider", "guardrails", "note"})
_DECIDED = {"approved": "Approved: the action is running.", "rejected": "Rejected."}


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%d %b %Y, %H:%M UTC")


def _money(value: object) -> str | None:
    if value is None or value == "":
        return None
    try:
        return f"{Decimal(str(value)):.2f}"
    except InvalidOperation:
        return str(value)


def _order_lines(details: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Line items from either stored shape: an Admin API snapshot or a webhook's payload."""
    lines = []
    for item in (details or {}).get("line_items") or []:
        if not isinstance(item, dict):
            continue
        fulfilled = item.get("fulfilled")
        status = (
            ("fulfilled" if fulfilled else "unfulfilled")
            if isinstance(fulfilled, bool)
            else (item.get("fulfillment_status") or "unfulfilled")
        )
        lines.append(
            {
                "title": item.get("title") or "(untitled)",
                "quantity": item.get("quantity"),
                "price": _money(item.get("unit_price", item.get("price"))),
                "status": status,
            }
        )
    return lines


def editable_payload(action: ActionOut | None) -> dict[str, Any]:
    if action is None:
        return {}
    hidden = _SHOWN_ELSEWHERE | EXECUTION_KEYS
    return {key: value for key, value in action.payload.items() if key not in hidden}


async def _thread_context(
    sessions: SessionsDep, request: Request, user_id: uuid.UUID, thread_id: uuid.UUID
) -> dict[str, Any]:
    """Everything the thread page shows; NotFound for another owner's thread."""
    async with sessions() as session:
        detail: ThreadDetail = thread_detail_out(await load_thread(session, user_id, thread_id))
        details: dict[str, Any] | None = None
        if detail.order is not None:
            details = (
                await session.execute(select(Order.details).where(Order.id == detail.order.id))
            ).scalar_one_or_none()
        # The workflow of the message the action answers, else of the latest message.
        workflow = select(Message.workflow_id).where(Message.user_id == user_id)
        if detail.action is not None:
            workflow = workflow.join(Action, Action.message_id == Message.id).where(
                Action.id == detail.action.id
            )
        else:
            workflow = (
                workflow.where(Message.thread_id == thread_id, Message.workflow_id.is_not(None))
                .order_by(Message.sent_at.desc())
                .limit(1)
            )
        workflow_id = (await session.execute(workflow)).scalar_one_or_none()
        handled_by = await thread_executions(session, user_id, thread_id)
    action = detail.action
    payload = editable_payload(action)
    refundable = (details or {}).get("refundable")
    return {
        "detail": detail,
        "order_lines": _order_lines(details),
        "order_subtotal": _money((details or {}).get("subtotal")),
        "refundable": _money(refundable),
        "workflow_id": workflow_id,
        "workflow_url": temporal_ui_url(request.app.state.settings, workflow_id),
        "handled_by": handled_by,
        "pending": action is not None and action.status is ActionStatus.PENDING,
        "reply_text": "" if action is None else str(action.payload.get("reply") or ""),
        "payload_text": json.dumps(payload, indent=2, ensure_ascii=False, default=str),
        "original_payload": json.dumps(payload, ensure_ascii=False, default=str),
        "outcome": None if action is None else action.payload.get("outcome"),
        "note": None if action is None else action.payload.get("note"),
        "when": _when,
        "money": _money,
    }


async def _thread_page(
    request: Request,
    sessions: SessionsDep,
    user_id: uuid.UUID,
    thread_id: uuid.UUID,
    *,
    status_code: int = 200,
    **overrides: Any,
) -> HTMLResponse:
    try:
        context = await _thread_context(sessions, request, user_id, thread_id)
    except NotFound:
        return _not_found(request)
    context.update(overrides)
    return render(request, "thread.html", status_code=status_code, **context)


def _not_found(request: Request) -> HTMLResponse:
    return render(request, "thread.html", status_code=404, missing=True)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    user_id: WebUser,
    sessions: SessionsDep,
    view: InboxView = InboxView.needs_decision,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    automatic: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    query = (q or "").replace("\x00", "").strip()  # PostgreSQL cannot compare a NUL
    # Only threads a playbook handled on its own (the search form's checkbox).
    only_automatic = (automatic or "").lower() in {"1", "true", "on", "yes"}
    error: str | None = None
    page: ThreadPage | None = None
    async with sessions() as session:
        # Why the account sends nothing, when it does not: shown above the threads.
        verdict = await entitlement_for(session, user_id, request.app.state.settings)
        # The first-run checklist, until every step is done.
        setup = await onboarding_for(session, user_id)
        try:
            after = Cursor.decode(cursor) if cursor else None
            page = thread_page_out(
                await list_threads(
                    session,
                    user_id,
                    view=view,
                    q=query or None,
                    cursor=after,
                    limit=PAGE_SIZE,
                    automatic=only_automatic,
                )
            )
        except DeskpilotError as exc:
            error = f"{exc.message}. Showing the newest threads instead."
            page = thread_page_out(
                await list_threads(
                    session,
                    user_id,
                    view=view,
                    q=query or None,
                    limit=PAGE_SIZE,
                    automatic=only_automatic,
                )
            )

    def link(**changes: str | None) -> str:
        params = {
            "view": view.value,
            "q": query or None,
            "automatic": "1" if only_automatic else None,
            **changes,
        }
        return "/inbox?" + urlencode({k: v for k, v in params.items() if v})

    return render(
        request,
        "inbox.html",
        status_code=400 if error else 200,
        tabs=[(value, label, link(view=value.value), value == view) for value, label in TABS],
        view=view,
        q=query,
        automatic=only_automatic,
        automatic_url=link(automatic=None if only_automatic else "1"),
        page=page,
        error=error,
        entitlement=verdict,
        onboarding=None if setup.complete else setup,
        older_url=link(cursor=page.next_cursor) if page.next_cursor else None,
        newest_url=link() if cursor else None,
        when=_when,
    )


@router.get("/threads/{thread_id}", response_class=HTMLResponse)
async def thread_page(
    request: Request,
    thread_id: str,
    user_id: WebUser,
    sessions: SessionsDep,
    decided: str | None = None,
) -> HTMLResponse:
    # A mistyped address is a page that does not exist, not a validation error in JSON.
    try:
        parsed = uuid.UUID(thread_id)
    except ValueError:
        return _not_found(request)
    return await _thread_page(
        request, sessions, user_id, parsed, notice=_DECIDED.get(decided or "")
    )


async def _current_action(
    sessions: SessionsDep, user_id: uuid.UUID, thread_id: uuid.UUID, action_id: uuid.UUID
) -> None:
    """404 for another owner's thread; 409 when the form was for an older suggestion."""
    async with sessions() as session:
        detail = thread_detail_out(await load_thread(session, user_id, thread_id))
    if detail.action is None or detail.action.id != action_id:
        raise _StaleForm("this thread has a newer suggestion: review it before deciding")


class _StaleForm(Conflict):
    """The form was for an action the thread no longer waits on."""


async def _decided(
    request: Request,
    sessions: SessionsDep,
    user_id: uuid.UUID,
    thread_id: uuid.UUID,
    decide: Callable[[], Awaitable[None]],
    outcome: str,
    **typed: Any,
) -> Response:
    """Runs a decision; redirects to the thread, or shows the error with what was typed."""
    try:
        await decide()
    except NotFound:
        return _not_found(request)
    except DeskpilotError as exc:
        return await _thread_page(
            request, sessions, user_id, thread_id, status_code=status_of(exc),
            decision_error=exc.message, **typed,
        )  # fmt: skip
    return RedirectResponse(f"/threads/{thread_id}?decided={outcome}", status_code=303)


@router.post("/threads/{thread_id}/approve", response_class=HTMLResponse)
async def approve_form(
    request: Request,
    thread_id: uuid.UUID,
    user_id: CsrfProtected,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    action_id: Annotated[uuid.UUID, Form()],
    reply: Annotated[str, Form(max_length=20_000)] = "",
    payload: Annotated[str, Form(max_length=100_000)] = "",
    original_payload: Annotated[str, Form(max_length=100_000)] = "",
) -> Response:
    typed = {"reply_text": reply, "payload_text": payload}
    try:
        edited = json.loads(payload) if payload.strip() else {}
    except json.JSONDecodeError as exc:
        edited, problem = None, f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    else:
        problem = None if isinstance(edited, dict) else "it must be a JSON object ({...})"
    if problem is not None:
        return await _thread_page(
            request, sessions, user_id, thread_id, status_code=422,
            payload_error=f"The action payload is not valid JSON ({problem}).", **typed,
        )  # fmt: skip
    try:
        unchanged = json.loads(original_payload) == edited
    except json.JSONDecodeError:
        unchanged = False

    async def decide() -> None:
        await _current_action(sessions, user_id, thread_id, action_id)
        async with sessions() as session:
            await decisions.approve(
                session,
                temporal,
                user_id,
                action_id,
                reply=reply,
                # An untouched payload is left out: the suggestion's stays as it is.
                payload=None if unchanged else edited,
            )

    return await _decided(request, sessions, user_id, thread_id, decide, "approved", **typed)


@router.post("/threads/{thread_id}/reject", response_class=HTMLResponse)
async def reject_form(
    request: Request,
    thread_id: uuid.UUID,
    user_id: CsrfProtected,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    action_id: Annotated[uuid.UUID, Form()],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    typed = {"reason_text": reason}
    if not reason.strip():
        return await _thread_page(
            request, sessions, user_id, thread_id, status_code=422,
            reason_error="Say why you reject it: the reason is kept in the audit log.", **typed,
        )  # fmt: skip

    async def decide() -> None:
        await _current_action(sessions, user_id, thread_id, action_id)
        async with sessions() as session:
            await decisions.reject(session, temporal, user_id, action_id, reason.strip())

    return await _decided(request, sessions, user_id, thread_id, decide, "rejected", **typed)


@router.get("/events")
async def events(user_id: WebUser, sessions: SessionsDep) -> StreamingResponse:
    """Server-sent events: `change` whenever one of the merchant's Events is written."""
    return StreamingResponse(
        event_stream(sessions, user_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
