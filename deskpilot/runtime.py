"""Where the database is: the configured one, or the embedded one under DESKPILOT_HOME."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from deskpilot.embedded_postgres import EmbeddedPostgres
from kernel.settings import Settings

EMBEDDED_DATABASE = "deskpilot"


@contextmanager
def database_url(
    settings: Settings, *, owner: bool = False, meanwhile: Callable[[], None] | None = None
) -> Iterator[str]:
    """Yield a URL for the product's database.

    Embedded mode starts PostgreSQL under DESKPILOT_HOME/pgdata and creates the
    database. The owner (`deskpilot up`) stops the server on the way out; any
    other command stops it only if it was the one that started it. `meanwhile` runs
    while the server starts (it waits on the server's processes, not on this one).
    """
    if settings.database_url:
        if meanwhile is not None:
            meanwhile()
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.resolved_home() / "pgdata")
    started: list[str] = []
    failed: list[BaseException] = []

    def start() -> None:
        try:
            embedded.start()
            started.append(embedded.ensure_database(EMBEDDED_DATABASE))
        except BaseException as exc:
            failed.append(exc)

    starting = threading.Thread(target=start, name="postgres-start")
    starting.start()
    try:
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            starting.join()
        if failed:
            raise failed[0]
        yield started[0]
    finally:
        embedded.stop(only_if_started_here=not owner)
