"""The worker process that `deskpilot up` supervises (see deskpilot/worker_process.py).

Run as `python -m deskpilot.worker_child`. It loads the worker and nothing of the CLI
or the API, then waits for its settings on stdin, so it is ready as soon as the
database and Temporal are.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from types import FrameType

# Loaded before the settings arrive, while `up` starts the database and Temporal.
import worker  # noqa: F401
from deskpilot.processes import run_until_signalled, run_worker
from deskpilot.runtime import database_url
from deskpilot.worker_process import announce_ready, read_settings, stop_when_closed
from kernel.logs import configure_logging


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    configure_logging(os.environ.get("DESKPILOT_LOG_LEVEL", "INFO"))
    settings = read_settings(sys.stdin)
    if settings is None:
        return  # `up` stopped before it needed a worker
    configure_logging(settings.log_level)
    # SIGTERM from `up`, or from the watcher below once `up` is gone, stops it in order.
    signal.signal(signal.SIGTERM, _interrupt)
    stop_when_closed(sys.stdin)
    secret_key = settings.resolve_secret_key()
    try:
        with database_url(settings) as url:
            asyncio.run(
                run_until_signalled(run_worker(url, secret_key, settings, on_ready=announce_ready))
            )
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
