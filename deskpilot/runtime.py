"""Where the database is: the configured one, or the embedded one under DESKPILOT_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from deskpilot.embedded_postgres import EmbeddedPostgres
from kernel.settings import Settings

EMBEDDED_DATABASE = "deskpilot"


@contextmanager
def database_url(settings: Settings, *, owner: bool = False) -> Iterator[str]:
    """Yield a URL for the product's database.

    Embedded mode starts PostgreSQL under DESKPILOT_HOME/pgdata and creates the
    database. The owner (`deskpilot up`) stops the server on the way out; any
    other command stops it only if it was the one that started it.
    """
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.resolved_home() / "pgdata")
    try:
        embedded.start()
        yield embedded.ensure_database(EMBEDDED_DATABASE)
    finally:
        embedded.stop(only_if_started_here=not owner)
