"""Pipeline throughput, cost and latency against a bare Temporal baseline, in one run.

    uv run python -m bench.pipeline [--messages 200] [--concurrency 8 16] [--playbook 40]

Every part runs in its own process, as in production (bench.stack): this client, the API,
the worker, the sandbox (the demo store and mail sink), and a counting proxy in front of
the embedded PostgreSQL; the Temporal dev server is its own process too.

(a) baseline: a no-op workflow of the same shape (4 activities and one update) on a worker
    process of its own, driven like a message: start, wait until it is ready, approve,
    wait for the end.
(b) pipeline: POST /api/inbound/email of a broken-item email, long-poll GET
    /api/messages/{id}?wait=&until=PENDING, POST approve, long-poll until=EXECUTED (or
    FAILED); one fresh order each.
(c) playbook: the "Refund damaged items" playbook approving on its own, email → EXECUTED.

For each concurrency it prints the ratio of (b) to (a) in messages/s, then per message of
(b): the API's and the worker's CPU (from the processes; sandbox and client excluded), the
database's transactions and round trips (counted on the wire by the proxy), the store's
Shopify points (requested and actual, as the sandbox's bucket charged them), THROTTLED
answers and failed activity attempts, and the latencies' p50/p95. The machine is noisy:
compare the ratio, not the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.baseline_workflow import BaselineWorkflow
from bench.db_proxy import proxied_url, read_stats
from bench.roles import Role, running
from bench.stack import BASELINE_QUEUE_ENV, EXTRA_ORDERS_ENV
from deskpilot.demo import DEMO_APP_KEY
from deskpilot.embedded_postgres import EmbeddedPostgres
from models import migrate
from sandbox.server import shop_base
from sandbox.shopify.server import DEMO_SHOP
from workflows import search_attributes

POLL = 0.01  # seconds between the baseline's queries
WAIT = 20  # seconds of one long poll on a message
JOURNEY_SECONDS = 300  # one message's journey, throttled waits included
PLAYBOOK = "Refund damaged items"
THRESHOLD = 0.5  # the offline suggester's refunds reach it
PLAYBOOK_STATUSES = ("PAID", "PARTIALLY_REFUNDED")  # the playbook's own condition


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
    async with asyncio.TaskGroup() as group:  # one journey failing stops the others
        for job in jobs:
            group.create_task(run(job))
    return time.perf_counter() - started


def _email(sender: str, alias: str, number: str) -> bytes:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = alias
    email["Subject"] = f"Order #{number} arrived damaged"
    email["Message-ID"] = make_msgid(domain="customer.example")
    email.set_content(f"Hello, my order #{number} arrived broken. Could I get a refund?")
    return email.as_bytes()


# --- (a) the baseline ------------------------------------------------------------------------


async def baseline(client: Client, queue: str, count: int, concurrency: int) -> float:
    async def journey() -> None:
        handle = await client.start_workflow(
            BaselineWorkflow.run, id=f"bench-{uuid.uuid4().hex}", task_queue=queue
        )
        while not await handle.query(BaselineWorkflow.ready):
            await asyncio.sleep(POLL)
        await handle.execute_update(BaselineWorkflow.approve)
        await handle.result()

    return await _bounded([journey for _ in range(count)], concurrency)


# --- (b) and (c): the pipeline ---------------------------------------------------------------


@dataclass
class Order:
    number: str
    email: str
    refundable: Decimal
    financial_status: str


@dataclass
class Desk:
    http: httpx.AsyncClient
    demo: dict[str, Any]
    api: Role
    worker: Role
    proxy: Role
    sandbox_url: str

    async def until(self, message_id: str, *statuses: str) -> dict[str, Any]:
        """The message's action once its status is one of `statuses`; a REFUND, as each
        email asks, or the run stops: a journey that cannot finish is reported. Waits in
        the API's long poll, which answers once the action reaches one of `statuses`."""
        deadline = time.monotonic() + JOURNEY_SECONDS
        etag: str | None = None
        action: dict[str, Any] | None = None
        while True:
            response = await self.http.get(
                f"/api/messages/{message_id}",
                params={"wait": WAIT, "until": list(statuses)},
                headers={"If-None-Match": etag} if etag else None,
            )
            if response.status_code != 304:
                response.raise_for_status()
                etag, action = response.headers["ETag"], response.json()["action"]
                if action is not None and action["status"] in statuses:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"message {message_id}: not {statuses} in time: {action}")
        assert action is not None  # the loop ends only on a status
        if action["type"] != "REFUND":
            raise RuntimeError(f"message {message_id}: a refund was asked for, not {action}")
        return action

    async def post(self, order: Order) -> str:
        posted = await self.http.post(
            self.demo["inbound_url"],
            content=_email(order.email, self.demo["alias_address"], order.number),
        )
        posted.raise_for_status()
        return str(posted.json()["message_id"])


