"""The audit log as a merchant reads it: filtered, newest first, in keyset pages."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import Invalid
from models.event import Event


class EventOut(BaseModel):
    id: uuid.UUID
    type: str
    entity: str | None
    entity_id: str | None
    payload: dict[str, Any] | None
    created_at: datetime


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None  # opaque; null on the last page


class EventFilter(BaseModel):
    type: str | None = None  # exact, or a prefix when it ends with "*" ("playbook.*")
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(event: Event) -> str:
    raw = f"{event.created_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, event_id = raw.partition("|")
        found = datetime.fromisoformat(at), uuid.UUID(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid("the cursor is not valid: start again from the first page") from exc
    if found[0].tzinfo is None:
        raise Invalid("the cursor is not valid: start again from the first page")
    return found


def _aware(moment: datetime) -> datetime:
    # A date typed without a zone means UTC, as the page shows times.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _events_query(user_id: uuid.UUID, where: EventFilter) -> Select[tuple[Event]]:
    query = select(Event).where(Event.user_id == user_id)
    if where.type:
        if where.type.endswith("*"):
            prefix = where.type[:-1].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(Event.type.like(f"{prefix}%", escape="\\"))
        else:
            query = query.where(Event.type == where.type)
    if where.entity:
        query = query.where(Event.entity == where.entity)
    if where.entity_id:
        query = query.where(Event.entity_id == where.entity_id)
    if where.since:
        query = query.where(Event.created_at >= _aware(where.since))
    if where.until:
        query = query.where(Event.created_at < _aware(where.until))
    return query


async def list_events(
    session: AsyncSession,
    user_id: uuid.UUID,
    where: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> EventPage:
    """Newest first; the cursor is the (created_at, id) of the page's last event, so a
    page is an index range scan however deep, and new events never shift later pages."""
    query = _events_query(user_id, where)
    if cursor:
        at, event_id = decode_cursor(cursor)
        query = query.where(
            or_(Event.created_at < at, and_(Event.created_at == at, Event.id < event_id))
        )
    rows = list(
        (
            await session.execute(
                query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        events=[EventOut.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=encode_cursor(rows[-1]) if more and rows else None,
    )


async def event_kinds(session: AsyncSession, user_id: uuid.UUID) -> tuple[list[str], list[str]]:
    """The event types and entities this merchant has, for the filter's choices."""
    types = await session.execute(
        select(Event.type).where(Event.user_id == user_id).distinct().order_by(Event.type)
    )
    entities = await session.execute(
        select(Event.entity)
        .where(Event.user_id == user_id, Event.entity.is_not(None))
        .distinct()
        .order_by(Event.entity)
    )
    return list(types.scalars()), [e for e in entities.scalars() if e]
