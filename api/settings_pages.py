"""The settings pages: connections and the audit log (the playbooks have their own,
api/playbook_pages.py, and so do usage and plan, api/billing_pages.py).

Server-rendered with plain forms; every POST carries the session's CSRF token and answers
with a 303 back to the page (or the page again, with the errors, when a form is not valid).
The data comes from the same functions as the JSON API (api/settings_api.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    CsrfProtected,
    OptionalTemporalDep,
    SessionDep,
    SettingsDep,
    TaskQueueDep,
    WebUser,
)
from api.rendering import render
from domain.mail.alias_test import arrival_pending
from kernel.enums import ConnectionType
from kernel.errors import Conflict, Invalid, LimitReached, Malformed, NotFound, Transient
from kernel.settings import Settings
from models.audit_log import EventFilter, event_kinds, list_events
from services.alias_test_email import prepare_alias_test, start_alias_test
from services.aliases import AliasCreate, create_alias, delete_alias
from services.connections import (
    after_connection_change,
    list_connections,
    owned_connection,
    set_connection_enabled,
)

router = APIRouter(include_in_schema=False)

# Messages a redirect may ask the page to show; never text taken from the URL itself.
NOTICES = {
    "enabled": "Enabled.",
    "disabled": "Disabled.",
    "saved": "Saved.",
    "created": "Forwarding address created: forward your support mail to it as shown below.",
    "deleted": "Forwarding address deleted; the mail it brought in stays in the inbox.",
    "installed": "Store connected: its recent orders are being brought in.",
    "test_sent": "Test email sent: this page shows when it arrives.",
}
AUDIT_PAGE_SIZE = 50
MISSING_CONNECTION = "That connection was not found: it may have been removed."


def _notice(value: str | None) -> str | None:
    return NOTICES.get(value or "")


def _truthy(value: str) -> bool:
    return value.lower() in {"1", "true", "on", "yes"}


# --- connections -----------------------------------------------------------------------------


async def _connections(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    connections = await list_connections(session, user_id)
    by_type = {kind: [c for c in connections if c.type == kind] for kind in ConnectionType}
    now = datetime.now(UTC)
    waiting = {
        c.id
        for c in by_type[ConnectionType.CUSTOM_EMAIL]
        if arrival_pending(c.test_email_requested_at, c.test_email_received_at, now)
    }
    return render(
        request,
        "connections.html",
        status_code=status_code,
        shops=by_type[ConnectionType.SHOPIFY],
        mailboxes=by_type[ConnectionType.GMAIL],
        aliases=by_type[ConnectionType.CUSTOM_EMAIL],
        inbound_domain=settings.inbound_domain,
        smtp_host=settings.smtp_receiver_host,
        smtp_port=settings.smtp_receiver_port,
        waiting=waiting,
        notice=notice,
        error=error,
        form=form or {},
    )


@router.get("/connections", response_class=HTMLResponse)
async def connections_page(
    request: Request,
    user_id: WebUser,
    session: SessionDep,
    settings: SettingsDep,
    notice: str | None = None,
) -> HTMLResponse:
    return await _connections(request, session, settings, user_id, notice=_notice(notice))


@router.post("/connections/{connection_id}/enabled", response_model=None)
async def connection_enabled_form(
    request: Request,
    connection_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
    enabled: Annotated[str, Form(max_length=10)],
) -> HTMLResponse | RedirectResponse:
    on = _truthy(enabled)
    try:
        connection = await set_connection_enabled(session, user_id, connection_id, on)
    except NotFound:
        await session.rollback()
        return await _connections(
            request, session, settings, user_id, error=MISSING_CONNECTION, status_code=404
        )
    await session.commit()
    await after_connection_change(temporal, settings, task_queue, connection, on)
    notice = "enabled" if on else "disabled"
    return RedirectResponse(f"/connections?notice={notice}#c-{connection_id}", status_code=303)


@router.post("/connections", response_model=None)
async def create_alias_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    settings: SettingsDep,
    shop_domain: Annotated[str, Form(max_length=255)],
    support_email: Annotated[str, Form(max_length=320)],
    store_name: Annotated[str, Form(max_length=100)],
) -> HTMLResponse | RedirectResponse:
    """A new forwarding alias for one of the merchant's stores (the same rules as the API)."""
    form = {"shop_domain": shop_domain, "support_email": support_email, "store_name": store_name}
    try:
        body = AliasCreate(type=ConnectionType.CUSTOM_EMAIL, **form)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return await _connections(
            request, session, settings, user_id, error=reasons, status_code=422, form=form
        )
    try:
        connection = await create_alias(session, user_id, body, settings.inbound_domain)
    except (Malformed, Conflict) as exc:
        await session.rollback()
        return await _connections(
            request,
            session,
            settings,
            user_id,
            error=exc.message,
            status_code=422 if isinstance(exc, Malformed) else 409,
            form=form,
        )
    await session.commit()
    return RedirectResponse(f"/connections?notice=created#c-{connection.id}", status_code=303)


