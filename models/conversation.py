"""Inbox conversations: a Thread groups a customer's Messages about one subject."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.enums import MessageDirection
from models.base import Base, created_at, updated_at, uuid_pk
from models.enums import MESSAGE_DIRECTION

if TYPE_CHECKING:
    from models.order import Order
    from models.suggestion import AISuggestion


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (
        # Also the inbox's keyset order: ties on the time are rare, so an incremental
        # sort on id is cheaper than a wider index (see models/inbox_listing).
        Index("ix_threads_user_id_last_message_at", "user_id", "last_message_at"),
        # Pattern ops serve both equality (threading) and the inbox's prefix search on
        # the (lowercased) address, whatever the database's collation.
        Index(
            "ix_threads_user_id_customer_email_pattern",
            "user_id",
            "customer_email",
            postgresql_ops={"customer_email": "varchar_pattern_ops"},
        ),
        # The inbox's word search for rare words (see models/inbox_listing.py).
        Index("ix_threads_search_vector", "search_vector", postgresql_using="gin"),
        # The "Needs decision" view in inbox order (see models/thread_state.py).
        Index(
            "ix_threads_needs_decision",
            "user_id",
            "last_message_at",
            postgresql_where=text("needs_decision"),
        ),
        # Target of messages' composite foreign key (see Message).
        UniqueConstraint("id", "user_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    customer_email: Mapped[str] = mapped_column(String(320))
    # A PENDING action waits in this thread; kept by models/thread_state.py.
    needs_decision: Mapped[bool] = mapped_column(server_default=false(), default=False)
    subject: Mapped[str] = mapped_column(Text, server_default="")
    last_message_at: Mapped[datetime]
    # Set by playbooks (tag_thread, close_thread) and shown in the inbox.
    tags: Mapped[list[Any]] = mapped_column(server_default="[]", default=list)
    closed_at: Mapped[datetime | None]
    # Every word of the subject and the messages, kept by triggers (migration 0017);
    # pg_trgm is not in the embedded PostgreSQL, so no substring search: 'simple' keeps
    # words as written, in any language. Never loaded with the row.
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR, server_default=text("''::tsvector"), deferred=True
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    messages: Mapped[list[Message]] = relationship(
        back_populates="thread",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Message.sent_at",
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The same email delivered twice (retries, two channels) is stored once.
        UniqueConstraint("user_id", "message_id"),
        # With the id included, the inbox reaches a thread's actions without heap reads.
        Index("ix_messages_thread_id_sent_at", "thread_id", "sent_at", postgresql_include=["id"]),
        Index(
            "ix_messages_connection_id_channel_thread_id",
            "connection_id",
            "channel_thread_id",
            postgresql_where=text("channel_thread_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_not_started",
            "created_at",
            postgresql_where=text("workflow_started_at IS NULL AND direction = 'INBOUND'"),
        ),
        # A message can only join a thread of the same merchant.
        ForeignKeyConstraint(
            ["thread_id", "user_id"],
            ["threads.id", "threads.user_id"],
            ondelete="CASCADE",
            name="fk_messages_thread_id_user_id_threads",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    thread_id: Mapped[uuid.UUID]
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    # The alias or mailbox it came through (replies leave the same way); null for HTTP.
    connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    # The provider's ids, e.g. Gmail's message id and threadId.
    channel_message_id: Mapped[str | None] = mapped_column(String(255))
    channel_thread_id: Mapped[str | None] = mapped_column(String(255))
    direction: Mapped[MessageDirection] = mapped_column(MESSAGE_DIRECTION)
    message_id: Mapped[str] = mapped_column(String(998))  # RFC 5322 line limit
    from_address: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, server_default="")
    body_text: Mapped[str] = mapped_column(Text, server_default="")  # the new text only
    # Quoted history and signature split off body_text, and attachment metadata
    # ({filename, content_type, size}); the bytes stay in raw.
    quoted_text: Mapped[str] = mapped_column(Text, server_default="")
    # What the HTML part hides from its reader (comments, hidden elements): the model never
    # reads it; the guardrails do, since it is where instructions to a model get smuggled.
    hidden_text: Mapped[str] = mapped_column(Text, server_default="")
    attachments: Mapped[list[Any]] = mapped_column(server_default="[]", default=list)
    headers: Mapped[dict[str, Any]] = mapped_column(server_default="{}", default=dict)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    sent_at: Mapped[datetime]
    # The MessageWorkflow that carries an inbound message, and when it was started;
    # null started_at means stored but not started yet (the reconciler's work list).
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    workflow_started_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()

    thread: Mapped[Thread] = relationship(back_populates="messages")
    order: Mapped[Order | None] = relationship(back_populates="messages")
    suggestions: Mapped[list[AISuggestion]] = relationship(
        back_populates="message", cascade="all, delete-orphan", passive_deletes=True
    )
