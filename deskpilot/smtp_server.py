"""Serving an aiosmtpd handler inside the running event loop.

aiosmtpd's `Controller` runs its own loop in a thread; our handlers use the async
database engine, which belongs to the loop that created it, so the server runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiosmtpd.smtp import SMTP


@contextlib.asynccontextmanager
async def serve_smtp(
    handler: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    data_size_limit: int | None = None,
    hostname: str | None = None,
) -> AsyncIterator[int]:
    """Serve `handler` until the block exits; yields the bound port (useful with port 0)."""
    loop = asyncio.get_running_loop()
    # Weak: a long-running receiver must not keep every past connection alive.
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory() -> SMTP:
        server = SMTP(
            handler,
            data_size_limit=data_size_limit,
            # gethostname, not aiosmtpd's getfqdn default: no DNS lookup on every connection.
            hostname=hostname or socket.gethostname(),
            # Bytes in, bytes out: the parser decides about charsets, not the transport.
            decode_data=False,
            enable_SMTPUTF8=True,
            loop=loop,
        )
        sessions.add(server)
        return server

    server = await loop.create_server(factory, host, port)
    bound = server.sockets[0].getsockname()[1]
    try:
        yield bound
    finally:
        server.close()
        # A client still connected would keep its session (and its handler task) alive.
        for session in list(sessions):
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()