@dataclass
class Counters:
    api_cpu: float
    worker_cpu: float
    db: dict[str, int]
    shopify: dict[str, int]
    failures: dict[str, int]

    @classmethod
    async def read(cls, desk: Desk) -> Counters:
        async with httpx.AsyncClient(timeout=30) as client:
            usage = await client.get(f"{shop_base(desk.sandbox_url, DEMO_SHOP)}/_sandbox/usage")
        usage.raise_for_status()
        return cls(
            api_cpu=desk.api.cpu_seconds(),
            worker_cpu=desk.worker.cpu_seconds(),
            db=await read_stats(desk.proxy.details["stats_port"]),
            shopify=usage.json(),
            failures=await read_stats(desk.worker.details["stats_port"]),
        )


def _delta(after: dict[str, int], before: dict[str, int], key: str) -> int:
    return after.get(key, 0) - before.get(key, 0)


@dataclass
class Run:
    concurrency: int
    count: int
    seconds: float
    ready: list[float]
    executed: list[float]
    before: Counters
    after: Counters

    def per_message(self, value: float) -> float:
        return value / self.count


async def approved_by_a_person(desk: Desk, orders: list[Order], concurrency: int) -> Run:
    ready: list[float] = []
    executed: list[float] = []

    def journey(order: Order) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started = time.perf_counter()
            message_id = await desk.post(order)
            action = await desk.until(message_id, "PENDING")
            ready.append(time.perf_counter() - started)
            approving = time.perf_counter()
            approved = await desk.http.post(f"/api/actions/{action['id']}/approve", json={})
            if approved.is_error:
                raise RuntimeError(
                    f"order {order.number}: {approved.status_code} {approved.text} for {action}"
                )
            action = await desk.until(message_id, "EXECUTED", "FAILED")
            if action["status"] != "EXECUTED":
                raise RuntimeError(f"order {order.number}: {action}")
            executed.append(time.perf_counter() - approving)

        return run

    before = await Counters.read(desk)
    seconds = await _bounded([journey(o) for o in orders], concurrency)
    after = await Counters.read(desk)
    return Run(concurrency, len(orders), seconds, ready, executed, before, after)


async def set_damaged_item_playbook(
    http: httpx.AsyncClient, *, refund_limit: Decimal, automatic: bool
) -> None:
    """The damaged-item playbook through the API, as a merchant would set it: refunds up
    to the limit, on its own when `automatic`; the daily caps out of the way."""
    listed = await http.get("/api/playbooks")
    listed.raise_for_status()
    playbook = next(p for p in listed.json() if p["name"] == PLAYBOOK)
    limit = str(refund_limit)
    conditions = [
        {**c, "value": limit} if c.get("field") == "suggestion.refund_amount" else c
        for c in playbook["conditions"]
    ]
    actions = [
        {**a, "max_refund_amount": limit} if a.get("type") == "approve_suggestion" else a
        for a in playbook["actions"]
    ]
    put = await http.put(
        f"/api/playbooks/{playbook['id']}/rules",
        json={
            "trigger": playbook["trigger"],
            "conditions": conditions,
            "actions": actions,
            "confidence_threshold": THRESHOLD,
            "requires_approval": not automatic,
        },
    )
    put.raise_for_status()
    caps = await http.patch(
        "/api/settings/automation",
        json={"daily_refund_cap": "1000000", "daily_execution_cap": 1_000_000},
    )
    caps.raise_for_status()


