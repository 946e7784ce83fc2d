"""Pipeline throughput and latency against a bare Temporal baseline, in one run.

    uv run python -m bench.pipeline [--messages 40] [--concurrency 8]

(a) baseline: a no-op workflow of the same shape (4 activities and one update),
    driven like a message: start, wait until it is ready, approve, wait for the end.
(b) pipeline: the real thing over HTTP on loopback: POST /api/inbound/email, poll
    GET /api/messages/{id} until the suggestion is ready, POST approve, poll until
    EXECUTED; with PostgreSQL, the Temporal dev server, the worker and the
    sandbox store and mail sink (no added latency) all on this machine.
Prints messages/s for both, the ratio, and p50/p95 of ingest → suggestion ready
and approve → executed. The machine is noisy: compare the ratio, not the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from bench.baseline_workflow import BaselineWorkflow, noop
from deskpilot.demo import bootstrap_demo
from deskpilot.embedded_postgres import EmbeddedPostgres
from deskpilot.processes import http_server
from integrations.offline_suggester import OfflineSuggester
from integrations.sandbox_mailer import SandboxMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.settings import Settings
from models import migrate
from models.db import create_engine, session_factory
from sandbox.server import Sandbox, serving
from sandbox.shopify.server import DEMO_SHOP
from worker import WorkerDependencies, build_worker
from workflows import search_attributes

POLL = 0.01  # seconds between polls; bounds the latency figures' resolution


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _bounded(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    """Run the jobs, `concurrency` at a time; return the elapsed seconds."""
    gate = asyncio.Semaphore(concurrency)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    started = time.perf_counter()
    await asyncio.gather(*(run(job) for job in jobs))
    return time.perf_counter() - started


async def baseline(client: Client, count: int, concurrency: int) -> float:
    queue = f"bench-baseline-{uuid.uuid4().hex[:6]}"

    async def journey() -> None:
        handle = await client.start_workflow(
            BaselineWorkflow.run, id=f"bench-{uuid.uuid4().hex}", task_queue=queue
        )
        while not await handle.query(BaselineWorkflow.ready):
            await asyncio.sleep(POLL)
        await handle.execute_update(BaselineWorkflow.approve)
        await handle.result()

    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow], activities=[noop]):
        return await _bounded([journey for _ in range(count)], concurrency)


def _email(sender: str, alias: str, number: str) -> bytes:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = alias
    email["Subject"] = f"Order #{number} arrived damaged"
    email["Message-ID"] = make_msgid(domain="customer.example")
    email.set_content(f"Hello, my order #{number} arrived broken. Could I get a refund?")
    return email.as_bytes()


async def pipeline(
    http: httpx.AsyncClient,
    inbound_url: str,
    alias: str,
    refundable: list[tuple[str, str]],
    count: int,
    concurrency: int,
) -> tuple[float, list[float], list[float]]:
    orders = [{"name": name, "email": email} for name, email in refundable][:count]
    if len(orders) < count:
        raise SystemExit(
            f"the demo store has {len(orders)} refundable orders; use --messages <= {len(orders)}"
        )
    ready_latency: list[float] = []
    execute_latency: list[float] = []

    async def status(message_id: str) -> dict | None:  # type: ignore[type-arg]
        response = await http.get(f"/api/messages/{message_id}")
        response.raise_for_status()
        return response.json()["action"]

    def journey(order: dict) -> Callable[[], Awaitable[None]]:  # type: ignore[type-arg]
        async def run() -> None:
            started = time.perf_counter()
            posted = await http.post(
                inbound_url, content=_email(order["email"], alias, order["number"])
            )
            posted.raise_for_status()
            message_id = posted.json()["message_id"]
            while (action := await status(message_id)) is None or action["status"] != "PENDING":
                await asyncio.sleep(POLL)
            ready_latency.append(time.perf_counter() - started)
            approving = time.perf_counter()
            approved = await http.post(f"/api/actions/{action['id']}/approve", json={})
            approved.raise_for_status()
            while (action := await status(message_id)) is None or action["status"] not in (
                "EXECUTED",
                "FAILED",
            ):
                await asyncio.sleep(POLL)
            if action["status"] != "EXECUTED":
                raise RuntimeError(f"order {order['name']}: {action}")
            execute_latency.append(time.perf_counter() - approving)

        return run

    jobs = [journey({**o, "number": o["name"].lstrip("#")}) for o in orders]
    elapsed = await _bounded(jobs, concurrency)
    return elapsed, ready_latency, execute_latency


async def main(count: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="deskpilot-bench-") as tmp:
        home = Path(tmp)
        postgres = EmbeddedPostgres(home / "pgdata")
        postgres.start()
        try:
            url = postgres.ensure_database("bench")
            await migrate.upgrade(url)
            env = await WorkflowEnvironment.start_local(
                data_converter=pydantic_data_converter,
                dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
                dev_server_extra_args=search_attributes.dev_server_flags(),
            )
            try:
                base_seconds = await baseline(env.client, count, concurrency)
                settings = Settings(
                    _env_file=None, DESKPILOT_HOME=home, DESKPILOT_SECRET_KEY="bench"
                )  # type: ignore[call-arg]
                engine = create_engine(url, secret_key="bench", pool_size=20)
                sessions = session_factory(engine)
                sandbox = Sandbox()
                port = _free_port()
                api_base = f"http://127.0.0.1:{port}"
                async with serving(sandbox) as sandbox_url:
                    demo = await bootstrap_demo(
                        sessions,
                        settings,
                        sandbox,
                        sandbox_url,
                        api_base=api_base,
                        temporal_ui=None,
                    )
                    shopify, mailer = ShopifyAdmin(), SandboxMailer(sandbox_url)
                    refundable = [
                        (o.name, o.email or "")
                        for o in sandbox.shopify.shop(DEMO_SHOP).orders.values()
                        if o.cancelled_at is None and o.refundable > 0 and o.email
                    ]
                    deps = WorkerDependencies(sessions, shopify, mailer, OfflineSuggester())
                    app = create_app(engine, env.client, settings)
                    async with (
                        build_worker(env.client, deps),
                        http_server(app, "127.0.0.1", port),
                        httpx.AsyncClient(
                            base_url=api_base,
                            headers={"Authorization": f"Bearer {demo.api_token}"},
                            timeout=30,
                        ) as http,
                    ):
                        pipe_seconds, ready, executed = await pipeline(
                            http,
                            demo.inbound_url,
                            demo.alias_address,
                            refundable,
                            count,
                            concurrency,
                        )
                    await shopify.aclose()
                    await mailer.aclose()
                await engine.dispose()
            finally:
                await env.shutdown()
        finally:
            postgres.stop()

    base_rate, pipe_rate = count / base_seconds, count / pipe_seconds
    print(f"messages: {count}, concurrency: {concurrency}, poll interval: {POLL * 1000:.0f} ms")
    print(
        f"(a) bare Temporal baseline (4 no-op activities + 1 update): {base_rate:7.1f} messages/s"
    )
    print(
        f"(b) full pipeline over HTTP (ingest .. approve .. executed): {pipe_rate:7.1f} messages/s"
    )
    print(f"ratio pipeline / baseline: {pipe_rate / base_rate:.2f}")
    for name, values in (("ingest -> suggestion ready", ready), ("approve -> executed", executed)):
        print(
            f"{name:28s} p50 {statistics.median(values) * 1000:7.1f} ms   "
            f"p95 {_percentile(values, 0.95) * 1000:7.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.concurrency))
