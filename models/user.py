"""The merchant account: every row a merchant owns reaches it; its password."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Index, String, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.errors import Invalid
from models.base import Base, created_at, updated_at, uuid_pk

if TYPE_CHECKING:
    from models.billing import Subscription
    from models.connection import Connection
    from models.playbook import Playbook


class User(Base):
    __tablename__ = "users"
    # Email addresses are case-insensitive in practice; one account per address.
    __table_args__ = (Index("uq_users_email_lower", text("lower(email)"), unique=True),)

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    # argon2id, with its parameters in the string; None: this user cannot sign in to the web app.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # When the owner proved the address is theirs (a verification link); None: not yet.
    email_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    connections: Mapped[list[Connection]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    subscription: Mapped[Subscription | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    playbooks: Mapped[list[Playbook]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"User(id={self.id}, email={self.email!r})"


MIN_PASSWORD_LENGTH = 8
# argon2's cost does not grow with the length; the cap only keeps request bodies sane.
MAX_PASSWORD_LENGTH = 1024

# The library's defaults (argon2id, RFC 9106 low-memory profile); raising them here makes
# every stored hash with weaker parameters upgrade at its owner's next sign-in.
_hasher = PasswordHasher()


class PasswordError(Invalid, ValueError):
    """The password cannot be used; the message says why."""


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


async def hash_password(password: str) -> str:
    check_password(password)
    # About 50 ms of CPU: off the event loop so other requests keep flowing.
    return await asyncio.to_thread(_hasher.hash, password)


async def set_password(session: AsyncSession, user_id: uuid.UUID, password: str) -> None:
    password_hash = await hash_password(password)
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash)
    )


@cache
def _decoy_hash() -> str:
    """A hash with the current parameters for accounts that do not exist (or lack a password)."""
    return _hasher.hash("decoy password that no account has")


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(session: AsyncSession, email: str, password: str) -> User | None:
    """The user with this email and password, or None.

    An unknown email, a user without a password and a wrong password all cost one argon2
    verification, so the answer's timing does not tell which addresses have accounts.
    A hash made with older parameters is replaced (the caller commits).
    """
    user = (
        await session.execute(select(User).where(func.lower(User.email) == email.strip().lower()))
    ).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.password_hash else None
    # Longer than any stored password can be: it fails either way, without hashing megabytes.
    candidate = password[: MAX_PASSWORD_LENGTH + 1]
    matched = await asyncio.to_thread(_matches, stored or _decoy_hash(), candidate)
    if user is None or stored is None or not matched:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = await asyncio.to_thread(_hasher.hash, password)
    return user


# Sign-in state belongs to the account; importing it here keeps its tables in every
# metadata that knows users (Alembic's comparison, the tests).
import models.account_token  # noqa: E402
import models.login_throttle  # noqa: E402
import models.web_session  # noqa: E402, F401
