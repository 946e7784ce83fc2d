"""Account links (email verification, password reset): their tokens and when they still work.

The link carries a random value; only its SHA-256 is stored, as for web sessions. A link
works once, and only until it expires: a reset link sooner, since it grants the account.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


TOKEN_LIFETIME: dict[TokenPurpose, timedelta] = {
    TokenPurpose.VERIFY_EMAIL: timedelta(hours=24),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
# A value longer than any we issue is not looked up at all.
MAX_TOKEN_LENGTH = 100


class TokenState(StrEnum):
    USABLE = "usable"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # never issued, forged, or for another purpose


def new_token() -> tuple[str, str]:
    """A fresh link value and the digest to store."""
    value = secrets.token_urlsafe(32)
    return value, token_digest(value)


def token_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def plausible_token(value: str) -> bool:
    return 0 < len(value) <= MAX_TOKEN_LENGTH


def token_state(expires_at: datetime, used_at: datetime | None, now: datetime) -> TokenState:
    if used_at is not None:
        return TokenState.USED
    if now >= expires_at:
        return TokenState.EXPIRED
    return TokenState.USABLE
