"""Shopify webhook bookkeeping: webhook deliveries, and the customer-data exports that
`customers/data_request` produces. (Install nonces are in models/oauth_state.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk


class ShopifyWebhook(Base):
    """One webhook delivery as received; a redelivery (same event id) is not stored again."""

    __tablename__ = "shopify_webhooks"
    __table_args__ = (
        Index(
            "ix_shopify_webhooks_unprocessed",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
        Index("ix_shopify_webhooks_shop_domain", "shop_domain"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str] = mapped_column(String(255))
    # The owner when the delivery arrived; null for a shop no merchant has connected.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Cleared once processed: order and compliance payloads carry customer data that
    # the Order row or the export now holds, and that a redaction must be able to reach.
    payload: Mapped[dict[str, Any]] = mapped_column(server_default="{}", default=dict)
    triggered_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)  # why processing gave up, if it did


class ComplianceExport(Base):
    """What we held on one customer when Shopify relayed their data request.

    The merchant fetches it (GET /api/compliance/exports/{id}) and gives it to the
    customer; a later customers/redact or shop/redact deletes it with the rest.
    """

    __tablename__ = "compliance_exports"
    __table_args__ = (Index("ix_compliance_exports_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    shop_domain: Mapped[str] = mapped_column(String(255))
    # The delivery that asked: a retried activity finds its export instead of adding one.
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    data_request_id: Mapped[str | None] = mapped_column(String(64))
    customer_email: Mapped[str | None] = mapped_column(String(320))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_at()
