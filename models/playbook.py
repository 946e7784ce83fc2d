"""Automation rules a merchant enables, and the record of each time one fired."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import PlaybookCategory, PlaybookExecutionStatus
from models.base import Base, Money, created_at, updated_at, uuid_pk
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
    # Lower runs first; `stop_processing` keeps later playbooks from running after it.
    priority: Mapped[int] = mapped_column(Integer, server_default="100", default=100)
    stop_processing: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    run_once_per_thread: Mapped[bool] = mapped_column(
        Boolean, server_default="false", default=False
    )
    execution_count: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    last_executed_at: Mapped[datetime | None]
    # Failed executions in a row; at the merchant's limit the playbook pauses itself.
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
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
        # One execution per firing: a redelivered trigger finds the first.
        UniqueConstraint("playbook_id", "trigger_key"),
        # The executions page, newest first (keyset on created_at, id).
        Index("ix_playbook_executions_playbook_id_created_at", "playbook_id", "created_at"),
        Index("ix_playbook_executions_thread_id", "thread_id"),
        # The message page's playbook, and SET NULL when a message is deleted.
        Index("ix_playbook_executions_message_id_created_at", "message_id", "created_at"),
        # The daily caps sum a store's automatic executions of the day.
        Index("ix_playbook_executions_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    playbook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("playbooks.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What fired it: "message:<id>", "order:<id>:<event>", "idle:<thread id>:<since>".
    trigger_key: Mapped[str] = mapped_column(String(300))
    workflow_id: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    thread_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL")
    )
    action_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("actions.id", ondelete="SET NULL")
    )
    shop_domain: Mapped[str | None] = mapped_column(String(255))
    # "playbook" when it approved on its own, "person" when a person decided, else null.
    decided_by: Mapped[str | None] = mapped_column(String(200))
    automatic: Mapped[bool] = mapped_column(Boolean, server_default="false", default=False)
    refund_amount: Mapped[Decimal | None] = mapped_column(Money)
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
