"""Pooled connections are pinged before use only after sitting idle (models/idle_ping.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import create_engine

SECRET = "idle-ping-test-secret-key-0123456789"


@pytest.fixture
async def killer(empty_database: str) -> AsyncIterator[AsyncEngine]:
    """A second engine that ends the first one's server processes."""
    engine = create_engine(empty_database, secret_key=SECRET, pool_size=1)
    yield engine
    await engine.dispose()


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def _terminate(killer: AsyncEngine, pid: int) -> None:
    """End the backend and wait until the server no longer lists it."""
    async with killer.connect() as connection:
        assert (await connection.execute(text(f"SELECT pg_terminate_backend({pid})"))).scalar()
    for _ in range(200):
        async with killer.connect() as connection:
            alive = await connection.execute(
                text(f"SELECT 1 FROM pg_stat_activity WHERE pid = {pid}")
            )
            if alive.first() is None:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} never ended")


async def test_an_idle_connection_that_died_is_replaced_before_use(
    empty_database: str, killer: AsyncEngine
) -> None:
    engine = create_engine(empty_database, secret_key=SECRET, pool_size=1, ping_after_idle_s=0)
    try:
        first = await _pid(engine)
        await _terminate(killer, first)
        # Idle past the window (0 s): pinged, found dead, replaced; the caller sees nothing.
        second = await _pid(engine)
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_used_a_moment_ago_is_not_pinged(
    empty_database: str, killer: AsyncEngine
) -> None:
    engine = create_engine(empty_database, secret_key=SECRET, pool_size=1, ping_after_idle_s=3600)
    try:
        first = await _pid(engine)
        await _terminate(killer, first)
        # Within the window no ping is spent: the dead connection fails its one statement,
        # and that failure replaces the pool, so the next use works.
        with pytest.raises(DBAPIError) as failed:
            await _pid(engine)
        assert failed.value.connection_invalidated
        assert await _pid(engine) != first
    finally:
        await engine.dispose()
