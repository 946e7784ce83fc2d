"""Opening a merchant account: the user, a trial, the default playbooks, one Event."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.email_address import check_address
from kernel.errors import Invalid
from models.event import log_event
from models.user import User
from services.playbooks import seed_default_playbooks
from services.usage import ensure_subscription


class AccountError(Invalid, ValueError):
    """The account cannot be created as asked; the message says why."""


async def create_user(
    session: AsyncSession, email: str, name: str | None = None, *, verified: bool = False
) -> User:
    """A new account with its trial and default playbooks. `verified`: the address is known
    to be the owner's already (an operator made the account), so no link is asked for."""
    try:
        email = check_address(email)
    except ValueError as exc:
        raise AccountError(f"{email!r} is not a valid email address") from exc
    inserted = await session.execute(
        insert(User)
        .values(email=email, name=name, email_verified_at=func.now() if verified else None)
        .on_conflict_do_nothing(index_elements=[func.lower(User.email)])
        .returning(User.id)
    )
    user_id = inserted.scalar_one_or_none()
    if user_id is None:
        raise AccountError(f"a user with email {email} already exists")
    await ensure_subscription(session, user_id)
    await seed_default_playbooks(session, user_id)
    await log_event(session, "user.created", user_id=user_id, entity="user", entity_id=user_id)
    return (await session.execute(select(User).where(User.id == user_id))).scalar_one()


async def find_user(session: AsyncSession, email: str) -> User | None:
    return (
        await session.execute(select(User).where(func.lower(User.email) == email.strip().lower()))
    ).scalar_one_or_none()
