"""Automation rules a merchant enables, and the record of each time one fired."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import PlaybookCategory, PlaybookExecutionStatus
from models.base import Base, created_at, updated_at, uuid_pk
from models.enums import PLAYBOOK_CATEGORY, PLAYBOOK_EXECUTION_STATUS

if TYPE_CHECKING:
    from models.user import User


class Playbook(Base):
    __tablename__ = "playbooks"
    __table_args__ = (
        CheckConstraint("confidence_threshold BETWEEN 0 AND 1", name="threshold_range"),
        # Seeding the default templates twice must not duplicate them.
        UniqueConstraint("user_id", "template_key"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[PlaybookCategory] = mapped_column(PLAYBOOK_CATEGORY)
    # Validated by domain.playbook_rules before they are written.
    trigger: Mapped[dict[str, Any]]
    conditions: Mapped[list[Any]] = mapped_column(server_default="[]", default=list)
    actions: Mapped[list[Any]] = mapped_column(server_default="[]", default=list)
    confidence_threshold: Mapped[float] = mapped_column(Double, server_default="0.9", default=0.9)
    requires_approval: Mapped[bool] = mapped_column(Boolean, server_default="true", default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true", default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    # Which system template a default playbook was made from; null for the merchant's own.
    template_key: Mapped[str | None] = mapped_column(String(64))
    execution_count: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    last_executed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    user: Mapped[User] = relationship(back_populates="playbooks")
    executions: Mapped[list[PlaybookExecution]] = relationship(
        back_populates="playbook", cascade="all, delete-orphan", passive_deletes=True
    )


class PlaybookExecution(Base):
    __tablename__ = "playbook_executions"
    __table_args__ = (
        CheckConstraint(
            "confidence IS NULL OR confidence BETWEEN 0 AND 1", name="confidence_range"
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    playbook_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("playbooks.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[PlaybookExecutionStatus] = mapped_column(
        PLAYBOOK_EXECUTION_STATUS,
        server_default=PlaybookExecutionStatus.pending.value,
        default=PlaybookExecutionStatus.pending,
    )
    confidence: Mapped[float | None] = mapped_column(Double)
    trigger_data: Mapped[dict[str, Any]] = mapped_column(server_default="{}", default=dict)
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    executed_at: Mapped[datetime | None]

    playbook: Mapped[Playbook] = relationship(back_populates="executions")
