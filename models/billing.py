"""Subscription (1:1 with User) and its per-period UsageRecords."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import PlanType, SubscriptionStatus
from models.base import Base, created_at, updated_at, uuid_pk
from models.enums import PLAN_TYPE, SUBSCRIPTION_STATUS

if TYPE_CHECKING:
    from models.user import User


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("current_period_end > current_period_start", name="period_order"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    plan_type: Mapped[PlanType] = mapped_column(PLAN_TYPE)
    status: Mapped[SubscriptionStatus] = mapped_column(SUBSCRIPTION_STATUS)
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    payment_gateway: Mapped[str | None] = mapped_column(String(32))  # razorpay | paddle | ...
    gateway_subscription_id: Mapped[str | None] = mapped_column(String(255))
    gateway_customer_id: Mapped[str | None] = mapped_column(String(255))
    gateway_plan_id: Mapped[str | None] = mapped_column(String(255))
    # `metadata` is reserved on declarative classes; the column keeps the seed's name.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    user: Mapped[User] = relationship(back_populates="subscription")
    usage_records: Mapped[list[UsageRecord]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan", passive_deletes=True
    )


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        # One row per subscription and period: counters are incremented in place.
        UniqueConstraint("subscription_id", "period_start"),
        CheckConstraint(
            "emails_sent >= 0 AND emails_received >= 0 AND ai_suggestions >= 0",
            name="counters_non_negative",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    emails_sent: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    emails_received: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    ai_suggestions: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    subscription: Mapped[Subscription] = relationship(back_populates="usage_records")


class EmailReservation(Base):
    """One reply's email, reserved in a period before the store acts for it.

    Open (settled_at NULL) while the action runs; settled as sent (then counted in
    `emails_sent`) or released. Open reservations count against the plan's limit, so
    the store never acts for a reply the plan could not send."""

    __tablename__ = "email_reservations"
    __table_args__ = (
        CheckConstraint("outcome IN ('sent', 'released')", name="outcome_known"),
        Index(
            "ix_email_reservations_open",
            "usage_record_id",
            postgresql_where=text("settled_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    action_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("actions.id", ondelete="CASCADE"), unique=True
    )
    usage_record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("usage_records.id", ondelete="CASCADE")
    )
    outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at()
    settled_at: Mapped[datetime | None]
