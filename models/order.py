"""A Shopify order as last seen, owned through its Shopify connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, Money, created_at, updated_at, uuid_pk

if TYPE_CHECKING:
    from models.action import Action
    from models.connection import Connection
    from models.conversation import Message


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_domain", "shopify_id"),
        # Customers quote "#1001"; the order matcher looks orders up by name and by email.
        Index("ix_orders_connection_id_name", "connection_id", "name"),
        Index("ix_orders_connection_id_email", "connection_id", "email"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE")
    )
    shop_domain: Mapped[str] = mapped_column(String(255))
    shopify_id: Mapped[str] = mapped_column(String(64))  # gid://shopify/Order/<n>
    name: Mapped[str] = mapped_column(String(64))  # customer-facing number, e.g. #1001
    status: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    total_amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    financial_status: Mapped[str | None] = mapped_column(String(32))
    fulfillment_status: Mapped[str | None] = mapped_column(String(32))
    # The last full order fetched (line items, address, refundable amount), for
    # prompts and the inbox; Shopify stays the source of truth before any action.
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    connection: Mapped[Connection] = relationship(back_populates="orders")
    messages: Mapped[list[Message]] = relationship(back_populates="order")
    actions: Mapped[list[Action]] = relationship(back_populates="order")
