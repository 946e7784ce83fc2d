"""The AI's drafted reply and proposed action for one inbound message."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Double, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import ActionType
from models.base import Base, created_at, uuid_pk
from models.enums import ACTION_TYPE

if TYPE_CHECKING:
    from models.conversation import Message
    from models.order import Order


class AISuggestion(Base):
    __tablename__ = "ai_suggestions"
    __table_args__ = (CheckConstraint("confidence BETWEEN 0 AND 1", name="confidence_range"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    reply: Mapped[str] = mapped_column(Text)
    proposed_action: Mapped[ActionType] = mapped_column(ACTION_TYPE)
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    confidence: Mapped[float] = mapped_column(Double)
    provider: Mapped[str] = mapped_column(String(100), server_default="", default="")
    intent: Mapped[str] = mapped_column(String(100), server_default="", default="")
    rationale: Mapped[str] = mapped_column(Text, server_default="", default="")
    # Signals the playbooks read: who is writing, in what mood, in which language.
    language: Mapped[str] = mapped_column(String(16), server_default="", default="")
    sentiment: Mapped[str] = mapped_column(String(16), server_default="neutral", default="neutral")
    wants_human: Mapped[bool] = mapped_column(server_default="false", default=False)
    legal_threat: Mapped[bool] = mapped_column(server_default="false", default=False)
    prompt_tokens: Mapped[int] = mapped_column(server_default="0", default=0)
    completion_tokens: Mapped[int] = mapped_column(server_default="0", default=0)
    # What the guardrails changed and why: [{code, detail}], empty when nothing fired.
    guardrails: Mapped[list[Any]] = mapped_column(server_default="[]", default=list)
    created_at: Mapped[datetime] = created_at()

    message: Mapped[Message] = relationship(back_populates="suggestions")
    order: Mapped[Order | None] = relationship()
