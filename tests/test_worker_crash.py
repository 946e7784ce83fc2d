"""A worker killed with SIGKILL in the middle of executing approved actions.

The worker is a separate `deskpilot worker` process; the Temporal server, the
database and the sandbox (demo store and mail sink) live on. After a restart,
every approved refund must have happened exactly once in the store, and every
reply must have reached the mail sink.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from kernel.enums import ActionStatus
from models import Action
from sandbox.server import Sandbox, serving
from tests.conftest import TEST_SECRET_KEY
from tests.pipeline import create_merchant, store_message
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    STATE_QUERY,
    TASK_QUEUE,
    ApproveInput,
    DecisionResult,
    MessageState,
    MessageWorkflowInput,
    Stage,
)

MESSAGES = 12
STORE_LATENCY = 1.0  # seconds per refund: the worker dies while the store is still working
STEP_TIMEOUT = timedelta(seconds=10)  # how soon a dead worker's step is handed over


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "deskpilot", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _wait_for(condition: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_killed_worker_executes_every_approved_action_exactly_once(
    temporal_dev: WorkflowEnvironment,
    own_database: str,
    own_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    client = temporal_dev.client
    sandbox = Sandbox()
    async with serving(sandbox) as sandbox_url:
        merchant = await create_merchant(own_sessions, sandbox, sandbox_url)
        refund_requests = 0

        async def slow_refunds(body: dict[str, object]) -> None:
            nonlocal refund_requests
            if "refundCreate" in str(body.get("query")):
                refund_requests += 1
                await asyncio.sleep(STORE_LATENCY)

        sandbox.shopify.before_graphql = slow_refunds
        numbers = [n for n, order in merchant.orders.items() if order["refundable"] > 0][:MESSAGES]
        handles = []
        for number in numbers:
            message_id, _, workflow_id = await store_message(
                own_sessions,
                merchant,
                sender=merchant.orders[number]["email"],
                subject="Broken on arrival",
                text=f"Order #{number} arrived broken. Please refund.",
                started=True,
            )
            handles.append(
                await client.start_workflow(
                    MESSAGE_WORKFLOW,
                    MessageWorkflowInput(
                        user_id=merchant.user_id, message_id=message_id, step_timeout=STEP_TIMEOUT
                    ),
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                    result_type=MessageState,
                )
            )

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DESKPILOT_", "DATABASE_URL", "TEMPORAL_"))
        }
        env.update(
            DATABASE_URL=own_database,
            DESKPILOT_SECRET_KEY=TEST_SECRET_KEY,
            TEMPORAL_ADDRESS=client.service_client.config.target_host,
            DESKPILOT_SANDBOX_URL=sandbox_url,
            DESKPILOT_HOME=str(tmp_path / "home"),
        )
        log = tmp_path / "worker.log"
        worker = _start_worker(env, log)
        try:
            states: list[MessageState] = []

            async def all_waiting() -> bool:
                states[:] = [await h.query(STATE_QUERY, result_type=MessageState) for h in handles]
                return all(s.stage == Stage.AWAITING_DECISION for s in states)

            await _wait_for(all_waiting, 90, "every suggestion")
            await asyncio.gather(
                *(
                    h.execute_update(
                        APPROVE_UPDATE,
                        ApproveInput(action_id=s.action_id),
                        result_type=DecisionResult,
                    )
                    for h, s in zip(handles, states, strict=True)
                )
            )

            async def refunds_in_flight() -> bool:
                return refund_requests >= MESSAGES // 2

            # Killed while the store is executing refunds the worker asked for: their
            # results never reach the worker, which must not refund again after restart.
            await _wait_for(refunds_in_flight, 60, "refund requests")
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            refunded_at_kill = len(merchant.refunds())
            sent_at_kill = len(sandbox.sink.deliveries)
            print(
                f"killed the worker after {refunded_at_kill} refunds and {sent_at_kill} replies of {MESSAGES}"
            )
            assert refunded_at_kill < MESSAGES, "the kill came too late to test anything"

            worker = _start_worker(env, log)
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()

    assert [r.stage for r in results] == [Stage.EXECUTED] * MESSAGES, log.read_text()[-3000:]
    refunds = Counter(entry["order"] for entry in merchant.refunds())
    assert refunds == Counter({f"#{n}": 1 for n in numbers})
    deliveries = Counter(d.message_id for d in sandbox.sink.deliveries)
    print(
        f"after restart: {sum(refunds.values())} refunds for {MESSAGES} approvals, "
        f"{len(deliveries)} distinct replies, {sum(deliveries.values())} deliveries"
    )
    assert len(deliveries) == MESSAGES
    assert all(count == 1 for count in deliveries.values()), deliveries
    async with own_sessions() as session:
        statuses = (await session.execute(select(Action.status))).scalars().all()
    assert statuses == [ActionStatus.EXECUTED] * MESSAGES
