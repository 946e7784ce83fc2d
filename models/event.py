"""The audit log, and the one way to append to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_user_id_created_at", "user_id", "created_at"),
        Index("ix_events_entity_entity_id", "entity", "entity_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Null for system events that belong to no merchant (e.g. a forged webhook).
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str | None] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = created_at()


async def log_event(
    session: AsyncSession,
    type: str,
    *,
    user_id: uuid.UUID | None = None,
    entity: str | None = None,
    entity_id: uuid.UUID | str | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    """Append an Event in the caller's transaction, so it commits or rolls back with the change."""
    event = Event(
        type=type,
        user_id=user_id,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        payload=payload,
    )
    session.add(event)
    await session.flush()
    return event
