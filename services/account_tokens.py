"""Issuing, checking and using account link tokens (domain/account_tokens.py's rules)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.account_tokens import (
    TOKEN_LIFETIME,
    TokenPurpose,
    TokenState,
    new_token,
    plausible_token,
    token_digest,
    token_state,
)
from models.account_token import AccountToken, account_token_by_hash, mark_account_token_used


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    user_id: uuid.UUID | None = None
    email: str | None = None


async def issue_account_token(
    session: AsyncSession,
    user_id: uuid.UUID,
    purpose: TokenPurpose,
    email: str,
    *,
    now: datetime | None = None,
) -> str:
    """A new link token for the user; returns the value, which is not kept."""
    now = now or datetime.now(UTC)
    value, digest = new_token()
    session.add(
        AccountToken(
            user_id=user_id,
            purpose=purpose.value,
            email=email,
            token_hash=digest,
            expires_at=now + TOKEN_LIFETIME[purpose],
        )
    )
    await session.flush()
    return value


async def check_account_token(
    session: AsyncSession, value: str | None, purpose: TokenPurpose, *, now: datetime | None = None
) -> TokenCheck:
    """What a link's token is worth now, without using it."""
    if value is None or not plausible_token(value):
        return TokenCheck(TokenState.UNKNOWN)
    row = await account_token_by_hash(session, token_digest(value), purpose.value)
    if row is None:
        return TokenCheck(TokenState.UNKNOWN)
    state = token_state(row.expires_at, row.used_at, now or datetime.now(UTC))
    return TokenCheck(state, row.user_id, row.email)


async def use_account_token(
    session: AsyncSession, value: str | None, purpose: TokenPurpose, *, now: datetime | None = None
) -> TokenCheck:
    """Marks the token used if it is usable. Returns its state before this use (USABLE:
    this call used it); a concurrent use that won first makes it USED."""
    now = now or datetime.now(UTC)
    checked = await check_account_token(session, value, purpose, now=now)
    if checked.state is not TokenState.USABLE or value is None:
        return checked
    if not await mark_account_token_used(session, token_digest(value), now):
        return TokenCheck(TokenState.USED, checked.user_id, checked.email)
    return checked
