"""`deskpilot up` runs the worker as a child process, restarts it, and stops it in order.

The supervisor's own cases run small stand-in children (real processes that speak the
same stdin/stdout protocol); the `up` cases run the real stack.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from deskpilot.processes import ServiceError
from deskpilot.worker_process import (
    WorkerSupervisor,
    settings_from_payload,
    settings_payload,
)
from kernel.settings import Settings
from tests.process_support import wait_until_ready
from tests.test_cli import _env, _postgres_processes, _temporal_processes, _up_ports
from workflows.contracts import TASK_QUEUE

WAIT_S = 60


def _child(body: str) -> list[str]:
    """A stand-in worker: reads its settings line, then runs `body`."""
    script = "import sys, time, signal\nsys.stdin.readline()\n" + textwrap.dedent(body)
    return [sys.executable, "-c", script]


async def _until(probe: object, what: str, seconds: float = WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_settings_reach_the_child_as_the_parent_sees_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the child's own environment says must not win over what `up` decided.
    monkeypatch.setenv("SMTP_USERNAME", "from-the-environment")
    monkeypatch.setenv("DESKPILOT_API_PORT", "1")
    settings = Settings().model_copy(
        update={
            "smtp_username": None,
            "api_port": 8123,
            "secret_key": SecretStr("k" * 48),
            "home": Path("/tmp/somewhere"),
            "database_url": "postgresql://u@h/db",
        }
    )
    again = settings_from_payload(settings_payload(settings))
    assert again == settings
    assert again.smtp_username is None and again.api_port == 8123
    assert again.secret_key is not None and again.secret_key.get_secret_value() == "k" * 48


async def test_a_worker_that_exits_is_started_again() -> None:
    supervisor = WorkerSupervisor(_child("print('ready', flush=True)\ntime.sleep(0.3)\n"))
    supervisor.spawn()
    first = supervisor.pid
    supervisor.start(Settings())
    try:
        await supervisor.ready()
        await _until(lambda: supervisor.restarts >= 1, "a restart")
        assert supervisor.pid != first
        assert not supervisor.task.done()
    finally:
        await supervisor.stop()


async def test_a_worker_that_dies_before_it_is_ready_fails_the_start() -> None:
    supervisor = WorkerSupervisor(_child("sys.exit(2)\n"))
    supervisor.start(Settings())
    try:
        with pytest.raises(ServiceError, match="exited with 2 before it was ready"):
            await supervisor.ready()
    finally:
        await supervisor.stop()


async def test_a_worker_that_never_gets_ready_is_killed() -> None:
    supervisor = WorkerSupervisor(_child("time.sleep(60)\n"), ready_within=0.5)
    supervisor.start(Settings())
    try:
        with pytest.raises(ServiceError, match="not ready after"):
            await supervisor.ready()
        assert supervisor.pid is not None and not psutil.pid_exists(supervisor.pid)
    finally:
        await supervisor.stop()


async def test_stop_kills_a_worker_that_ignores_sigterm() -> None:
    body = """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print('ready', flush=True)
    time.sleep(60)
    """
    supervisor = WorkerSupervisor(_child(body), stop_within=0.5)
    supervisor.start(Settings())
    await supervisor.ready()
    pid = supervisor.pid
    await supervisor.stop()
    assert pid is not None and not psutil.pid_exists(pid)


# --- the real stack ----------------------------------------------------------------------


@dataclass
class Up:
    process: subprocess.Popen[str]
    base: str
    home: Path
    temporal: str

    def worker(self) -> psutil.Process | None:
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return None
        for child in children:
            try:
                if (
                    "deskpilot.worker_child" in child.cmdline()
                    and child.status() != psutil.STATUS_ZOMBIE
                ):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    ports = _up_ports()
    temporal_port = ports[ports.index("--temporal-port") + 1]
    process = subprocess.Popen(
        [sys.executable, "-m", "deskpilot", "up", *ports],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    home = tmp_path / ".deskpilot"
    running = Up(process, f"http://127.0.0.1:{ports[1]}", home, f"127.0.0.1:{temporal_port}")
    worker_pids: set[int] = set()
    try:
        wait_until_ready(process, running.base, 90)
        yield running
    finally:
        if (child := running.worker()) is not None:
            worker_pids.add(child.pid)
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in worker_pids:
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
        for leftover in _postgres_processes(home / "pgdata") + _temporal_processes(home):
            leftover.kill()


async def _polling_pids(address: str) -> set[int]:
    client = await Client.connect(address)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name=TASK_QUEUE),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        )
    )
    return {int(p.identity.split("@", 1)[0]) for p in described.pollers}


async def test_up_restarts_a_killed_worker_while_the_api_stays_up(up: Up) -> None:
    worker = up.worker()
    assert worker is not None, "deskpilot up should run its worker as a child process"
    assert worker.pid != up.process.pid
    assert worker.pid in await _polling_pids(up.temporal)

    worker.kill()
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + WAIT_S
        while True:
            # The API answers throughout.
            assert (await http.get(f"{up.base}/readyz")).status_code == 200
            again = up.worker()
            restarted = again is not None and again.pid != worker.pid
            if restarted and again.pid in await _polling_pids(up.temporal):
                break
            assert time.monotonic() < deadline, "the worker was not started again"
            await asyncio.sleep(0.2)
    assert up.process.poll() is None


def test_up_stops_its_worker_before_the_rest_on_ctrl_c(up: Up) -> None:
    worker = up.worker()
    assert worker is not None
    up.process.send_signal(signal.SIGINT)
    output, _ = up.process.communicate(timeout=60)
    assert up.process.returncode == 0, output
    assert not psutil.pid_exists(worker.pid) or worker.status() == psutil.STATUS_ZOMBIE
    # In order: the API, then the worker, then Temporal.
    api_stopped = output.index("Finished server process")
    worker_stopped = output.index("Beginning worker shutdown")
    temporal_stopped = output.index("temporal dev server stopped")
    assert api_stopped < worker_stopped < temporal_stopped, output


def test_a_worker_whose_up_was_killed_stops_by_itself(up: Up) -> None:
    worker = up.worker()
    assert worker is not None
    up.process.kill()
    up.process.wait()
    # Its stdin closed with `up`: it shuts down on its own rather than lingering.
    _, alive = psutil.wait_procs([worker], timeout=WAIT_S)
    assert alive == [], "the worker outlived a killed deskpilot up"
