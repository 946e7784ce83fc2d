"""Waiting for a message to change: one LISTEN connection per process, many waiters.

Migration 0016 makes every write to a message, its suggestion, its action or its playbook
execution NOTIFY `message_changed` with the message's id when it commits. A waiter
registers before it reads, so a change that commits during its read still wakes it.

While the connection is down (the database restarted), waiters are woken at once and then
re-read at a fallback interval: slower, never wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

CHANNEL = "message_changed"
RECONNECT_S = 1.0

logger = logging.getLogger(__name__)


class MessageChanges:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._connection: AsyncConnection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listening = False

    async def start(self) -> None:
        """Listen in the background; returns once listening (or after a first failure)."""
        if self._task is None:
            first = asyncio.Event()
            self._task = asyncio.create_task(self._run(first), name="message-changes")
            await first.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()
        self._wake_all()

    @contextlib.contextmanager
    def watching(self, message_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An Event set whenever the message may have changed, for the block's duration."""
        key, changed = str(message_id), asyncio.Event()
        self._waiters[key].add(changed)
        try:
            yield changed
        finally:
            waiters = self._waiters[key]
            waiters.discard(changed)
            if not waiters:
                del self._waiters[key]

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        for changed in self._waiters.get(payload, ()):
            changed.set()

    def _terminated(self, _connection: Any) -> None:
        self._lost.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for changed in waiters:
                changed.set()

    async def _listen(self) -> None:
        self._lost.clear()
        connection = self._connection = await self._engine.connect()
        # The driver's own connection: LISTEN outside any SQLAlchemy transaction, since a
        # connection inside one receives nothing until it ends.
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        driver.add_termination_listener(self._terminated)
        await driver.add_listener(CHANNEL, self._notified)

    async def _close(self) -> None:
        self.listening = False
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()  # a LISTENing connection goes back to nobody
                await connection.close()

    async def _run(self, first: asyncio.Event) -> None:
        while True:
            try:
                await self._listen()
                self.listening = True
                first.set()
                await self._lost.wait()
                logger.warning("message change notices: connection lost; reconnecting")
            except Exception as exc:  # the database is down: keep trying, waiters fall back
                logger.warning("message change notices unavailable: %s", exc)
            finally:
                first.set()
            await self._close()
            self._wake_all()  # whatever they missed, they re-read now
            await asyncio.sleep(RECONNECT_S)
