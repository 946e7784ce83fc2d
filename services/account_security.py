"""Account settings that guard the way in: the password, API tokens, web sessions.

A token's secret and a session's cookie are never shown (only their hashes are stored).
A session is named by `session_ref`, a one-way digest of its stored hash, so a page never
shows the hash either. Every lookup is by (owner, id): another merchant's id is not found.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import Forbidden, LimitReached, NotFound
from models.api_token import ApiToken
from models.event import log_event
from models.login_throttle import login_retry_after, record_login_failure
from models.user import User, check_password, set_password, verify_password
from models.web_session import SESSION_IDLE_TIMEOUT, WebSession


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None


class WebSessionOut(BaseModel):
    id: str  # session_ref: not the stored hash, not the cookie
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None
    current: bool  # the session this request was made with


class PasswordChanged(BaseModel):
    sessions_ended: int  # the other web sessions, signed out


class WrongPasswordError(Forbidden):
    code = "wrong_password"


class TooManyPasswordAttemptsError(LimitReached):
    code = "too_many_attempts"


def session_ref(stored_id: str) -> str:
    return hashlib.sha256(f"deskpilot/session-ref/v1:{stored_id}".encode()).hexdigest()[:32]


# --- API tokens ------------------------------------------------------------------------------


async def list_tokens(session: AsyncSession, user_id: uuid.UUID) -> list[TokenOut]:
    rows = await session.execute(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
    )
    return [
        TokenOut(id=t.id, name=t.name, created_at=t.created_at, last_used_at=t.last_used_at)
        for t in rows.scalars()
    ]


async def revoke_token(session: AsyncSession, user_id: uuid.UUID, token_id: uuid.UUID) -> None:
    """Deletes the token: its next request answers 401. The caller commits."""
    deleted = (
        await session.execute(
            delete(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.user_id == user_id)
            .returning(ApiToken.name)
        )
    ).scalar_one_or_none()
    if deleted is None:
        raise NotFound("API token not found")
    await log_event(
        session,
        "api_token.revoked",
        user_id=user_id,
        entity="api_token",
        entity_id=token_id,
        payload={"name": deleted},
    )


# --- web sessions ----------------------------------------------------------------------------


async def _live_sessions(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> list[WebSession]:
    rows = await session.execute(
        select(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.expires_at > now,
            WebSession.last_seen_at > now - SESSION_IDLE_TIMEOUT,
        )
        .order_by(WebSession.last_seen_at.desc())
    )
    return list(rows.scalars())


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, current: str | None
) -> list[WebSessionOut]:
    """The user's live sessions, newest activity first; `current` is the caller's stored id."""
    return [
        WebSessionOut(
            id=session_ref(s.id),
            created_at=s.created_at,
            last_seen_at=s.last_seen_at,
            expires_at=s.expires_at,
            user_agent=s.user_agent,
            current=s.id == current,
        )
        for s in await _live_sessions(session, user_id, datetime.now(UTC))
    ]


async def revoke_session(session: AsyncSession, user_id: uuid.UUID, ref: str) -> None:
    """Ends one of the user's sessions: its browser is signed out. The caller commits."""
    # A user has a handful of live sessions: finding the ref among them is cheap.
    found = next(
        (s for s in await _live_sessions(session, user_id, datetime.now(UTC))
         if session_ref(s.id) == ref),
        None,
    )  # fmt: skip
    if found is None:
        raise NotFound("session not found")
    await session.execute(delete(WebSession).where(WebSession.id == found.id))
    await log_event(
        session, "web_session.revoked", user_id=user_id, entity="user", entity_id=user_id
    )


# --- the password ----------------------------------------------------------------------------


async def confirm_current_password(
    session: AsyncSession, user_id: uuid.UUID, password: str, *, ip: str | None
) -> None:
    """Raises unless `password` is the account's. Wrong guesses count as failed sign-ins,
    so a stolen session cannot try passwords faster than the sign-in form allows; the
    caller commits, also after a WrongPasswordError (the failure must be kept)."""
    email = (await session.execute(select(User.email).where(User.id == user_id))).scalar_one()
    retry_after = await login_retry_after(session, email, ip)
    if retry_after is not None:
        raise TooManyPasswordAttemptsError(
            "too many wrong passwords: try again later", retry_after=retry_after
        )
    if await verify_password(session, email, password) is None:
        await record_login_failure(session, email, ip)
        raise WrongPasswordError("the current password is not correct")


async def change_password(
    session: AsyncSession,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    *,
    keep_session: str | None,
    ip: str | None,
) -> PasswordChanged:
    """Sets a new password once the current one is given, and ends every web session but
    `keep_session` (the caller's stored id). The caller commits, also after a
    WrongPasswordError (see confirm_current_password)."""
    check_password(new_password)  # before the hash, so a short one costs nothing
    await confirm_current_password(session, user_id, current_password, ip=ip)
    await set_password(session, user_id, new_password)
    ended = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_session is not None:
        ended = ended.where(WebSession.id != keep_session)
    count = len((await session.execute(ended.returning(WebSession.id))).all())
    await log_event(
        session,
        "user.password_changed",
        user_id=user_id,
        entity="user",
        entity_id=user_id,
        payload={"sessions_ended": count},
    )
    return PasswordChanged(sessions_ended=count)
