"""Apply and check Alembic migrations from code, one process at a time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from kernel.database_url import to_async_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Arbitrary constant: the key of the advisory lock that serialises migrations
# when an API and a worker start at the same time against one database.
_MIGRATION_LOCK_KEY = 0x6465736B70696C6F  # "deskpilo"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


AlembicCommand = Callable[[Config], object]


async def _run(url: str, run: AlembicCommand, *, lock: bool = True) -> None:
    """Run an Alembic command on one connection, under the migration lock."""
    engine = create_async_engine(to_async_url(url), poolclass=pool.NullPool)

    def on_connection(sync_connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        run(config)

    try:
        async with engine.connect() as connection:
            if lock:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            await connection.run_sync(on_connection)
            await connection.commit()
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to `revision`; a no-op when it is already there."""
    await _run(url, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str) -> None:
    await _run(url, lambda config: command.downgrade(config, revision))


async def autogenerate_revision(url: str, message: str) -> None:
    """Write a new revision with the difference between the models and the database."""
    await _run(url, lambda config: command.revision(config, message, autogenerate=True), lock=False)


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(to_async_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
