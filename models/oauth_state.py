"""OAuth `state` nonces: they tie a provider's consent callback (Shopify's install,
Google's Gmail consent) back to the signed-in merchant who started it, once. A Shopify
install launched from Shopify's admin with nobody signed in has a state of nobody's."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, created_at, uuid_pk

# Long enough to read a consent screen, short enough to limit replays.
OAUTH_STATE_TTL = timedelta(minutes=10)
SHOPIFY = "shopify"
GOOGLE = "google"


class OAuthState(Base):
    """One consent attempt: which merchant started it, with which provider (and for which
    shop, for Shopify); usable once."""

    __tablename__ = "oauth_states"

    id: Mapped[uuid.UUID] = uuid_pk()
    # The nonce travels in URLs; only its SHA-256 is stored, like API tokens.
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # None: started at Shopify by nobody signed in; the callback finds or makes the merchant.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(20), server_default=SHOPIFY)
    shop_domain: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at()


def _state_digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


async def create_oauth_state(
    session: AsyncSession,
    user_id: uuid.UUID | None,
    *,
    provider: str,
    shop_domain: str | None = None,
) -> str:
    """A new nonce for a consent by `user_id` (None: nobody signed in); returns the nonce."""
    state = secrets.token_urlsafe(32)
    session.add(
        OAuthState(
            state_hash=_state_digest(state),
            user_id=user_id,
            provider=provider,
            shop_domain=shop_domain,
            expires_at=func.now() + OAUTH_STATE_TTL,
        )
    )
    await session.flush()
    return state


@dataclass(frozen=True)
class SpentState:
    user_id: uuid.UUID | None  # None: the install was started by nobody signed in


async def spend_oauth_state(
    session: AsyncSession, state: str, *, provider: str, shop_domain: str | None = None
) -> SpentState | None:
    """Who started this consent, if the state is unused, unexpired, for this provider (and
    shop); None otherwise. It is spent either way: a callback that fails cannot be replayed."""
    row = (
        await session.execute(
            update(OAuthState)
            .where(
                OAuthState.state_hash == _state_digest(state),
                OAuthState.used_at.is_(None),
                OAuthState.expires_at > func.now(),
            )
            .values(used_at=func.now())
            .returning(OAuthState.user_id, OAuthState.provider, OAuthState.shop_domain)
        )
    ).one_or_none()
    if row is None or row.provider != provider or row.shop_domain != shop_domain:
        return None
    return SpentState(user_id=row.user_id)


async def consume_oauth_state(
    session: AsyncSession, state: str, *, provider: str, shop_domain: str | None = None
) -> uuid.UUID | None:
    """The merchant who started this consent (`spend_oauth_state`); a state of nobody's
    counts as unknown here."""
    spent = await spend_oauth_state(session, state, provider=provider, shop_domain=shop_domain)
    return spent.user_id if spent is not None else None
