"""Ping a pooled connection before use only when it has sat idle a while.

SQLAlchemy's `pool_pre_ping` pings on every checkout: one round trip per transaction,
about a fifth of all round trips on the message path. A connection that was in use a
moment ago is almost surely alive; one that sat idle may have been closed by a database
restart or an idle timeout. So only those are pinged, and a failed ping replaces every
pooled connection, as pre-ping does. A connection that dies within the idle window fails
its one statement; the error invalidates the pool, and the caller's retry gets a new one.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_KEY = "deskpilot_idle_since"


def ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Install checkout/checkin listeners on `engine`'s pool that ping after `idle_s`."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "connect")
    def _fresh(dbapi_connection: Any, record: Any) -> None:
        record.info[IDLE_KEY] = time.monotonic()  # just opened: nothing to check

    @event.listens_for(pool, "checkin")
    def _idle(dbapi_connection: Any, record: Any) -> None:
        record.info[IDLE_KEY] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(IDLE_KEY)
        if since is not None and time.monotonic() - since < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # Every connection opened before now may be as dead: the pool replaces them.
            raise exc.InvalidatePoolError(f"idle connection failed its ping: {error}") from error
