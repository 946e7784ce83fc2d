"""The merchant account: every row a merchant owns reaches it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, created_at, updated_at, uuid_pk

if TYPE_CHECKING:
    from models.billing import Subscription
    from models.connection import Connection
    from models.playbook import Playbook


class User(Base):
    __tablename__ = "users"
    # Email addresses are case-insensitive in practice; one account per address.
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    connections: Mapped[list[Connection]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    subscription: Mapped[Subscription | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    playbooks: Mapped[list[Playbook]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id}, email={self.email!r})"
