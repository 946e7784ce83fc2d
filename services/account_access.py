"""Signing up, confirming the email address and resetting a forgotten password.

The links themselves are made and mailed by the worker (services/account_mail_workflows.py);
here they are used. Each use is one transaction: a link that does not work changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.account_tokens import TokenPurpose, TokenState
from models.event import log_event
from models.request_throttle import hashed_key, plain_key, record_request, request_retry_after
from models.user import User, check_password, set_password
from models.web_session import end_user_sessions
from services.account_email import apply_email_change
from services.account_tokens import TokenCheck, use_account_token
from services.accounts import create_user

# Per hour. Sign-ups from one address: an office signs up a few stores, a script many.
MAX_SIGNUPS_PER_IP = 10
# Reset emails: a few for one address (each lands in a real inbox), more per client.
MAX_RESETS_PER_EMAIL = 3
MAX_RESETS_PER_IP = 20
MAX_VERIFICATION_RESENDS = 3


async def sign_up(session: AsyncSession, email: str, password: str) -> User:
    """The account, with its trial and default playbooks (as `deskpilot user create`) and
    the password. Refuses (AccountError, PasswordError) before writing anything."""
    check_password(password)
    user = await create_user(session, email)
    await set_password(session, user.id, password)
    return user


async def signup_retry_after(session: AsyncSession, ip: str | None) -> int | None:
    if not ip:
        return None
    return await request_retry_after(session, [(plain_key("signup-ip", ip), MAX_SIGNUPS_PER_IP)])


async def record_signup_attempt(session: AsyncSession, ip: str | None) -> None:
    if ip:
        await record_request(session, [plain_key("signup-ip", ip)])


def _reset_limits(email: str, ip: str | None) -> list[tuple[str, int]]:
    limits = [(hashed_key("reset-email", email), MAX_RESETS_PER_EMAIL)]
    if ip:
        limits.append((plain_key("reset-ip", ip), MAX_RESETS_PER_IP))
    return limits


async def reset_request_retry_after(
    session: AsyncSession, email: str, ip: str | None
) -> int | None:
    """None: the request counts and may go ahead; else the seconds to wait."""
    limits = _reset_limits(email, ip)
    wait = await request_retry_after(session, limits)
    if wait is None:
        await record_request(session, [key for key, _ in limits])
    return wait


async def resend_retry_after(session: AsyncSession, user_id: uuid.UUID) -> int | None:
    key = plain_key("verify-user", str(user_id))
    wait = await request_retry_after(session, [(key, MAX_VERIFICATION_RESENDS)])
    if wait is None:
        await record_request(session, [key])
    return wait


async def _mark_verified(session: AsyncSession, user_id: uuid.UUID, email: str) -> None:
    await session.execute(
        update(User)
        .where(
            User.id == user_id,
            func.lower(User.email) == email.lower(),
            User.email_verified_at.is_(None),
        )
        .values(email_verified_at=datetime.now(UTC))
    )


@dataclass(frozen=True)
class EmailConfirmed:
    used: TokenCheck
    changed: bool  # the link was for a new address, which is now the account's


async def confirm_email(session: AsyncSession, token: str | None) -> EmailConfirmed:
    """Uses a verification link: the address it was sent to is confirmed. A link for
    another address than the account's was asked for with the password (an address
    change, services/account_email.py): that address becomes the account's. Raises
    EmailTakenError when another account has it now; the caller rolls back."""
    used = await use_account_token(session, token, TokenPurpose.VERIFY_EMAIL)
    if used.state is not TokenState.USABLE:
        return EmailConfirmed(used, changed=False)
    assert used.user_id is not None and used.email is not None
    current = await session.scalar(select(User.email).where(User.id == used.user_id))
    if current is not None and current.lower() != used.email.lower():
        await apply_email_change(session, used.user_id, used.email)
        return EmailConfirmed(used, changed=True)
    await _mark_verified(session, used.user_id, used.email)
    await log_event(
        session,
        "user.email_verified",
        user_id=used.user_id,
        entity="user",
        entity_id=used.user_id,
    )
    return EmailConfirmed(used, changed=False)


async def reset_password(session: AsyncSession, token: str | None, password: str) -> TokenCheck:
    """Uses a reset link: the new password, and every web session of the account ends.
    A password the rules refuse (PasswordError) leaves the link unused."""
    check_password(password)
    used = await use_account_token(session, token, TokenPurpose.RESET_PASSWORD)
    if used.state is TokenState.USABLE:
        assert used.user_id is not None
        await set_password(session, used.user_id, password)
        await end_user_sessions(session, used.user_id)
        # The link reached the address: that proves it as a verification link would.
        assert used.email is not None
        await _mark_verified(session, used.user_id, used.email)
        await log_event(
            session,
            "user.password_reset",
            user_id=used.user_id,
            entity="user",
            entity_id=used.user_id,
        )
    return used
