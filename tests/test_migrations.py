"""The schema that migrations build is exactly the one the models describe."""

from __future__ import annotations

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

import models
from kernel.database_url import to_async_url
from models import migrate
from tests.conftest import _asyncpg_dsn

TABLES = {
    "users",
    "subscriptions",
    "usage_records",
    "connections",
    "orders",
    "threads",
    "messages",
    "ai_suggestions",
    "actions",
    "events",
    "playbooks",
    "playbook_executions",
}

SEED_ENUMS = {
    "plan_type": ["STARTER", "GROWTH", "PRO", "ENTERPRISE", "TRIAL"],
    "subscription_status": ["active", "cancelled", "expired", "past_due"],
    "connection_type": ["SHOPIFY", "GMAIL", "CUSTOM_EMAIL"],
    "message_direction": ["INBOUND", "OUTBOUND"],
    "action_type": ["REFUND", "CANCEL", "REPLACE_ITEM", "ADDRESS_CHANGE", "INFO_REQUEST", "NONE"],
    "action_status": ["PENDING", "APPROVED", "REJECTED", "EXECUTED", "FAILED"],
    "playbook_category": [
        "REFUND_RETURN",
        "MARKETING",
        "FULFILLMENT",
        "SUPPORT",
        "INVENTORY",
        "CUSTOM",
    ],
    "playbook_execution_status": ["pending", "approved", "executed", "rejected", "failed"],
}


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(**_asyncpg_dsn(url))
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(to_async_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync, opts={"compare_type": True, "compare_server_default": True}
                    ),
                    models.Base.metadata,
                )
            )
    finally:
        await engine.dispose()


async def test_autogenerate_finds_no_difference_after_upgrade(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    assert await _diff(empty_database) == []


async def test_autogenerate_would_notice_a_missing_column(empty_database: str) -> None:
    """Guard for the check above: it does see drift when there is some."""
    await migrate.upgrade(empty_database)
    await _fetch(empty_database, "ALTER TABLE orders DROP COLUMN currency")
    diff = await _diff(empty_database)
    assert any("currency" in str(change) for change in diff)


async def test_upgrade_creates_every_table_and_seed_enum(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    tables = {
        r["tablename"]
        for r in await _fetch(
            empty_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert tables >= TABLES
    rows = await _fetch(
        empty_database,
        "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
        "ORDER BY t.typname, e.enumsortorder",
    )
    enums: dict[str, list[str]] = {}
    for row in rows:
        enums.setdefault(row["typname"], []).append(row["enumlabel"])
    assert enums == SEED_ENUMS


async def test_python_enums_match_the_seed() -> None:
    python = {
        "plan_type": models.PlanType,
        "subscription_status": models.SubscriptionStatus,
        "connection_type": models.ConnectionType,
        "message_direction": models.MessageDirection,
        "action_type": models.ActionType,
        "action_status": models.ActionStatus,
        "playbook_category": models.PlaybookCategory,
        "playbook_execution_status": models.PlaybookExecutionStatus,
    }
    assert {name: [m.value for m in cls] for name, cls in python.items()} == SEED_ENUMS


async def test_upgrade_is_idempotent(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    await migrate.upgrade(empty_database)
    assert await migrate.current_revision(empty_database) == migrate.head_revision()


async def test_downgrade_removes_everything_and_upgrade_rebuilds(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    await migrate.downgrade(empty_database, "base")
    leftovers = await _fetch(
        empty_database,
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename <> 'alembic_version' "
        "UNION ALL SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype = 'e'",
    )
    assert leftovers == []
    await migrate.upgrade(empty_database)
    assert await _diff(empty_database) == []


async def test_inbox_indexes_exist(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    rows = await _fetch(
        empty_database, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    )
    definitions = {r["indexname"]: r["indexdef"] for r in rows}
    assert "(user_id, last_message_at)" in definitions["ix_threads_user_id_last_message_at"]
    assert "(thread_id, sent_at)" in definitions["ix_messages_thread_id_sent_at"]
    assert "UNIQUE" in definitions["uq_messages_user_id_message_id"]
    assert "UNIQUE" in definitions["uq_orders_shop_domain_shopify_id"]
    assert "(shop_domain, shopify_id)" in definitions["uq_orders_shop_domain_shopify_id"]


async def test_concurrent_upgrades_take_turns(empty_database: str) -> None:
    """An API and a worker starting together must not both run the initial revision."""
    import asyncio

    await asyncio.gather(*(migrate.upgrade(empty_database) for _ in range(3)))
    assert await migrate.current_revision(empty_database) == migrate.head_revision()


async def test_timestamps_are_timestamptz_and_money_numeric(empty_database: str) -> None:
    await migrate.upgrade(empty_database)
    rows = await _fetch(
        empty_database,
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public'",
    )
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in rows}
    time_columns = [
        k for k in types if k[1].endswith("_at") or k[1].startswith(("period_", "current_period_"))
    ]
    assert time_columns
    assert {types[k] for k in time_columns} == {"timestamp with time zone"}
    assert types[("orders", "total_amount")] == "numeric"
    json_columns = [
        ("messages", "headers"),
        ("actions", "payload"),
        ("playbooks", "trigger"),
        ("connections", "metadata"),
    ]
    assert {types[k] for k in json_columns} == {"jsonb"}


async def test_engine_url_with_unix_socket_works(empty_database: str) -> None:
    engine = create_async_engine(to_async_url(empty_database), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    await engine.dispose()
