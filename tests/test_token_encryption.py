"""Connection tokens are ciphertext in the database and never appear in logs."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models import Connection
from models.crypto import TokenCipher, TokenDecryptionError, derive_fernet_key
from models.db import create_engine, session_factory, unit_of_work
from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_shopify_connection, make_user

ACCESS = "shpat_0123456789abcdef-plaintext-access"
REFRESH = "1//refresh-token-plaintext"


async def test_raw_columns_hold_ciphertext_only(session: AsyncSession) -> None:
    user = await make_user(session)
    connection = await make_shopify_connection(session, user, token=ACCESS)
    connection.refresh_token = REFRESH
    await session.flush()

    raw = (
        await session.execute(
            text("SELECT access_token, refresh_token FROM connections WHERE id = :id"),
            {"id": connection.id},
        )
    ).one()
    assert ACCESS not in raw.access_token and REFRESH not in raw.refresh_token
    cipher = TokenCipher(TEST_SECRET_KEY)
    assert cipher.decrypt(raw.access_token) == ACCESS
    assert cipher.decrypt(raw.refresh_token) == REFRESH

    session.expunge_all()
    loaded = (
        await session.execute(select(Connection).where(Connection.id == connection.id))
    ).scalar_one()
    assert (loaded.access_token, loaded.refresh_token) == (ACCESS, REFRESH)
    assert ACCESS not in repr(loaded)


async def test_same_token_encrypts_differently_each_time() -> None:
    cipher = TokenCipher(TEST_SECRET_KEY)
    assert cipher.encrypt(ACCESS) != cipher.encrypt(ACCESS)


async def test_wrong_key_gives_a_clear_error() -> None:
    stored = TokenCipher(TEST_SECRET_KEY).encrypt(ACCESS)
    with pytest.raises(TokenDecryptionError, match="DESKPILOT_SECRET_KEY"):
        TokenCipher("another-key").decrypt(stored)


async def test_key_derivation_is_stable_and_key_specific() -> None:
    assert derive_fernet_key("k1") == derive_fernet_key("k1")
    assert derive_fernet_key("k1") != derive_fernet_key("k2")
    with pytest.raises(ValueError):
        derive_fernet_key("")


async def test_plaintext_never_reaches_sql_logs(
    own_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # SQL logging (what echo=True prints) is decided when a connection is made,
    # so turn it on first, then build an engine exactly as the app does.
    with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
        engine = create_engine(own_database, secret_key=TEST_SECRET_KEY, pool_size=1)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                user = await make_user(session)
                connection = await make_shopify_connection(session, user, token=ACCESS)
                connection.refresh_token = REFRESH
            async with unit_of_work(session_factory(engine)) as session:
                await session.execute(select(Connection).where(Connection.id == connection.id))
        finally:
            await engine.dispose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "INSERT INTO connections" in logged  # the statements were logged...
    assert ACCESS not in logged and REFRESH not in logged  # ...their secrets were not
