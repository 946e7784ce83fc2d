"""Email in → refunded on its own, against the same journey approved by a person at once.

    uv run python -m bench.playbook_latency [--messages 40] [--concurrency 4]

Each mode runs on a fresh stack of its own, so both see the same 60 seeded orders: a
database of the embedded PostgreSQL, a Temporal dev server, the demo merchant (its store
in the sandbox, no added latency), the worker and the API over HTTP on loopback. The
"Refund damaged items" playbook is set through the API (PUT /rules: threshold 0.5, which
the offline suggester reaches, and refunds up to --refund-limit, so that enough of the
seeded orders qualify; PATCH /settings/automation: the daily caps out of the way).

(a) person: the playbook as shipped, waiting for a person; the bench polls
    GET /api/messages/{id} and POSTs approve as soon as the action is PENDING and its
    playbook run has started. (An approval in the ~0.2 s before that is recorded, but
    the run, started later, never hears of it: its execution stays pending for days.)
(b) automatic: `requires_approval` off; nobody approves.

One journey per order, timed from POST /api/inbound/email of a broken-item email until
the MessageWorkflow's result (refund done, reply sent) and the playbook execution row
`executed` (automatic in (b), a person's in (a)). Prints p50/p95 of both and the ratio.
The machine is noisy: compare the ratio, not the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from bench.pipeline import (
    POLL,
    _bounded,
    _email,
    _free_port,
    _percentile,
    set_damaged_item_playbook,
)
from deskpilot.demo import DemoInfo, bootstrap_demo
from deskpilot.embedded_postgres import EmbeddedPostgres
from deskpilot.processes import http_server
from integrations.offline_suggester import OfflineSuggester
from integrations.sandbox_mailer import SandboxMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import PlaybookExecutionStatus
from kernel.settings import Settings
from kernel.values import OrderSnapshot
from models import migrate
from models.db import create_engine, session_factory
from models.order import Order
from models.playbook import PlaybookExecution
from sandbox.server import Sandbox, serving
from worker import WorkerDependencies, build_worker
from workflows import search_attributes
from workflows.contracts import MessageState, Stage

JOURNEY_SECONDS = 120  # a journey not done by then is reported, not waited for


@dataclass
class Stack:
    http: httpx.AsyncClient
    client: Client
    sessions: async_sessionmaker[AsyncSession]
    demo: DemoInfo


@contextlib.asynccontextmanager
async def stack(home: Path, postgres: EmbeddedPostgres, name: str) -> AsyncIterator[Stack]:
    """A fresh desk: its own database, Temporal dev server, sandbox store, worker and API."""
    url = postgres.ensure_database(name)
    await migrate.upgrade(url)
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=search_attributes.dev_server_flags(),
    )
    engine = create_engine(url, secret_key="bench", pool_size=20)
    sessions = session_factory(engine)
    shopify = ShopifyAdmin()
    try:
        settings = Settings(
            _env_file=None, DESKPILOT_HOME=home / name, DESKPILOT_SECRET_KEY="bench"
        )  # type: ignore[call-arg]
        sandbox = Sandbox()
        port = _free_port()
        api_base = f"http://127.0.0.1:{port}"
        async with serving(sandbox) as sandbox_url:
            demo = await bootstrap_demo(
                sessions, settings, sandbox, sandbox_url, api_base=api_base, temporal_ui=None
            )
            mailer = SandboxMailer(sandbox_url)
            deps = WorkerDependencies(sessions, shopify, mailer, OfflineSuggester())
            try:
                async with (
                    build_worker(env.client, deps),
                    http_server(create_app(engine, env.client, settings), "127.0.0.1", port),
                    httpx.AsyncClient(
                        base_url=api_base,
                        headers={"Authorization": f"Bearer {demo.api_token}"},
                        timeout=30,
                    ) as http,
                ):
                    yield Stack(http, env.client, sessions, demo)
            finally:
                await mailer.aclose()
    finally:
        await shopify.aclose()
        await engine.dispose()
        await env.shutdown()


async def orders_accepted(desk: Stack, refund_limit: Decimal) -> list[tuple[str, str]]:
    """(order number, customer email) of each paid order whose whole refundable rest, as
    deskpilot last read it, the playbook may refund."""
    async with desk.sessions() as session:
        rows = (await session.execute(select(Order).order_by(Order.name))).scalars()
        found = []
        for order in rows:
            snapshot = OrderSnapshot.model_validate(order.details or {})
            if (
                not snapshot.cancelled
                and snapshot.email
                and snapshot.financial_status in ("PAID", "PARTIALLY_REFUNDED")
                and 0 < snapshot.refundable <= refund_limit
            ):
                found.append((order.name.lstrip("#"), snapshot.email))
    return found


async def journeys(
    desk: Stack, orders: list[tuple[str, str]], concurrency: int, *, person: bool
) -> list[float]:
    """Seconds from ingest to the journey's end, one per order."""
    latencies: list[float] = []

    async def action(message_id: str) -> dict[str, Any] | None:
        response = await desk.http.get(f"/api/messages/{message_id}")
        response.raise_for_status()
        return response.json()["action"]

    async def execution(message_id: str) -> PlaybookExecution | None:
        async with desk.sessions() as session:
            found = await session.execute(
                select(PlaybookExecution).where(
                    PlaybookExecution.message_id == uuid.UUID(message_id)
                )
            )
            return found.scalars().first()

    async def handed_over(message_id: str) -> dict[str, Any] | None:
        """The pending action once its playbook run has started: a person deciding any
        earlier is never told to the run (see the note on the person mode above)."""
        found = await action(message_id)
        if found is None or found["status"] != "PENDING":
            return None
        opened = await execution(message_id)
        if opened is None or not opened.workflow_id:
            return None
        try:
            await desk.client.get_workflow_handle(opened.workflow_id).describe()
        except RPCError:
            return None
        return found

    def journey(number: str, sender: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started = time.perf_counter()
            posted = await desk.http.post(
                desk.demo.inbound_url,
                content=_email(sender, desk.demo.alias_address, number),
                headers={"Content-Type": "message/rfc822"},
            )
            posted.raise_for_status()
            message_id, workflow_id = posted.json()["message_id"], posted.json()["workflow_id"]
            done = state = None
            try:
                async with asyncio.timeout(JOURNEY_SECONDS):
                    if person:
                        while (found := await handed_over(message_id)) is None:
                            await asyncio.sleep(POLL)
                        approved = await desk.http.post(
                            f"/api/actions/{found['id']}/approve", json={}
                        )
                        approved.raise_for_status()
                    handle = desk.client.get_workflow_handle(workflow_id, result_type=MessageState)
                    state = await handle.result()
                    while (done := await execution(message_id)) is None or done.status in (
                        PlaybookExecutionStatus.pending,
                        PlaybookExecutionStatus.approved,
                    ):
                        await asyncio.sleep(POLL)
            except TimeoutError:
                raise RuntimeError(
                    f"order #{number} (message {message_id}, workflow {workflow_id}) not done "
                    f"after {JOURNEY_SECONDS} s: {state.stage if state else 'running'}, "
                    f"execution {done.status.value if done else None} "
                    f"({done.workflow_id if done else None}) {done.result if done else ''}"
                ) from None
            latencies.append(time.perf_counter() - started)
            if state.stage != Stage.EXECUTED or done.status is not PlaybookExecutionStatus.executed:
                raise RuntimeError(f"order #{number}: {state.stage}, execution {done.status}")
            if done.automatic == person:
                raise RuntimeError(f"order #{number}: automatic={done.automatic}, {done.result}")

        return run

    await _bounded([journey(number, sender) for number, sender in orders], concurrency)
    return latencies


async def mode(
    home: Path,
    postgres: EmbeddedPostgres,
    count: int,
    concurrency: int,
    refund_limit: Decimal,
    *,
    person: bool,
) -> list[float]:
    name = "bench_person" if person else "bench_automatic"
    async with stack(home, postgres, name) as desk:
        await set_damaged_item_playbook(desk.http, automatic=not person, refund_limit=refund_limit)
        orders = await orders_accepted(desk, refund_limit)
        if len(orders) < count:
            raise SystemExit(
                f"{len(orders)} seeded orders qualify up to {refund_limit}; "
                f"use --messages <= {len(orders)} or a higher --refund-limit"
            )
        return await journeys(desk, orders[:count], concurrency, person=person)


def _line(name: str, values: list[float]) -> str:
    return (
        f"{name:42s} p50 {statistics.median(values) * 1000:7.1f} ms   "
        f"p95 {_percentile(values, 0.95) * 1000:7.1f} ms"
    )


async def main(count: int, concurrency: int, refund_limit: Decimal) -> None:
    with tempfile.TemporaryDirectory(prefix="deskpilot-bench-") as tmp:
        home = Path(tmp)
        postgres = EmbeddedPostgres(home / "pgdata")
        postgres.start()
        try:
            person = await mode(home, postgres, count, concurrency, refund_limit, person=True)
            automatic = await mode(home, postgres, count, concurrency, refund_limit, person=False)
        finally:
            postgres.stop()
    print(
        f"messages: {count} per mode, concurrency: {concurrency}, refunds up to "
        f"{refund_limit}, poll interval: {POLL * 1000:.0f} ms"
    )
    print(_line("(a) person approves at once: ingest -> done", person))
    print(_line("(b) playbook approves on its own", automatic))
    print(
        f"ratio automatic / person: p50 {statistics.median(automatic) / statistics.median(person):.2f}"
        f"   p95 {_percentile(automatic, 0.95) / _percentile(person, 0.95):.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--refund-limit", type=Decimal, default=Decimal("500"))
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.concurrency, arguments.refund_limit))
