"""A merchant's automation settings: the kill switch, the daily caps and business hours."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from kernel.enums import PlaybookExecutionStatus
from models.base import Base, Money, updated_at
from models.playbook import PlaybookExecution

DEFAULT_DAILY_REFUND_CAP = Decimal("500")
DEFAULT_DAILY_EXECUTION_CAP = 100
DEFAULT_PAUSE_AFTER_FAILURES = 3


class AutomationSettings(Base):
    """One row per merchant; a merchant without one has the defaults below."""

    __tablename__ = "automation_settings"
    __table_args__ = (
        CheckConstraint("daily_refund_cap >= 0", name="refund_cap_positive"),
        CheckConstraint("daily_execution_cap >= 0", name="execution_cap_positive"),
        CheckConstraint("pause_after_failures >= 1", name="pause_after_positive"),
        CheckConstraint(
            "business_hours_start BETWEEN 0 AND 23 AND business_hours_end BETWEEN 1 AND 24",
            name="business_hours_range",
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The one switch that stops every automatic approval and playbook action.
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true", default=True)
    # Per store and calendar day (in `timezone`): money refunded and executions run on
    # their own. A person's approvals do not count.
    daily_refund_cap: Mapped[Decimal] = mapped_column(
        Money, server_default=str(DEFAULT_DAILY_REFUND_CAP), default=DEFAULT_DAILY_REFUND_CAP
    )
    daily_execution_cap: Mapped[int] = mapped_column(
        Integer,
        server_default=str(DEFAULT_DAILY_EXECUTION_CAP),
        default=DEFAULT_DAILY_EXECUTION_CAP,
    )
    pause_after_failures: Mapped[int] = mapped_column(
        Integer,
        server_default=str(DEFAULT_PAUSE_AFTER_FAILURES),
        default=DEFAULT_PAUSE_AFTER_FAILURES,
    )
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC", default="UTC")
    business_hours_start: Mapped[int] = mapped_column(Integer, server_default="9", default=9)
    business_hours_end: Mapped[int] = mapped_column(Integer, server_default="17", default=17)
    # ISO weekdays, Monday = 1.
    business_days: Mapped[list[Any]] = mapped_column(
        server_default="[1, 2, 3, 4, 5]", default=lambda: [1, 2, 3, 4, 5]
    )
    updated_at: Mapped[datetime] = updated_at()


async def automation_settings(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> AutomationSettings:
    """The merchant's settings, created with the defaults on first use."""
    query = select(AutomationSettings).where(AutomationSettings.user_id == user_id)
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is not None:  # the common case: one statement, no write
        return found
    await session.execute(
        insert(AutomationSettings).values(user_id=user_id).on_conflict_do_nothing()
    )
    return (await session.execute(query)).scalar_one()


async def automatic_today(
    session: AsyncSession, user_id: uuid.UUID, shop_domain: str | None, since: datetime
) -> tuple[Decimal, int]:
    """Money refunded and executions run on their own at one store since `since`: what the
    daily caps count. Approved ones count too, so two runs cannot both pass a cap."""
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(PlaybookExecution.refund_amount), 0),
                func.count(),
            ).where(
                PlaybookExecution.user_id == user_id,
                PlaybookExecution.automatic.is_(True),
                PlaybookExecution.shop_domain.is_not_distinct_from(shop_domain),
                PlaybookExecution.created_at >= since,
                PlaybookExecution.status.in_(
                    [PlaybookExecutionStatus.approved, PlaybookExecutionStatus.executed]
                ),
            )
        )
    ).one()
    return Decimal(row[0]), int(row[1])
