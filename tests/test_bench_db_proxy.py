"""The pipeline benchmark's counting proxy counts what PostgreSQL is asked, on a real server."""

from __future__ import annotations

import struct

import asyncpg
from sqlalchemy.engine import make_url

from bench.db_proxy import (
    ServerStream,
    Tally,
    counting_proxy,
    proxied_url,
    special_requests,
    upstream_for,
)


def _frame(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", 4 + len(body)) + body


async def _connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        user=parsed.username, host=parsed.host, port=parsed.port, database=parsed.database
    )


async def test_round_trips_and_transactions_are_counted_as_postgres_sees_them(
    empty_database: str,
) -> None:
    async with counting_proxy(upstream_for(empty_database)) as (port, tally):
        connection = await _connect(proxied_url(empty_database, port))
        try:
            assert tally.connections == 1
            assert tally.transactions == 0, "the start-up is no transaction"
            trips = tally.round_trips

            await connection.execute("SELECT 1")  # one statement, its own transaction
            assert (tally.round_trips - trips, tally.transactions) == (1, 1)

            trips = tally.round_trips
            async with connection.transaction():  # BEGIN, two statements, COMMIT
                await connection.execute("SELECT 1")
                await connection.execute("SELECT 2")
            assert (tally.round_trips - trips, tally.transactions) == (4, 2)

            trips = tally.round_trips
            try:
                async with connection.transaction():
                    await connection.execute("SELECT 1/0")
            except asyncpg.DivisionByZeroError:
                pass
            # BEGIN, the failing statement, ROLLBACK: a transaction all the same.
            assert (tally.round_trips - trips, tally.transactions) == (3, 3)
        finally:
            await connection.close()


def test_the_answers_to_ssl_and_gss_requests_are_skipped() -> None:
    ssl_request = struct.pack("!II", 8, 80877103)
    gss_request = struct.pack("!II", 8, 80877104)
    startup = struct.pack("!II", 9, 196608) + b"\x00"
    assert special_requests(ssl_request) == 1
    assert special_requests(gss_request + ssl_request) == 2
    assert special_requests(startup) == 0

    tally = Tally()
    stream = ServerStream(tally)
    stream.unframed_bytes = 1
    # 'N' (no SSL), then the start-up's ReadyForQuery, split across reads.
    data = b"N" + _frame(b"Z", b"I") + _frame(b"C", b"SELECT 1\x00") + _frame(b"Z", b"I")
    for i in range(0, len(data), 3):
        stream.feed(data[i : i + 3])
    assert tally.transactions == 1
    # A prepared statement's Parse/Describe answered while idle is no transaction.
    stream.feed(_frame(b"1", b"") + _frame(b"t", b"\x00\x00") + _frame(b"Z", b"I"))
    assert tally.transactions == 1
