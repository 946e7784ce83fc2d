"""Starting `bench.stack` roles as processes, and reading what they cost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

READY_SECONDS = 120
STOP_SECONDS = 30
# Only what a role needs from this environment; the rest of its settings the bench gives.
_REPOSITORY = Path(__file__).resolve().parent.parent
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


@dataclass
class Role:
    name: str
    process: asyncio.subprocess.Process
    details: dict[str, Any]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used so far."""
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system


@contextlib.asynccontextmanager
async def running(name: str, env: Mapping[str, str], logs: Path) -> AsyncIterator[Role]:
    """Start `python -m bench.stack NAME`, wait for its ready line, stop it (SIGTERM) after."""
    log = logs / f"{name}.log"
    environment = {k: os.environ[k] for k in _INHERITED if k in os.environ} | dict(env)
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.stack",
            name,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            cwd=_REPOSITORY,
        )
    try:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), READY_SECONDS)
        except TimeoutError:
            line = b""
        if not line:
            raise RuntimeError(f"bench role {name} did not start:\n{log.read_text()[-3000:]}")
        yield Role(name, process, json.loads(line), log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
