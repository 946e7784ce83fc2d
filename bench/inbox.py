"""Inbox listing latency at scale, against baselines measured in the same run.

    uv run python -m bench.inbox [--threads 100000] [--requests 200] [--explain]

Loads one merchant with N threads (and a second with N/10 beside it: every query must
stay scoped) into a throwaway database of the embedded PostgreSQL, with ~2 messages per
thread, actions in a realistic mix of statuses and orders on ~40% of threads, by COPY.
Then times GET /api/threads (in-process over httpx's ASGI transport, with the real auth
and session dependencies) and the bare query, for first and later pages of each view and
for searches. Baselines: GET /api/messages/{id} (the same stack around a primary-key
lookup) and a bare `SELECT 1`. The machine is noisy: compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import threads
from api.app import create_app
from deskpilot.embedded_postgres import EmbeddedPostgres
from kernel.settings import Settings
from models import migrate
from models.api_token import issue_api_token
from models.db import create_engine, session_factory, unit_of_work
from models.inbox_listing import Cursor, InboxView, list_threads

# Status of the action on a thread's latest inbound message; None: no action (skipped).
STATUS_MIX: list[tuple[str | None, float]] = [
    ("PENDING", 0.05),
    ("APPROVED", 0.01),
    ("EXECUTED", 0.65),
    ("REJECTED", 0.15),
    ("FAILED", 0.04),
    (None, 0.10),
]
ACTION_TYPES = ["REFUND", "CANCEL", "REPLACE_ITEM", "ADDRESS_CHANGE", "INFO_REQUEST", "NONE"]
FIRST = ["ava", "liam", "noah", "emma", "mia", "lucas", "zoe", "omar", "ines", "yuki", "priya"]
LAST = ["patel", "smith", "garcia", "kim", "nguyen", "rossi", "muller", "silva", "khan", "berg"]
TOPICS = [
    ("Where is my order {o}?", "Hi, my order {o} has not arrived yet. Can you check the tracking?"),
    ("Refund for {o}", "The jacket from order {o} does not fit. I would like a refund please."),
    ("Cancel order {o}", "Please cancel order {o}, I ordered the wrong size by mistake."),
    ("Damaged item", "My parcel arrived damaged, the mug is broken. Order {o}. Photos attached."),
    ("Change address", "Could you ship order {o} to my new address: 12 Harbour Road, Leith?"),
    ("Question about sizes", "Do the trainers run small? I am usually a 42 in other brands."),
]
RARE = " Also, is the kayak still in stock?"  # in ~0.2% of customer messages
REPLY = "Thanks for writing to us. We have looked into it and will update you shortly."


@dataclass
class Merchant:
    user_id: uuid.UUID
    connection_id: uuid.UUID
    threads: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _asyncpg_kwargs(url: str) -> dict[str, Any]:
    parsed = make_url(url)
    return {
        "user": parsed.username,
        "password": parsed.password or None,
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
        "database": parsed.database,
    }


def _pick_status(rng: random.Random) -> str | None:
    roll, total = rng.random(), 0.0
    for status, share in STATUS_MIX:
        total += share
        if roll < total:
            return status
    return STATUS_MIX[-1][0]


async def load(connection: asyncpg.Connection, merchant: Merchant, seed: int) -> None:
    """COPY one merchant's inbox: threads, ~2 messages each, orders and actions."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = timedelta(days=730).total_seconds()
    customers = [
        f"{rng.choice(FIRST)}.{rng.choice(LAST)}{k}@example-{k % 50}.com"
        for k in range(max(1, merchant.threads // 3))
    ]
    orders: list[tuple[Any, ...]] = []
    thread_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    action_rows: list[tuple[Any, ...]] = []
    shop = f"shop-{merchant.user_id.hex[:8]}.myshopify.com"
    for i in range(merchant.threads):
        thread_id = uuid.uuid4()
        customer = rng.choice(customers)
        last_at = now - timedelta(seconds=span * (1 - i / merchant.threads) + rng.random())
        order_id, order_name = None, "#0"
        if rng.random() < 0.4:
            order_id, order_name = uuid.uuid4(), f"#{1001 + len(orders)}"
            orders.append(
                (
                    order_id,
                    merchant.connection_id,
                    shop,
                    f"gid://shopify/Order/{seed}{len(orders)}",
                    order_name,
                    "open",
                    customer,
                    Decimal(rng.randrange(1500, 25000)) / 100,
                    "EUR",
                )
            )
        subject, body = rng.choice(TOPICS)
        subject = subject.format(o=order_name)
        thread_rows.append((thread_id, merchant.user_id, customer, subject, last_at))
        # inbound, then usually our reply, sometimes the customer again: ~2 per thread.
        shape = rng.choices(["I", "IO", "IOI"], weights=[0.25, 0.55, 0.20])[0]
        for k, direction in enumerate(shape):
            message_id = uuid.uuid4()
            sent_at = last_at - timedelta(hours=len(shape) - 1 - k)
            inbound = direction == "I"
            message_rows.append(
                (
                    message_id,
                    merchant.user_id,
                    thread_id,
                    order_id if inbound else None,
                    "INBOUND" if inbound else "OUTBOUND",
                    f"<{message_id.hex}@bench.example>",
                    customer if inbound else "support@store.example",
                    subject if k == 0 else f"Re: {subject}",
                    body.format(o=order_name) + (RARE if rng.random() < 0.002 else "")
                    if inbound
                    else REPLY,
                    sent_at,
                )
            )
            if not inbound:
                continue
            latest_inbound = k == len(shape) - 1
            status = _pick_status(rng) if latest_inbound else rng.choice(["EXECUTED", "REJECTED"])
            if status is not None:
                action_rows.append(
                    (
                        uuid.uuid4(),
                        merchant.user_id,
                        message_id,
                        order_id,
                        rng.choice(ACTION_TYPES),
                        status,
                        sent_at + timedelta(seconds=5),
                    )
                )
    await connection.copy_records_to_table(
        "orders",
        records=orders,
        columns=[
            "id",
            "connection_id",
            "shop_domain",
            "shopify_id",
            "name",
            "status",
            "email",
            "total_amount",
            "currency",
        ],
    )
    await connection.copy_records_to_table(
        "threads",
        records=thread_rows,
        columns=["id", "user_id", "customer_email", "subject", "last_message_at"],
    )
    await connection.copy_records_to_table(
        "messages",
        records=message_rows,
        columns=[
            "id",
            "user_id",
            "thread_id",
            "order_id",
            "direction",
            "message_id",
            "from_address",
            "subject",
            "body_text",
            "sent_at",
        ],
    )
    await connection.copy_records_to_table(
        "actions",
        records=action_rows,
        columns=["id", "user_id", "message_id", "order_id", "type", "status", "created_at"],
    )
    # What models/thread_state.py keeps up as actions change, in one statement here.
    await connection.execute(
        """UPDATE threads t SET needs_decision = TRUE
        WHERE t.user_id = $1 AND EXISTS (
            SELECT 1 FROM messages m JOIN actions a ON a.message_id = m.id
            WHERE m.thread_id = t.id AND a.status = 'PENDING')""",
        merchant.user_id,
    )


async def create_merchant(connection: asyncpg.Connection, threads_count: int) -> Merchant:
    user_id = await connection.fetchval(
        "INSERT INTO users (email, name) VALUES ($1, 'Bench') RETURNING id",
        f"merchant-{uuid.uuid4().hex[:8]}@bench.example",
    )
    # The token column is encrypted by the ORM; the listing never reads it.
    connection_id = await connection.fetchval(
        "INSERT INTO connections (user_id, type, access_token, shop_domain) "
        "VALUES ($1, 'SHOPIFY', 'unused', $2) RETURNING id",
        user_id,
        f"shop-{user_id.hex[:8]}.myshopify.com",
    )
    return Merchant(user_id, connection_id, threads_count)


async def _timed(call: Callable[[], Awaitable[None]], requests: int) -> list[float]:
    for _ in range(min(10, requests)):  # warm caches and prepared statements
        await call()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


@dataclass
class Case:
    name: str
    view: InboxView
    q: str | None
    cursor: Cursor | None


async def _cases(
    sessions: async_sessionmaker[AsyncSession], merchant: Merchant, rng: random.Random
) -> list[Case]:
    """First pages, the 5th page (cursors followed), a page from the middle, searches."""
    cases: list[Case] = []
    async with sessions() as session:
        for view in InboxView:
            cases.append(Case(f"{view.value} page 1", view, None, None))
            cursor = None
            for _ in range(4):
                page = await list_threads(session, merchant.user_id, view=view, cursor=cursor)
                cursor = page.next_cursor
            cases.append(Case(f"{view.value} page 5", view, None, cursor))
        middle = (
            await session.execute(
                text(
                    "SELECT last_message_at, id FROM threads WHERE user_id = :u "
                    "ORDER BY last_message_at DESC, id DESC OFFSET :n LIMIT 1"
                ),
                {"u": merchant.user_id, "n": merchant.threads // 2},
            )
        ).one()
        for view in InboxView:
            cases.append(Case(f"{view.value} mid-inbox", view, None, Cursor(*middle)))
        customer, order_name = (
            await session.execute(
                text(
                    "SELECT t.customer_email, o.name FROM threads t "
                    "JOIN messages m ON m.thread_id = t.id JOIN orders o ON o.id = m.order_id "
                    "WHERE t.user_id = :u ORDER BY t.last_message_at LIMIT 1 OFFSET :n"
                ),
                {"u": merchant.user_id, "n": rng.randrange(max(1, merchant.threads // 3))},
            )
        ).one()
    cases += [
        Case("search customer prefix", InboxView.all, customer.split("@")[0], None),
        Case("search order name", InboxView.all, order_name.lstrip("#"), None),
        Case("search rare word (~0.2% of threads)", InboxView.all, "kayak", None),
        # Each topic's words are in ~1/6 of the threads: the whole hit set is read.
        Case("search common word (~1/6)", InboxView.all, "refund", None),
        Case("search common word (~1/6), needs_dec.", InboxView.needs_decision, "damaged", None),
    ]
    return cases


def _params(case: Case) -> dict[str, str]:
    params = {"view": case.view.value, "limit": "50"}
    if case.q:
        params["q"] = case.q
    if case.cursor:
        params["cursor"] = case.cursor.encode()
    return params


async def measure(
    app: FastAPI,
    sessions: async_sessionmaker[AsyncSession],
    merchant: Merchant,
    token: str,
    requests: int,
    explain: bool,
) -> list[tuple[str, list[float], list[float]]]:
    rng = random.Random(7)
    rows: list[tuple[str, list[float], list[float]]] = []
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://bench.test",
            headers={"Authorization": f"Bearer {token}"},
        ) as http,
        sessions() as session,
    ):
        message_id = (
            await session.execute(
                text("SELECT id FROM messages WHERE user_id = :u LIMIT 1"),
                {"u": merchant.user_id},
            )
        ).scalar_one()

        async def http_baseline() -> None:
            (await http.get(f"/api/messages/{message_id}")).raise_for_status()

        async def bare_baseline() -> None:
            await session.execute(text("SELECT 1"))
            await session.commit()

        rows.append(
            (
                "baseline: GET /api/messages/{id} | SELECT 1",
                await _timed(http_baseline, requests),
                await _timed(bare_baseline, requests),
            )
        )
        for case in await _cases(sessions, merchant, rng):

            async def over_http(case: Case = case) -> None:
                response = await http.get("/api/threads", params=_params(case))
                response.raise_for_status()

            async def bare(case: Case = case) -> None:
                await list_threads(
                    session, merchant.user_id, view=case.view, q=case.q, cursor=case.cursor
                )
                await session.commit()

            async with sessions() as probe:
                page = await list_threads(
                    probe, merchant.user_id, view=case.view, q=case.q, cursor=case.cursor
                )
            if explain:
                await _explain(session, merchant, case)
            name = f"{case.name} ({len(page.threads)} rows)"
            rows.append((name, await _timed(over_http, requests), await _timed(bare, requests)))
    return rows


async def _explain(session: AsyncSession, merchant: Merchant, case: Case) -> None:
    from models.inbox_listing import listing_params, listing_sql

    sql = listing_sql(case.view, searching=bool(case.q), after_cursor=case.cursor is not None)
    plan = await session.execute(
        text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"),
        listing_params(merchant.user_id, case.q, case.cursor, 50),
    )
    print(f"--- {case.name}")
    print("\n".join(row[0] for row in plan))
    await session.commit()


def _app(engine: Any, home: Path) -> FastAPI:
    settings = Settings(_env_file=None, DESKPILOT_HOME=home, DESKPILOT_SECRET_KEY="bench")  # type: ignore[call-arg]
    app = create_app(engine, None, settings)
    if not any(getattr(route, "path", "") == "/api/threads" for route in app.routes):
        app.include_router(threads.router)  # until api/app.py mounts it
    return app


async def main(threads_count: int, requests: int, explain: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="deskpilot-bench-inbox-") as tmp:
        home = Path(tmp)
        postgres = EmbeddedPostgres(home / "pgdata")
        postgres.start()
        try:
            url = postgres.ensure_database("bench_inbox")
            await migrate.upgrade(url)
            started = time.perf_counter()
            connection = await asyncpg.connect(**_asyncpg_kwargs(url))
            try:
                merchant = await create_merchant(connection, threads_count)
                other = await create_merchant(connection, max(1, threads_count // 10))
                await load(connection, merchant, seed=1)
                await load(connection, other, seed=2)
                await connection.execute("VACUUM ANALYZE")
                counts = {
                    table: await connection.fetchval(f"SELECT count(*) FROM {table}")
                    for table in ("threads", "messages", "actions", "orders")
                }
            finally:
                await connection.close()
            loaded = time.perf_counter() - started
            engine = create_engine(url, secret_key="bench", pool_size=5)
            sessions = session_factory(engine)
            async with unit_of_work(sessions) as session:
                token = await issue_api_token(session, merchant.user_id, "bench")
            rows = await measure(_app(engine, home), sessions, merchant, token, requests, explain)
            await engine.dispose()
        finally:
            postgres.stop()

    print(
        f"threads: {threads_count} (+{max(1, threads_count // 10)} of a second merchant); "
        + ", ".join(f"{table}: {n}" for table, n in counts.items())
        + f"; loaded in {loaded:.1f} s"
    )
    print(f"{requests} sequential requests per row, page size 50; times in ms")
    http_base = statistics.median(rows[0][1])
    bare_base = statistics.median(rows[0][2])
    header = f"{'case':50s} {'HTTP p50':>9s} {'HTTP p95':>9s} {'x base':>7s} "
    print(header + f"{'query p50':>10s} {'query p95':>10s} {'x base':>7s}")
    for name, over_http, bare in rows:
        print(
            f"{name:50s} {statistics.median(over_http):9.2f} {_percentile(over_http, 0.95):9.2f} "
            f"{statistics.median(over_http) / http_base:7.2f} "
            f"{statistics.median(bare):10.2f} {_percentile(bare, 0.95):10.2f} "
            f"{statistics.median(bare) / bare_base:7.2f}"
        )
    worst = max(_percentile(h, 0.95) for name, h, _ in rows[1:] if "search" not in name)
    print(f"worst listing p95 over HTTP (views, any page, no search): {worst:.2f} ms")
    print("x base: p50 / the baseline's p50 (GET /api/messages/{id} for HTTP, SELECT 1 bare)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE per case")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.threads, arguments.requests, arguments.explain))
