"""A counting TCP proxy in front of PostgreSQL, for the pipeline benchmark.

The benchmark's API and worker reach the database through it, so what they cost the
database is counted on the wire, whatever library issues it:

- round trips: each time a client speaks again after the server has answered (several
  messages sent together before an answer are one round trip);
- transactions: read from the server's ReadyForQuery status byte, as PostgreSQL counts
  them: a block that went idle → in transaction → idle, or one statement run while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Upstream = Callable[[], Awaitable[Streams]]

# The special first messages a client may send before its StartupMessage; the server
# answers each with one unframed byte ('S'/'N', 'G'/'N').
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CHUNK = 65536


@dataclass
class Tally:
    connections: int = 0
    round_trips: int = 0
    transactions: int = 0


class ServerStream:
    """Reads the server's side of one connection: type byte, int32 length, body."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._buffer = bytearray()
        self.unframed_bytes = 0  # answers to SSLRequest/GSSENCRequest still to skip
        self._status = b"I"
        self._completed = False  # a command completed (or failed) since the last ReadyForQuery
        self._ready_once = False  # the first ReadyForQuery ends the start-up, not a transaction

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self.unframed_bytes and self._buffer:
            del self._buffer[0]
            self.unframed_bytes -= 1
        while len(self._buffer) >= 5:
            kind = self._buffer[0:1]
            (length,) = struct.unpack("!I", self._buffer[1:5])
            if len(self._buffer) < 1 + length:
                return
            body = bytes(self._buffer[5 : 1 + length])
            del self._buffer[: 1 + length]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind in (b"C", b"E"):  # CommandComplete, ErrorResponse
            self._completed = True
        elif kind == b"Z":  # ReadyForQuery
            status = body[:1]
            ended = self._status in (b"T", b"E") or self._completed
            if self._ready_once and status == b"I" and ended:
                self._tally.transactions += 1
            self._ready_once = True
            self._status = status
            self._completed = False


def special_requests(first: bytes) -> int:
    """How many SSL/GSSENC requests open the client's side (each is 8 bytes)."""
    count = 0
    while len(first) >= 8 * (count + 1):
        length, code = struct.unpack("!II", first[8 * count : 8 * count + 8])
        if length != 8 or code not in (_SSL_REQUEST, _GSSENC_REQUEST):
            break
        count += 1
    return count


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[bytes], None],
) -> None:
    try:
        while data := await reader.read(_CHUNK):
            on_data(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def upstream_for(url: str) -> Upstream:
    """How to reach the server of a postgresql:// URL: its Unix socket (`?host=DIR`, as the
    embedded server's URI has it) or its TCP address."""
    parsed = make_url(url)
    directory = parsed.query.get("host")
    if isinstance(directory, str) and directory.startswith("/"):
        path = str(Path(directory) / f".s.PGSQL.{parsed.port or 5432}")
        return lambda: asyncio.open_unix_connection(path)
    host, port = parsed.host or "127.0.0.1", parsed.port or 5432
    return lambda: asyncio.open_connection(host, port)


def proxied_url(url: str, port: int) -> str:
    """`url` with its server replaced by the proxy on 127.0.0.1:`port`."""
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k != "host"}
    return parsed.set(host="127.0.0.1", port=port, query=query).render_as_string(
        hide_password=False
    )


@contextlib.asynccontextmanager
async def counting_proxy(
    upstream: Upstream, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[tuple[int, Tally]]:
    """Listen on (host, port) and forward every connection to `upstream()`; yields the port
    and the live tally."""
    tally = Tally()

    async def handle(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await upstream()
        tally.connections += 1
        server = ServerStream(tally)
        state = {"answered": True, "first": True}

        def from_client(data: bytes) -> None:
            if state["first"]:
                server.unframed_bytes = special_requests(data)
                state["first"] = False
            if state["answered"]:
                tally.round_trips += 1
                state["answered"] = False

        def from_server(data: bytes) -> None:
            state["answered"] = True
            server.feed(data)

        await asyncio.gather(
            _pump(client_reader, server_writer, from_client),
            _pump(server_reader, client_writer, from_server),
        )

    listener = await asyncio.start_server(handle, host, port)
    try:
        yield listener.sockets[0].getsockname()[1], tally
    finally:
        listener.close()


@contextlib.asynccontextmanager
async def serving_stats(
    read: Callable[[], dict[str, Any]], host: str = "127.0.0.1"
) -> AsyncIterator[int]:
    """A one-line JSON answer to every connection: how a benchmark reads a process's counters."""

    async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(json.dumps(read()).encode() + b"\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, host, 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()


async def read_stats(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return json.loads(await reader.readline())
    finally:
        writer.close()
