"""Failed sign-ins, counted in the database so every API process sees the same count.

Keys are per email address (hashed: the table holds no addresses) and per client IP.
An office behind one address has many people typing passwords, hence the looser IP limit;
an attacker spraying one password over many addresses still meets it.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Index, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, uuid_pk

FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_IP = 20


class LoginFailure(Base):
    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_failed_at", "key", "failed_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    key: Mapped[str] = mapped_column(String(80))
    failed_at: Mapped[datetime]


def email_key(email: str) -> str:
    return "email:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def ip_key(ip: str) -> str:
    return "ip:" + ip[:70]


def _limits(email: str, ip: str | None) -> list[tuple[str, int]]:
    limits = [(email_key(email), MAX_FAILURES_PER_EMAIL)]
    if ip:
        limits.append((ip_key(ip), MAX_FAILURES_PER_IP))
    return limits


async def login_retry_after(
    session: AsyncSession, email: str, ip: str | None, *, now: datetime | None = None
) -> int | None:
    """Seconds until this email and IP may try again, or None when they may try now."""
    now = now or datetime.now(UTC)
    wait = 0.0
    for key, limit in _limits(email, ip):
        # The limit-th newest failure in the window: once it leaves the window, one more try.
        oldest_counted = (
            await session.execute(
                select(LoginFailure.failed_at)
                .where(LoginFailure.key == key, LoginFailure.failed_at > now - FAILURE_WINDOW)
                .order_by(LoginFailure.failed_at.desc())
                .offset(limit - 1)
                .limit(1)
            )
        ).scalar_one_or_none()
        if oldest_counted is not None:
            wait = max(wait, (oldest_counted + FAILURE_WINDOW - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


async def record_login_failure(
    session: AsyncSession, email: str, ip: str | None, *, now: datetime | None = None
) -> None:
    now = now or datetime.now(UTC)
    keys = [key for key, _ in _limits(email, ip)]
    # Failures that no longer count go as new ones come: the table stays small.
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.key.in_(keys), LoginFailure.failed_at <= now - FAILURE_WINDOW
        )
    )
    session.add_all(LoginFailure(key=key, failed_at=now) for key in keys)
    await session.flush()


async def clear_login_failures(session: AsyncSession, email: str) -> None:
    """A successful sign-in forgives the address (not the IP, which others may share)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.key == email_key(email)))
