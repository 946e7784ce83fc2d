"""Starting the worker child of `deskpilot up`, light enough to run before anything loads.

`deskpilot up` spawns its worker (deskpilot/worker_child.py) first thing, before the
CLI, the API and the sandbox are even imported, so the two processes load their code
side by side; deskpilot/worker_process.py then supervises the child it finds here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

WorkerChild = subprocess.Popen[bytes]

_prestarted: list[WorkerChild] = []


def worker_command() -> list[str]:
    return [sys.executable, "-m", "deskpilot.worker_child"]


def spawn_worker(command: Sequence[str] | None = None) -> WorkerChild:
    """A child that loads the worker, then waits for its settings on stdin. In a
    session of its own: a terminal's Ctrl-C reaches `up` alone, which stops it in order."""
    return subprocess.Popen(
        list(command or worker_command()),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )


def prestart_for(arguments: Sequence[str]) -> None:
    """Spawn the worker now when these command-line arguments will run `up`."""
    if list(arguments[:1]) == ["up"] and not {"--help", "-h"} & set(arguments):
        _prestarted.append(spawn_worker())


def take_prestarted() -> WorkerChild | None:
    return _prestarted.pop() if _prestarted else None
