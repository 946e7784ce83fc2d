"""PostgreSQL stopped and started again while messages arrive over HTTP and a person
approves them: every message is stored once, every workflow completes, and each effect
and reply happens once.

The case runs its own PostgreSQL (pgserver, a data directory of its own), stops it as an
operator would (`pg_ctl stop -m fast`), keeps it away for a few seconds and starts it
again on the same directory and socket. Senders retry what was not accepted, as mail
servers do; the person retries what the API could not take.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from deskpilot.embedded_postgres import EmbeddedPostgres
from models import migrate
from models.db import create_engine, session_factory
from tests.api_support import raw_email
from tests.chaos.conftest import Report
from tests.chaos.desk import Delivered, Desk, eventually, open_desk
from tests.chaos.workload import STORE_ACTIONS, Request, Tally, mix, requests_for
from tests.conftest import TEST_SECRET_KEY
from workflows.contracts import Stage

PER_ACTION = 6
TOTAL = PER_ACTION * len(STORE_ACTIONS)
EVERY_S = 0.25  # one message arrives every quarter second
OUTAGE_S = 5.0  # how long PostgreSQL stays away
PATIENCE_S = 120


async def _approve(desk: Desk, http: httpx.AsyncClient, message_id: uuid.UUID) -> None:
    """Approve the message's action once it waits, trying again while the API cannot
    answer; a 409 after an attempt the API did take means that attempt counted."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        action = await desk.action_of(http, message_id)
        if action is not None and action["status"] != "PENDING":
            return
        if action is not None:
            try:
                answer = await http.post(f"/api/actions/{action['id']}/approve")
                if answer.status_code == 200:
                    return
                assert answer.status_code >= 500 or answer.status_code == 409, answer.text
            except httpx.TransportError:
                pass
        assert time.monotonic() < deadline, f"message {message_id} was never approved"
        await asyncio.sleep(0.3)


async def _arrive(
    desk: Desk, http: httpx.AsyncClient, index: int, request: Request, arrived: list[Delivered]
) -> Delivered:
    await asyncio.sleep(index * EVERY_S)  # the stream's pace, not a wait for anything
    raw = raw_email(sender=request.sender, subject=request.subject, body=request.text)
    delivered = await desk.deliver(http, raw, PATIENCE_S)
    arrived.append(delivered)
    await _approve(desk, http, delivered.message_id)
    return delivered


async def test_every_message_is_stored_once_and_completes_across_a_postgres_restart(
    chaos_report: Report, tmp_path: Path, bytecode: dict[str, str]
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "pgdata")
    await asyncio.to_thread(postgres.start)
    try:
        url = await asyncio.to_thread(postgres.ensure_database, "deskpilot")
        await migrate.upgrade(url)
        engine = create_engine(url, secret_key=TEST_SECRET_KEY)
        try:
            async with open_desk(tmp_path, url, session_factory(engine), **bytecode) as desk:
                await _run(chaos_report, desk, postgres)
        finally:
            await engine.dispose()
    finally:
        await asyncio.to_thread(postgres.stop)


async def _run(chaos_report: Report, desk: Desk, postgres: EmbeddedPostgres) -> None:
    requests = requests_for(desk.merchant, dict.fromkeys(STORE_ACTIONS, PER_ACTION))
    await desk.start_both()
    arrived: list[Delivered] = []
    async with desk.http() as http:
        stream = asyncio.gather(
            *(_arrive(desk, http, i, r, arrived) for i, r in enumerate(requests))
        )
        await eventually(lambda: _at_least(arrived, TOTAL // 3), 60, "the first messages")
        await asyncio.to_thread(postgres.stop)
        stopped_after = len(arrived)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(postgres.start)
        delivered = await stream
    results = await desk.results([d.workflow_id for d in delivered], 240)

    stored = await desk.inbound_messages()
    tally = Tally.of(desk.merchant, requests)
    retried = sum(d.attempts - 1 for d in delivered)
    chaos_report(
        f"chaos postgres-restart: {TOTAL} messages ({mix(requests)}), PostgreSQL stopped "
        f"after {stopped_after} for {OUTAGE_S:.0f} s, {retried} deliveries retried; stored "
        f"{stored}, workflows executed {sum(r.stage == Stage.EXECUTED for r in results)}, "
        f"{tally.counts}"
    )
    assert retried > 0, "no delivery met the outage"
    assert stored == TOTAL and len({d.message_id for d in delivered}) == TOTAL
    assert [r.stage for r in results] == [Stage.EXECUTED] * TOTAL, desk.worker.output()
    tally.assert_once()


async def _at_least(arrived: list[Delivered], count: int) -> bool:
    return len(arrived) >= count