async def approved_by_a_playbook(desk: Desk, orders: list[Order], concurrency: int) -> list[float]:
    latencies: list[float] = []

    def journey(order: Order) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started = time.perf_counter()
            message_id = await desk.post(order)
            action = await desk.until(message_id, "EXECUTED", "FAILED", "REJECTED")
            if action["status"] != "EXECUTED":
                raise RuntimeError(f"order {order.number}: {action}")
            latencies.append(time.perf_counter() - started)

        return run

    await _bounded([journey(o) for o in orders], concurrency)
    return latencies


# --- the stack -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def desk(
    home: Path, direct_url: str, temporal_address: str, extra_orders: int
) -> AsyncIterator[Desk]:
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    api_port, sandbox_port = _free_port(), _free_port()
    api_base, sandbox_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sandbox_port}"
    common = {
        "DESKPILOT_HOME": str(home),
        "DESKPILOT_SECRET_KEY": "bench",
        "DESKPILOT_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "TEMPORAL_ADDRESS": temporal_address,
        "DESKPILOT_API_PORT": str(api_port),
        "DESKPILOT_PUBLIC_URL": api_base,
        "DESKPILOT_SANDBOX_PORT": str(sandbox_port),
        "DESKPILOT_SANDBOX_URL": sandbox_url,
        # The demo store signs its webhooks with this; the API checks them with it.
        "SHOPIFY_API_KEY": DEMO_APP_KEY,
        "SHOPIFY_API_SECRET": secrets.token_hex(16),
        "SHOPIFY_ADMIN_BASE_URL": f"{sandbox_url}/shops/{{shop}}",
    }
    async with running("db-proxy", common | {"DATABASE_URL": direct_url}, logs) as proxy:
        counted = common | {"DATABASE_URL": proxied_url(direct_url, proxy.details["port"])}
        async with (
            running(
                "sandbox",
                common | {"DATABASE_URL": direct_url, EXTRA_ORDERS_ENV: str(extra_orders)},
                logs,
            ) as sandbox,
            running("api", counted, logs) as api,
            running("worker", counted, logs) as worker,
            httpx.AsyncClient(
                base_url=api_base,
                headers={"Authorization": f"Bearer {sandbox.details['api_token']}"},
                timeout=60,
            ) as http,
        ):
            yield Desk(http, sandbox.details, api, worker, proxy, sandbox_url)


def _orders(demo: dict[str, Any]) -> list[Order]:
    return [
        Order(name.lstrip("#"), email, Decimal(amount), status)
        for name, email, amount, status in demo["refundable"]
    ]


# --- the report ------------------------------------------------------------------------------


def _latency(name: str, values: list[float]) -> str:
    return (
        f"{name:30s} p50 {statistics.median(values) * 1000:7.1f} ms   "
        f"p95 {_percentile(values, 0.95) * 1000:7.1f} ms"
    )


