"""An action a person (or a playbook) approved, and what became of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import ActionStatus, ActionType
from models.base import Base, created_at, updated_at, uuid_pk
from models.enums import ACTION_STATUS, ACTION_TYPE

if TYPE_CHECKING:
    from models.conversation import Message
    from models.order import Order
    from models.suggestion import AISuggestion


class Action(Base):
    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_user_id_status", "user_id", "status"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # One action per inbound message: a retried workflow step finds it instead of adding one.
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    suggestion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ai_suggestions.id", ondelete="SET NULL")
    )
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[ActionType] = mapped_column(ACTION_TYPE)
    status: Mapped[ActionStatus] = mapped_column(
        ACTION_STATUS, server_default=ActionStatus.PENDING.value, default=ActionStatus.PENDING
    )
    # Contextual data: shop, note, reply draft, amounts, line items, address.
    payload: Mapped[dict[str, Any]] = mapped_column(server_default="{}", default=dict)
    error: Mapped[str | None] = mapped_column(Text)  # the vendor's message when FAILED
    executed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    message: Mapped[Message | None] = relationship()
    suggestion: Mapped[AISuggestion | None] = relationship()
    order: Mapped[Order | None] = relationship(back_populates="actions")
