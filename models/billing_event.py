"""Gateway webhook deliveries (Razorpay, Paddle), stored once per (gateway, event id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk


class BillingEvent(Base):
    """One verified delivery as received; a redelivery (same event id) is not stored again.
    The body stays after processing: it holds no customer data beyond gateway ids."""

    __tablename__ = "billing_events"
    __table_args__ = (
        UniqueConstraint("gateway", "event_id"),
        Index(
            "ix_billing_events_unprocessed",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
