"""Integrations a merchant connected: a Shopify store, a Gmail mailbox, a forwarding alias."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.email_address import EmailAddress
from kernel.enums import ConnectionType
from models.base import Base, created_at, updated_at, uuid_pk
from models.crypto import EncryptedText
from models.enums import CONNECTION_TYPE

if TYPE_CHECKING:
    from models.order import Order
    from models.user import User


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_user_id_type", "user_id", "type"),
        # A shop's webhooks and an alias's mail must route to exactly one merchant.
        Index(
            "uq_connections_shopify_shop_domain",
            "shop_domain",
            unique=True,
            postgresql_where=text("type = 'SHOPIFY'"),
        ),
        Index(
            "uq_connections_custom_email_alias",
            text("lower(metadata ->> 'alias')"),
            unique=True,
            postgresql_where=text("type = 'CUSTOM_EMAIL'"),
        ),
        Index(
            "uq_connections_gmail_address",
            text("lower(metadata ->> 'emailAddress')"),
            unique=True,
            postgresql_where=text("type = 'GMAIL'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[ConnectionType] = mapped_column(CONNECTION_TYPE)
    access_token: Mapped[str] = mapped_column(EncryptedText)
    refresh_token: Mapped[str | None] = mapped_column(EncryptedText)
    shop_domain: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    user: Mapped[User] = relationship(back_populates="connections")
    orders: Mapped[list[Order]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        # Tokens stay out of reprs, and so out of tracebacks and logs.
        return f"Connection(id={self.id}, type={self.type}, shop_domain={self.shop_domain!r})"


class CustomEmailMetadata(BaseModel):
    """`metadata` of a CUSTOM_EMAIL connection, with the seed's camelCase keys."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    alias: EmailAddress
    domain: str
    shop_domain: str | None = None
    disabled: bool = False
    support_email: EmailAddress | None = None
    store_name: str | None = None
    # The latest test email (domain.mail.alias_test): its token's digest, when it was asked
    # for, sent and seen arriving at the receiver.
    test_token_hash: str | None = None
    test_requested_at: datetime | None = None
    test_sent_at: datetime | None = None
    test_received_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        # The test-email keys only once there was a test: the seed's keys stay as they were.
        unset = {name for name in _TEST_FIELDS if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=unset)


_TEST_FIELDS = ("test_token_hash", "test_requested_at", "test_sent_at", "test_received_at")
