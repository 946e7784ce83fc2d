"""Throttled account requests (sign-up, reset and verification emails), counted in the
database beside the sign-in failures, so every API process sees the same count.

Each request is a row of `login_failures` under a key of its own kind ("signup-ip:...",
"reset-email:<sha256>", ...): one table, one index, one clean-up rule for all of them.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.login_throttle import LoginFailure

REQUEST_WINDOW = timedelta(hours=1)


def hashed_key(kind: str, value: str) -> str:
    """A key that stores no address: `kind` plus the SHA-256 of the normalised value."""
    return f"{kind}:" + hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()


def plain_key(kind: str, value: str) -> str:
    return f"{kind}:{value}"[:80]


async def request_retry_after(
    session: AsyncSession,
    limits: list[tuple[str, int]],
    *,
    window: timedelta = REQUEST_WINDOW,
    now: datetime | None = None,
) -> int | None:
    """Seconds until a request counted under all of `limits` (key, most per window) may be
    made again, or None when it may be made now."""
    now = now or datetime.now(UTC)
    wait = 0.0
    for key, limit in limits:
        oldest_counted = (
            await session.execute(
                select(LoginFailure.failed_at)
                .where(LoginFailure.key == key, LoginFailure.failed_at > now - window)
                .order_by(LoginFailure.failed_at.desc())
                .offset(limit - 1)
                .limit(1)
            )
        ).scalar_one_or_none()
        if oldest_counted is not None:
            wait = max(wait, (oldest_counted + window - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


async def record_request(
    session: AsyncSession,
    keys: list[str],
    *,
    window: timedelta = REQUEST_WINDOW,
    now: datetime | None = None,
) -> None:
    now = now or datetime.now(UTC)
    await session.execute(
        delete(LoginFailure).where(
            LoginFailure.key.in_(keys), LoginFailure.failed_at <= now - window
        )
    )
    session.add_all(LoginFailure(key=key, failed_at=now) for key in keys)
    await session.flush()
