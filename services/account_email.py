"""Changing the account's email address: nothing changes until the new address proves itself.

The link is an ordinary verification link for the new address (purpose `verify_email`, its
`email` the new address): the table's purposes are fixed, and the meaning is the same,
"whoever holds this link reads mail at that address". Only a request made with the
password issues one for an address other than the account's, and applying a change voids
every other unused link, so an old link can never move the account back or elsewhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.email_address import check_address
from kernel.errors import Conflict, Invalid, LimitReached
from models.account_token import AccountToken
from models.event import log_event
from models.request_throttle import plain_key, record_request, request_retry_after
from models.user import User
from services.account_security import confirm_current_password

# Per hour, as for resending the verification link: each one lands in a real inbox.
MAX_EMAIL_CHANGE_REQUESTS = 3


class EmailTakenError(Conflict):
    code = "email_taken"


class TooManyEmailChangesError(LimitReached):
    code = "too_many_requests"


async def _taken_by_other(session: AsyncSession, user_id: uuid.UUID, email: str) -> bool:
    found = await session.scalar(
        select(User.id).where(func.lower(User.email) == email.lower(), User.id != user_id)
    )
    return found is not None


def _taken(email: str) -> EmailTakenError:
    return EmailTakenError(f"another account already uses {email}")


async def request_email_change(
    session: AsyncSession, user_id: uuid.UUID, new_email: str, password: str, *, ip: str | None
) -> str:
    """Checks the request and counts it; returns the new address, normalised, for the
    worker to mail a link to. The caller commits, also after an error (a wrong password
    and a counted request are kept)."""
    try:
        if "\x00" in new_email:  # PostgreSQL text cannot hold it
            raise ValueError(new_email)
        address = check_address(new_email)
    except ValueError as exc:
        raise Invalid(f"{new_email.strip()!r} is not an email address", code="bad_email") from exc
    await confirm_current_password(session, user_id, password, ip=ip)
    current = (await session.execute(select(User.email).where(User.id == user_id))).scalar_one()
    if current.lower() == address.lower():
        raise Invalid(f"{address} is already this account's address", code="same_email")
    if await _taken_by_other(session, user_id, address):
        raise _taken(address)
    key = plain_key("email-change-user", str(user_id))
    wait = await request_retry_after(session, [(key, MAX_EMAIL_CHANGE_REQUESTS)])
    if wait is not None:
        raise TooManyEmailChangesError(
            "too many address changes asked for: try again later", retry_after=wait
        )
    await record_request(session, [key])
    await log_event(
        session, "user.email_change_requested", user_id=user_id, entity="user", entity_id=user_id
    )
    return address


async def apply_email_change(session: AsyncSession, user_id: uuid.UUID, email: str) -> str:
    """The account's address becomes `email`, confirmed (its link was just used); returns
    the old one. Raises EmailTakenError, changing nothing, when another account took the
    address meanwhile: the caller rolls back, so the link stays usable."""
    if await _taken_by_other(session, user_id, email):
        raise _taken(email)
    old = (await session.execute(select(User.email).where(User.id == user_id))).scalar_one()
    try:
        async with session.begin_nested():  # a concurrent change to the same address
            await session.execute(
                update(User)
                .where(User.id == user_id)
                .values(email=email, email_verified_at=datetime.now(UTC))
            )
    except IntegrityError as exc:
        raise _taken(email) from exc
    # Links sent to the old address (a reset, a verification) no longer reach the owner.
    await session.execute(
        delete(AccountToken).where(AccountToken.user_id == user_id, AccountToken.used_at.is_(None))
    )
    await log_event(
        session, "user.email_changed", user_id=user_id, entity="user", entity_id=user_id
    )
    return old
