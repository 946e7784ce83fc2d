"""Server-side sessions of the web app: the browser holds a random value, we keep its hash.

A stolen database dump therefore holds no usable cookie. A session ends when it has been
idle too long, when it reaches its absolute age, or at logout (the row is deleted).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, String, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at

SESSION_IDLE_TIMEOUT = timedelta(hours=12)
SESSION_MAX_AGE = timedelta(days=7)
# last_seen_at moves at most this often: one write per minute per session, not per request.
_TOUCH_INTERVAL = timedelta(minutes=1)
_USER_AGENT_LENGTH = 300


class WebSession(Base):
    __tablename__ = "web_sessions"

    # SHA-256 (hex) of the cookie value.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Random hex; the forms' CSRF token is an HMAC of it (api/web_auth.py).
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    user_agent: Mapped[str | None] = mapped_column(String(_USER_AGENT_LENGTH))


@dataclass(frozen=True)
class SignedIn:
    """Who a valid session cookie belongs to."""

    session_id: str
    user_id: uuid.UUID
    email: str
    name: str | None
    csrf_secret: str
    email_verified: bool = False


def session_digest(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("utf-8")).hexdigest()


async def start_web_session(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    user_agent: str | None = None,
    replacing: str | None = None,
    now: datetime | None = None,
) -> str:
    """A new session for the user; returns the cookie value, which is not kept.

    `replacing` is the cookie the browser had: it is ended, so a value planted before
    sign-in never becomes an authenticated session (session fixation).
    """
    now = now or datetime.now(UTC)
    if replacing:
        await end_web_session(session, replacing)
    # The user's dead sessions go now: no separate cleanup job needed.
    await session.execute(
        delete(WebSession).where(
            WebSession.user_id == user_id,
            or_(
                WebSession.expires_at <= now,
                WebSession.last_seen_at <= now - SESSION_IDLE_TIMEOUT,
            ),
        )
    )
    value = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id=session_digest(value),
            user_id=user_id,
            csrf_secret=secrets.token_hex(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_MAX_AGE,
            user_agent=(user_agent or "")[:_USER_AGENT_LENGTH] or None,
        )
    )
    await session.flush()
    return value


async def web_session_for(
    session: AsyncSession, cookie_value: str, *, now: datetime | None = None
) -> SignedIn | None:
    """The live session behind a cookie value, or None; marks it seen."""
    from models.user import User  # models.user imports this module

    now = now or datetime.now(UTC)
    row = (
        await session.execute(
            select(WebSession, User.email, User.name, User.email_verified_at)
            .join(User, User.id == WebSession.user_id)
            .where(
                WebSession.id == session_digest(cookie_value),
                WebSession.expires_at > now,
                WebSession.last_seen_at > now - SESSION_IDLE_TIMEOUT,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    web_session, email, name, verified_at = row
    if now - web_session.last_seen_at >= _TOUCH_INTERVAL:
        await session.execute(
            update(WebSession).where(WebSession.id == web_session.id).values(last_seen_at=now)
        )
    return SignedIn(
        session_id=web_session.id,
        user_id=web_session.user_id,
        email=email,
        name=name,
        csrf_secret=web_session.csrf_secret,
        email_verified=verified_at is not None,
    )


async def end_web_session(session: AsyncSession, cookie_value: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_digest(cookie_value)))


async def end_user_sessions(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Sign the user out everywhere (after a password change)."""
    await session.execute(delete(WebSession).where(WebSession.user_id == user_id))
