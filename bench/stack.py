"""The processes of the pipeline benchmark, one role each, as production runs them apart:

    python -m bench.stack sandbox          the demo store and mail sink; bootstraps the demo
    python -m bench.stack api              the FastAPI app (uvicorn)
    python -m bench.stack worker           the Temporal worker, counting failed attempts
    python -m bench.stack baseline-worker  the baseline's no-op worker
    python -m bench.stack db-proxy         the counting proxy in front of PostgreSQL

Each reads `Settings` from the environment the benchmark gives it, prints one JSON line
on stdout once it is ready (its stats port, the demo's details), and runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    Worker,
)

from bench.baseline_workflow import BaselineWorkflow, noop
from bench.db_proxy import counting_proxy, serving_stats, upstream_for
from kernel.settings import Settings

EXTRA_ORDERS_ENV = "BENCH_EXTRA_ORDERS"
BASELINE_QUEUE_ENV = "BENCH_BASELINE_QUEUE"


def ready(**details: Any) -> None:
    print(json.dumps(details), flush=True)


async def forever() -> None:
    await asyncio.Event().wait()


async def _client(settings: Settings) -> Client:
    assert settings.temporal_address, "TEMPORAL_ADDRESS is not set"
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


class FailedAttempts(Interceptor):
    """Counts activity attempts that raised, by whether they gave up on a throttled store."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Counting(next, self.failures)


class _Counting(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, failures: Counter[str]) -> None:
        super().__init__(next)
        self._failures = failures

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            throttled = "throttl" in str(exc).lower()
            self._failures["throttled" if throttled else "other"] += 1
            if not throttled:  # said in the report, so a failure is not a mystery
                first_line = (str(exc).splitlines() or [""])[0][:120]
                why = f"{activity.info().activity_type}: {type(exc).__name__}: {first_line}"
                self._failures[f"other: {why}"] += 1
            raise


async def worker_role(settings: Settings) -> None:
    from models.db import create_engine, session_factory
    from worker import build_worker, worker_dependencies

    assert settings.database_url and settings.secret_key
    engine = create_engine(
        settings.database_url, secret_key=settings.secret_key.get_secret_value(), pool_size=20
    )
    counting = FailedAttempts()
    client = await _client(settings)
    async with worker_dependencies(settings, session_factory(engine)) as deps:
        worker = build_worker(client, deps, interceptors=[counting])
        async with worker, serving_stats(lambda: dict(counting.failures)) as port:
            ready(stats_port=port)
            await forever()
    await engine.dispose()


async def baseline_worker_role(settings: Settings, queue: str) -> None:
    client = await _client(settings)
    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow], activities=[noop]):
        ready()
        await forever()


async def api_role(settings: Settings) -> None:
    from api.app import create_app
    from deskpilot.processes import http_server
    from models.db import create_engine

    assert settings.database_url and settings.secret_key
    engine = create_engine(
        settings.database_url, secret_key=settings.secret_key.get_secret_value(), pool_size=20
    )
    client = await _client(settings)
    app = create_app(engine, client, settings)
    async with http_server(app, settings.api_host, settings.api_port):
        ready()
        await forever()
    await engine.dispose()


async def sandbox_role(settings: Settings, extra_orders: int) -> None:
    from bench.demo_orders import (
        more_demo_orders,
        on_a_large_plan,
        on_shopify_plus,
        refundable_orders,
    )
    from deskpilot.demo import bootstrap_demo
    from models.db import create_engine, session_factory
    from sandbox.server import Sandbox, serving

    assert settings.database_url and settings.secret_key and settings.sandbox_url
    engine = create_engine(settings.database_url, secret_key=settings.secret_key.get_secret_value())
    sessions = session_factory(engine)
    sandbox = Sandbox()
    async with serving(sandbox, "127.0.0.1", settings.sandbox_port) as url:
        demo = await bootstrap_demo(
            sessions, settings, sandbox, url, api_base=settings.public_url, temporal_ui=None
        )
        await more_demo_orders(sessions, sandbox, extra_orders)
        await on_a_large_plan(sessions, demo.user_id)
        await engine.dispose()
        ready(
            **demo.public(),
            refundable=refundable_orders(sandbox),
            restore_rate=on_shopify_plus(sandbox),
        )
        await forever()


async def db_proxy_role(settings: Settings) -> None:
    assert settings.database_url, "DATABASE_URL (the server to count) is not set"
    async with (
        counting_proxy(upstream_for(settings.database_url)) as (port, tally),
        serving_stats(lambda: vars(tally)) as stats_port,
    ):
        ready(port=port, stats_port=stats_port)
        await forever()


def main(role: str) -> None:
    from deskpilot.processes import run_until_signalled
    from kernel.logs import configure_logging

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    configure_logging(settings.log_level)
    roles = {
        "worker": lambda: worker_role(settings),
        "baseline-worker": lambda: baseline_worker_role(settings, os.environ[BASELINE_QUEUE_ENV]),
        "api": lambda: api_role(settings),
        "sandbox": lambda: sandbox_role(settings, int(os.environ.get(EXTRA_ORDERS_ENV, "0"))),
        "db-proxy": lambda: db_proxy_role(settings),
    }
    if role not in roles:
        raise SystemExit(f"unknown role {role!r}: one of {', '.join(roles)}")

    async def run() -> None:
        await run_until_signalled(roles[role]())

    asyncio.run(run())
    # Stopped cleanly; skip the interpreter's finalisation, where the Temporal SDK's
    # threads can still be releasing the GIL and abort the process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
