"""API tokens: how a merchant's programs (and the demo) authenticate to the API.

Only a SHA-256 of the token is stored; the token itself is shown once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk

TOKEN_PREFIX = "dpk_"
# last_used_at moves at most this often: a program polling the API writes once a minute,
# not on every request (every request would update the same row).
TOUCH_INTERVAL = timedelta(minutes=1)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue_api_token(session: AsyncSession, user_id: uuid.UUID, name: str) -> str:
    """Create a token for the user; returns the plaintext, which is not kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name, token_hash=_digest(token)))
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> uuid.UUID | None:
    """The owner of a token, or None; marks the token used (to the minute)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        await session.execute(
            select(ApiToken.id, ApiToken.user_id, ApiToken.last_used_at).where(
                ApiToken.token_hash == _digest(token)
            )
        )
    ).one_or_none()
    if found is None:
        return None
    now = datetime.now(UTC)
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_INTERVAL:
        await session.execute(
            update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now)
        )
    return found.user_id


async def tokens_of(session: AsyncSession, user_id: uuid.UUID) -> list[ApiToken]:
    rows = await session.execute(select(ApiToken).where(ApiToken.user_id == user_id))
    return list(rows.scalars())
