"""The long-running pieces that `deskpilot up`, `worker` and `api` assemble in one event loop.

Each is an async context manager that starts its service and stops it
gracefully on exit. SIGINT and SIGTERM cancel the main task once, so an
AsyncExitStack unwinds everything in reverse order of start: API, worker,
sandbox, Temporal, database engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from deskpilot.temporal_client import connect_temporal
from kernel.settings import Settings

if TYPE_CHECKING:
    from worker import WorkerDependencies

log = logging.getLogger(__name__)

RECONCILE_EVERY_SECONDS = 300.0
SCHEDULE_RETRY_SECONDS = 30.0


class ServiceError(RuntimeError):
    """A service could not start, or ended on its own while deskpilot meant to keep running."""


async def run_until_signalled(main: Awaitable[None]) -> None:
    """Await `main`; SIGINT/SIGTERM cancel it so its context managers stop what they started.

    A second signal does not interrupt the shutdown already under way:
    half-stopped servers are what orphans are made of.
    """
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("run_until_signalled must run inside a task")
    loop = asyncio.get_running_loop()
    received: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if received:
            log.warning("already stopping", extra={"signal": signum.name})
            return
        received.append(signum)
        log.info("stopping", extra={"signal": signum.name})
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await main
    except asyncio.CancelledError:
        if not received:
            raise
        task.uncancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def first_to_stop(*tasks: asyncio.Task[None]) -> None:
    """Wait while every service runs; a service that ends on its own ends deskpilot."""
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()  # re-raises the service's error
    raise ServiceError(f"{', '.join(t.get_name() for t in done)} stopped unexpectedly")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: `run_until_signalled` stops services in order.

    (uvicorn's handlers would start shutting this server down on the first signal,
    while the worker may still be calling it.)
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def http_server(
    app: FastAPI, host: str, port: int, *, name: str = "api"
) -> AsyncIterator[asyncio.Task[None]]:
    """Serve `app` until the block exits; yields the serving task once it accepts connections."""
    server = _Server(uvicorn.Config(app, host=host, port=port, log_config=None))
    task = asyncio.create_task(server.serve(), name=name)
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ServiceError(f"the {name} did not start on {host}:{port}")
            await asyncio.sleep(0.02)
        yield task
    finally:
        server.should_exit = True
        await _settle(task)


@contextlib.asynccontextmanager
async def temporal_worker(
    client: Client, deps: WorkerDependencies
) -> AsyncIterator[asyncio.Task[None]]:
    """Run the message worker until the block exits; yields its task. Every start also
    creates (or updates) the billing calendar's Schedule, so `up` and `worker` both do."""
    from worker import build_worker

    worker = build_worker(client, deps)
    task = asyncio.create_task(worker.run(), name="worker")
    # Beside the worker, not before it: a slow or failing Temporal call must not keep
    # messages waiting, and it is tried again until it succeeds.
    schedule = asyncio.create_task(billing_schedule(client, deps.settings), name="schedule")
    try:
        yield task
    finally:
        schedule.cancel()
        await _settle(schedule)
        if not task.done():
            await worker.shutdown()
        await _settle(task)


async def billing_schedule(
    client: Client, settings: Settings, retry_every: float = SCHEDULE_RETRY_SECONDS
) -> None:
    """Create or update the billing calendar's Schedule, retrying while Temporal refuses."""
    from services.billing_schedule import calendar_interval, ensure_billing_schedule

    every = calendar_interval(settings)
    while True:
        try:
            await ensure_billing_schedule(client, every=every)
        except Exception as exc:
            log.warning("billing calendar schedule not set yet", extra={"error": str(exc)})
            await asyncio.sleep(retry_every)
        else:
            log.info("billing calendar schedule set", extra={"every": str(every)})
            return


@contextlib.asynccontextmanager
async def reconciler(
    sessions: async_sessionmaker[AsyncSession],
    client: Client,
    settings: Settings,
    every: float = RECONCILE_EVERY_SECONDS,
) -> AsyncIterator[None]:
    """Start workflows for stored messages, Shopify and billing webhooks that lack one, and
    keep a sync running for every enabled Gmail mailbox: now, then every `every` seconds."""
    from services.billing_webhooks import reconcile_unprocessed_billing_events
    from services.mailbox_workflows import reconcile_mailboxes
    from services.message_workflows import reconcile_unstarted
    from services.shopify_webhook_workflows import reconcile_unprocessed_webhooks

    async def loop() -> None:
        while True:
            try:
                started = await reconcile_unstarted(sessions, client, settings)
                webhooks = await reconcile_unprocessed_webhooks(sessions, client)
                webhooks += await reconcile_unprocessed_billing_events(sessions, client)
                await reconcile_mailboxes(sessions, client, settings)
                if started or webhooks:
                    log.info(
                        "reconciler started workflows",
                        extra={"messages": started, "webhooks": webhooks},
                    )
            except Exception:
                # Temporal or the database may be briefly away; the next round catches up.
                log.exception("reconciling unstarted work failed")
            await asyncio.sleep(every)

    task = asyncio.create_task(loop(), name="reconciler")
    try:
        yield
    finally:
        task.cancel()
        await _settle(task)


async def connect_with_retry(address: str, namespace: str, patience: float = 60) -> Client:
    """Connect to an external Temporal, waiting up to `patience` seconds while it starts."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return await connect_temporal(address, namespace)
        except RuntimeError as exc:
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"cannot reach Temporal at {address} (namespace {namespace}) after "
                    f"{patience:.0f} s: {exc}. Check TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE."
                ) from exc
            log.warning("waiting for Temporal", extra={"address": address, "error": str(exc)})
            await asyncio.sleep(2)


async def _settle(task: asyncio.Task[None]) -> None:
    """Wait for a stopping service; its failure was already reported by `first_to_stop`."""
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it a second time


def temporal_address(settings: Settings) -> str:
    return settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"


async def run_worker(
    url: str, secret_key: str, settings: Settings, on_ready: Callable[[], None] | None = None
) -> None:
    """The worker and its reconciler until a signal; `on_ready` once it polls."""
    from models.db import create_engine, session_factory
    from worker import worker_dependencies

    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(url, secret_key=secret_key)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        address = temporal_address(settings)
        client = await connect_with_retry(address, settings.temporal_namespace)
        deps = await stack.enter_async_context(worker_dependencies(settings, sessions))
        worker_task = await stack.enter_async_context(temporal_worker(client, deps))
        await stack.enter_async_context(reconciler(sessions, client, settings))
        log.info(
            "worker running",
            extra={"temporal": address, "namespace": settings.temporal_namespace},
        )
        if on_ready is not None:
            on_ready()
        await first_to_stop(worker_task)
