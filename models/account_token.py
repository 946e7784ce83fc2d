"""Stored account links: the SHA-256 of each token, who it is for, until when, and its use.

The tokens themselves, and when one still works, are services/account_tokens.py's.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk


class AccountToken(Base):
    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(20))
    # The address the link was sent to: verifying it confirms that address only.
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


async def account_token_by_hash(
    session: AsyncSession, token_hash: str, purpose: str
) -> AccountToken | None:
    return (
        await session.execute(
            select(AccountToken).where(
                AccountToken.token_hash == token_hash, AccountToken.purpose == purpose
            )
        )
    ).scalar_one_or_none()


async def mark_account_token_used(session: AsyncSession, token_hash: str, now: datetime) -> bool:
    """In one statement, so of two concurrent uses one wins: True for the winner."""
    won = (
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.token_hash == token_hash,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken.id)
        )
    ).scalar_one_or_none()
    return won is not None
