"""The one engine and session factory. Services never commit; the unit of work does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from kernel.database_url import to_async_url
from models.crypto import install_token_cipher
from models.idle_ping import ping_when_idle

# A pooled connection idle longer than this is pinged before use (models/idle_ping.py).
PING_AFTER_IDLE_S = 1.0


def create_engine(
    database_url: str | URL,
    *,
    secret_key: str,
    pool_size: int = 10,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> AsyncEngine:
    """Build the engine and install the token cipher that the models' columns use."""
    install_token_cipher(secret_key)
    url = database_url if isinstance(database_url, URL) else to_async_url(database_url)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Bound parameters can hold customer data; keep them out of error messages and logs.
        hide_parameters=True,
    )
    ping_when_idle(engine, ping_after_idle_s)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session
