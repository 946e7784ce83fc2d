"""`deskpilot up` runs the Temporal worker as a child process and keeps it running.

The child, `python -m deskpilot.worker_child`, imports the workflows while `up` starts
the database and Temporal, then reads its settings as one JSON line on stdin, so
secrets touch neither the disk nor the environment. It prints `ready` on stdout
once it polls. It runs in a session of its own: a terminal's Ctrl-C reaches `up`
alone, which stops the API first and the worker after it. The child also stops
when its stdin closes, that is when `up` is gone, even killed with SIGKILL.

A worker that exits while `up` runs is started again, after 1 s and then longer
waits while it keeps failing; the API and the SMTP receiver stay up meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO

from pydantic import SecretStr

from deskpilot.processes import ServiceError
from deskpilot.worker_spawn import WorkerChild, spawn_worker, worker_command
from kernel.settings import Settings

log = logging.getLogger(__name__)

READY = "ready"
READY_TIMEOUT_SECONDS = 60.0
# The worker waits up to 10 s for running activities (build_worker's graceful shutdown).
STOP_TIMEOUT_SECONDS = 20.0
RESTART_DELAYS_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A worker that ran this long before exiting starts the backoff from the beginning.
STEADY_SECONDS = 60.0


def settings_payload(settings: Settings) -> dict[str, object]:
    """Every setting under the variable name it is read from, secrets in clear."""
    payload: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value)
        payload[str(field.validation_alias)] = value
    return payload


def settings_from_payload(payload: dict[str, object]) -> Settings:
    # model_validate reads neither the environment nor .env: the parent's view is the one.
    return Settings.model_validate(payload)


def read_settings(stream: IO[str]) -> Settings | None:
    """The settings line a supervising `up` sends; None when it closed stdin first."""
    line = stream.readline()
    if not line.strip():
        return None
    return settings_from_payload(json.loads(line))


def stop_when_closed(stream: IO[str]) -> None:
    """SIGTERM this process when `stream` reaches end of file: the supervisor is gone."""

    def watch() -> None:
        while stream.readline():
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def announce_ready() -> None:
    print(READY, flush=True)


class WorkerSupervisor:
    """Starts the worker child, restarts it when it exits, stops it on request.

    The child is a plain subprocess (spawned, maybe, before there was an event loop);
    its pipes are read in threads."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        ready_within: float = READY_TIMEOUT_SECONDS,
        stop_within: float = STOP_TIMEOUT_SECONDS,
    ) -> None:
        self.command = list(command or worker_command())
        self.ready_within = ready_within
        self.stop_within = stop_within
        self.restarts = 0
        self._process: WorkerChild | None = None
        self._payload: bytes | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def task(self) -> asyncio.Task[None]:
        """Runs while the worker is supervised; ends with the error if it never got ready."""
        if self._task is None:
            raise RuntimeError("the worker was not started")
        return self._task

    def spawn(self, prestarted: WorkerChild | None = None) -> None:
        """Start (or adopt) a child that loads its code and waits for its settings."""
        self._process = prestarted or spawn_worker(self.command)

    def start(self, settings: Settings) -> None:
        """Hand the (spawned, or else new) child its settings and keep it running."""
        self._payload = json.dumps(settings_payload(settings)).encode() + b"\n"
        self._task = asyncio.create_task(self._supervise(), name="worker")

    async def ready(self) -> None:
        """Wait until the first worker polls; raises what stopped it first."""
        waiting = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({waiting, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if self.task.done():
            self.task.result()
            raise ServiceError("the worker stopped before it was ready")

    async def _supervise(self) -> None:
        if self._process is None:
            self.spawn()
        await self._configure()
        self._ready.set()
        failures = 0
        while True:
            began = time.monotonic()
            process = self._require()
            code = await asyncio.to_thread(_drain_and_wait, process)
            failures = 1 if time.monotonic() - began >= STEADY_SECONDS else failures + 1
            delay = RESTART_DELAYS_SECONDS[min(failures, len(RESTART_DELAYS_SECONDS)) - 1]
            log.error(
                "worker exited; starting it again",
                extra={"pid": process.pid, "code": code, "in_seconds": delay},
            )
            await asyncio.sleep(delay)
            try:
                self.spawn()
                await self._configure()
            except (ServiceError, OSError) as exc:
                log.error("worker did not start again", extra={"error": str(exc)})
                continue
            self.restarts += 1

    async def _configure(self) -> None:
        process = self._require()
        assert process.stdin is not None and process.stdout is not None
        assert self._payload is not None
        try:
            process.stdin.write(self._payload)
            process.stdin.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it already exited; the wait below reports how
        try:
            async with asyncio.timeout(self.ready_within):
                while True:
                    line = await asyncio.to_thread(process.stdout.readline)
                    if not line:
                        code = await asyncio.to_thread(process.wait)
                        raise ServiceError(f"the worker exited with {code} before it was ready")
                    if line.decode().strip() == READY:
                        break
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)
            raise ServiceError(
                f"the worker was not ready after {self.ready_within:.0f} s"
            ) from None
        log.info("worker running", extra={"pid": process.pid})

    async def stop(self) -> None:
        """Stop supervising, then SIGTERM the child and wait; SIGKILL it past `stop_within`."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
            if not self._task.cancelled():
                self._task.exception()  # reported already, through `task` or `ready()`
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), self.stop_within)
        except TimeoutError:
            log.warning("worker did not stop in time; killing it", extra={"pid": process.pid})
            process.kill()
            await asyncio.to_thread(process.wait)
        if process.stdin is not None:
            process.stdin.close()

    def _require(self) -> WorkerChild:
        if self._process is None:
            raise RuntimeError("the worker was not spawned")
        return self._process


def _drain_and_wait(process: WorkerChild) -> int:
    """Block until the child exits; its stdout carries nothing after `ready`."""
    assert process.stdout is not None
    while process.stdout.readline():
        pass
    return process.wait()


@contextlib.asynccontextmanager
async def worker_process(
    supervisor: WorkerSupervisor, settings: Settings
) -> AsyncIterator[asyncio.Task[None]]:
    """Supervise the worker until the block exits; yields the supervising task at once
    (await `supervisor.ready()` for the first worker to poll)."""
    supervisor.start(settings)
    try:
        yield supervisor.task
    finally:
        await supervisor.stop()