@router.post("/connections/{connection_id}/delete", response_model=None)
async def delete_alias_form(
    request: Request,
    connection_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    settings: SettingsDep,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse | RedirectResponse:
    """Delete an alias once the merchant ticked the confirmation: its messages stay."""
    try:
        if not _truthy(confirm):
            # Checked after ownership, so another merchant's id is a 404 either way.
            await owned_connection(session, user_id, connection_id)
            return await _connections(
                request,
                session,
                settings,
                user_id,
                error="Tick the confirmation to delete the forwarding address.",
                status_code=400,
            )
        await delete_alias(session, user_id, connection_id)
    except NotFound:
        await session.rollback()
        return await _connections(
            request, session, settings, user_id, error=MISSING_CONNECTION, status_code=404
        )
    except Conflict as exc:
        await session.rollback()
        return await _connections(
            request, session, settings, user_id, error=exc.message, status_code=409
        )
    await session.commit()
    return RedirectResponse("/connections?notice=deleted#alias-h", status_code=303)


@router.post("/connections/{connection_id}/test-email", response_model=None)
async def test_email_form(
    request: Request,
    connection_id: uuid.UUID,
    user_id: CsrfProtected,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
) -> HTMLResponse | RedirectResponse:
    """Send the alias a test email; the page then shows when it arrives."""
    try:
        token = await prepare_alias_test(session, user_id, connection_id, datetime.now(UTC))
    except (NotFound, Conflict, LimitReached) as exc:
        await session.rollback()
        status_code = (
            404 if isinstance(exc, NotFound) else 429 if isinstance(exc, LimitReached) else 409
        )
        error = MISSING_CONNECTION if isinstance(exc, NotFound) else exc.message
        return await _connections(
            request, session, settings, user_id, error=error, status_code=status_code
        )
    await session.commit()
    try:
        await start_alias_test(temporal, user_id, connection_id, token, task_queue=task_queue)
    except Transient as exc:
        return await _connections(
            request, session, settings, user_id, error=exc.message, status_code=503
        )
    return RedirectResponse(f"/connections?notice=test_sent#c-{connection_id}", status_code=303)


# --- the audit log ---------------------------------------------------------------------------


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    """A yyyy-mm-dd from a date input as a UTC instant; `end`: the start of the next day."""
    if not value:
        return None
    try:
        day = datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(), UTC)
    except ValueError as exc:
        raise Invalid(f"{value!r} is not a date (yyyy-mm-dd)") from exc
    return day + timedelta(days=1) if end else day


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user_id: WebUser,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=100)] = None,
    entity: Annotated[str | None, Query(max_length=50)] = None,
    entity_id: Annotated[str | None, Query(max_length=255)] = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    # PostgreSQL cannot compare a NUL: a filter typed with one matches as if without it.
    type, entity, entity_id = (
        None if v is None else v.replace("\x00", "") for v in (type, entity, entity_id)
    )
    filters = {
        "type": type or "",
        "entity": entity or "",
        "entity_id": (entity_id or "").strip(),
        "since": since or "",
        "until": until or "",
    }
    error = None
    events: list[Any] = []
    next_query = None
    kept = {k: v for k, v in filters.items() if v}
    try:
        where = EventFilter(
            type=type or None,
            entity=entity or None,
            entity_id=filters["entity_id"] or None,
            since=_day(since),
            until=_day(until, end=True),
        )
        page = await list_events(session, user_id, where, cursor=cursor, limit=AUDIT_PAGE_SIZE)
        events = page.events
        if page.next_cursor:
            next_query = {**kept, "cursor": page.next_cursor}
    except Invalid as exc:
        error = exc.message
    types, entities = await event_kinds(session, user_id)
    return render(
        request,
        "audit.html",
        status_code=400 if error else 200,
        events=events,
        filters=filters,
        types=types,
        entities=entities,
        next_query=next_query,
        newest_query=kept if cursor else None,
        error=error,
    )