def report(run: Run, base_seconds: float) -> list[str]:
    before, after = run.before, run.after
    api = run.per_message(after.api_cpu - before.api_cpu) * 1000
    worker = run.per_message(after.worker_cpu - before.worker_cpu) * 1000
    usage = {k: run.per_message(_delta(after.shopify, before.shopify, k)) for k in after.shopify}
    throttled = _delta(after.shopify, before.shopify, "throttled")
    failed = _delta(after.failures, before.failures, "throttled")
    other = _delta(after.failures, before.failures, "other")
    base_rate, rate = run.count / base_seconds, run.count / run.seconds
    return [
        f"-- concurrency {run.concurrency}, {run.count} messages",
        f"(a) bare Temporal baseline (4 no-op activities + 1 update): {base_rate:7.1f} messages/s",
        f"(b) full pipeline over HTTP (ingest .. approve .. executed): {rate:7.1f} messages/s",
        f"ratio pipeline / baseline: {rate / base_rate:.2f}",
        f"cpu ms per message: api {api:.1f}, worker {worker:.1f}, total {api + worker:.1f}",
        "db per message: "
        f"transactions {run.per_message(_delta(after.db, before.db, 'transactions')):.1f}, "
        f"round trips {run.per_message(_delta(after.db, before.db, 'round_trips')):.1f}",
        "shopify points per message: "
        f"requested {usage['requested_points']:.1f}, actual {usage['actual_points']:.1f}; "
        f"throttled {throttled}; failed attempts {failed}"
        + (f" (and {other} failed for other reasons)" if other else ""),
        *(
            f"  failed: {key.removeprefix('other: ')} x{count}"
            for key in sorted(after.failures)
            if key.startswith("other: ")
            and (count := _delta(after.failures, before.failures, key)) > 0
        ),
        f"a Standard store (100 points/s) sustains at most "
        f"{100 / max(usage['actual_points'], 1):.1f} messages/s at this cost",
        _latency("ingest -> suggestion ready", run.ready),
        _latency("approve -> executed", run.executed),
    ]


async def main(count: int, concurrencies: list[int], playbook_count: int) -> None:
    needed = count * len(concurrencies) + playbook_count
    lines: list[str] = []
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
                address = env.client.service_client.config.target_host
                queue = f"bench-baseline-{uuid.uuid4().hex[:6]}"
                baselines: dict[int, float] = {}
                async with running(
                    "baseline-worker",
                    {"TEMPORAL_ADDRESS": address, BASELINE_QUEUE_ENV: queue},
                    home,
                ):
                    for concurrency in concurrencies:
                        baselines[concurrency] = await baseline(
                            env.client, queue, count, concurrency
                        )
                # The seeded store refunds some orders already; seed enough fresh ones.
                async with desk(home, url, address, extra_orders=needed * 2) as stack:
                    lines.append(
                        f"demo store restores {stack.demo['restore_rate']:.0f} Shopify points/s "
                        "(Plus), so that the store's own limit does not cap the run"
                    )
                    orders = sorted(_orders(stack.demo), key=lambda o: o.refundable)
                    # The playbook refunds paid orders only; the smallest, so that its
                    # limit, the largest of them, leaves the others to a person.
                    paid = [o for o in orders if o.financial_status in PLAYBOOK_STATUSES]
                    automatic = paid[:playbook_count]
                    orders = [o for o in orders if o not in automatic]
                    if len(orders) < count * len(concurrencies) or len(automatic) < playbook_count:
                        raise SystemExit(f"{len(orders)} refundable orders, {needed} needed")
                    for concurrency in concurrencies:
                        batch, orders = orders[-count:], orders[:-count]
                        run = await approved_by_a_person(stack, batch, concurrency)
                        lines += report(run, baselines[concurrency])
                    if playbook_count:
                        batch = automatic
                        await set_damaged_item_playbook(
                            stack.http,
                            refund_limit=max(o.refundable for o in batch),
                            automatic=True,
                        )
                        latencies = await approved_by_a_playbook(stack, batch, concurrencies[0])
                        lines += [
                            f"-- playbook, concurrency {concurrencies[0]}, {len(batch)} messages",
                            _latency("email -> executed by playbook", latencies),
                        ]
            finally:
                await env.shutdown()
        finally:
            postgres.stop()
    print(
        f"baseline polls every {POLL * 1000:.0f} ms; the pipeline's client long-polls; "
        "each role in its own process"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--playbook", type=int, default=40, help="messages approved by a playbook")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.messages, arguments.concurrency, arguments.playbook))
