"""A forwarding alias's test email, end to end on loopback: the API asks, a real Temporal
worker mails it through the SMTP mailer to the sandbox's SMTP sink, the sink passes mail
for the inbound domain on to deskpilot's SMTP receiver (as the domain's MX would), and the
receiver records the arrival without making a thread. Then the refusals: another
merchant's alias, a disabled one, a store, a second ask at once, and a forged token."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from deskpilot.smtp_receiver import smtp_receiver
from domain.mail.alias_test import (
    MIN_RESEND_INTERVAL,
    TEST_HEADER,
    arrival_pending,
    header_token,
    new_test_token,
    resend_wait,
    token_matches,
)
from domain.mail.mime import parse_email
from integrations.smtp_outbound import SmtpMailer
from kernel.enums import ConnectionType
from kernel.settings import Settings
from models import Connection, Message
from models.event import Event
from sandbox.mail_sink import MailSink
from sandbox.smtp_sink import MailRelay, serving_smtp_sink
from tests.api_support import api_client, raw_email, token_for
from tests.pipeline import Merchant, create_merchant, running_pipeline

DOMAIN = "inbound.test"  # the domain of tests.pipeline's merchants' aliases
SETTINGS = Settings(INBOUND_DOMAIN=DOMAIN)
WAIT_S = 30


@dataclass
class Desk:
    merchant: Merchant
    api: httpx.AsyncClient  # the merchant's bearer token
    other: httpx.AsyncClient  # a second merchant's
    other_merchant: Merchant
    sessions: async_sessionmaker[AsyncSession]
    sink: MailSink
    receiver_port: int

    async def alias_id(self, merchant: Merchant | None = None) -> uuid.UUID:
        owner = merchant or self.merchant
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(Connection.id).where(
                        Connection.user_id == owner.user_id,
                        Connection.type == ConnectionType.CUSTOM_EMAIL,
                    )
                )
            ).scalar_one()

    async def connection(self, client: httpx.AsyncClient, connection_id: uuid.UUID) -> Any:
        listed = (await client.get("/api/connections")).json()
        return next(c for c in listed if c["id"] == str(connection_id))

    async def inbound_count(self, merchant: Merchant) -> int:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.user_id == merchant.user_id)
                )
            ).scalar_one()

    async def events(self, connection_id: uuid.UUID) -> list[str]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Event.type)
                .where(Event.entity_id == str(connection_id))
                .order_by(Event.created_at, Event.id)
            )
            return [t for t in rows.scalars() if t.startswith("connection.test_email")]


async def _wait(check: Callable[[], Awaitable[Any]]) -> Any:
    async with asyncio.timeout(WAIT_S):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.05)


@asynccontextmanager
async def _desk(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    queue = f"alias-test-{uuid.uuid4().hex[:8]}"
    sink = MailSink()
    engine: AsyncEngine = sessions.kw["bind"]
    async with smtp_receiver(sessions, env.client, SETTINGS, port=0, task_queue=queue) as port:
        relay = MailRelay(DOMAIN, "127.0.0.1", port)
        async with serving_smtp_sink(sink, relay=relay) as sink_port:
            mailer = SmtpMailer("127.0.0.1", sink_port, starttls=False)
            async with running_pipeline(env.client, sessions, queue, mailer=mailer) as merchant:
                other = await create_merchant(sessions, merchant.sandbox, merchant.sandbox_url)
                app = create_app(engine, env.client, SETTINGS, task_queue=queue)
                token = await token_for(sessions, merchant.user_id)
                other_token = await token_for(sessions, other.user_id)
                async with api_client(app, token) as api, api_client(app, other_token) as b:
                    yield Desk(merchant, api, b, other, sessions, sink, port)


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    async with _desk(temporal_dev, own_sessions) as made:
        yield made


async def _arrived(desk: Desk, connection_id: uuid.UUID) -> Any:
    async def check() -> Any:
        view = await desk.connection(desk.api, connection_id)
        return view if view["test_email_received_at"] else None

    return await _wait(check)


async def test_the_test_email_arrives_at_the_receiver_and_makes_no_thread(desk: Desk) -> None:
    alias_id = await desk.alias_id()
    before = await desk.inbound_count(desk.merchant)
    asked = await desk.api.post(f"/api/connections/{alias_id}/test-email")
    assert asked.status_code == 202, asked.text
    assert asked.json()["workflow_id"].startswith(f"alias-test-{alias_id}-")

    view = await _arrived(desk, alias_id)
    requested = datetime.fromisoformat(view["test_email_requested_at"])
    assert requested <= datetime.fromisoformat(view["test_email_received_at"])
    await _wait(lambda: _sent(desk, alias_id))
    # The mail went through the relay (the sink recorded it) to the alias itself.
    [delivery] = [d for d in desk.sink.deliveries if desk.merchant.alias in d.recipients]
    assert delivery.via == "smtp"
    # Recorded, not ingested: no message, so no thread, suggestion or plan usage.
    assert await desk.inbound_count(desk.merchant) == before
    # Sent and received may be recorded in either order: the relay can be that quick.
    assert sorted(await desk.events(alias_id)) == [
        "connection.test_email_received",
        "connection.test_email_requested",
        "connection.test_email_sent",
    ]


async def _sent(desk: Desk, alias_id: uuid.UUID) -> bool:
    return bool((await desk.connection(desk.api, alias_id))["test_email_sent_at"])


async def test_asking_is_refused_for_what_is_not_an_own_enabled_alias(desk: Desk) -> None:
    alias_id = await desk.alias_id()
    theirs = await desk.alias_id(desk.other_merchant)
    # Another merchant's alias reads as no such connection, and nothing is recorded on it.
    assert (await desk.api.post(f"/api/connections/{theirs}/test-email")).status_code == 404
    assert (await desk.connection(desk.other, theirs))["test_email_requested_at"] is None
    assert (await desk.api.post(f"/api/connections/{uuid.uuid4()}/test-email")).status_code == 404

    async with desk.sessions() as session:
        shop_id = (
            await session.execute(
                select(Connection.id).where(
                    Connection.user_id == desk.merchant.user_id,
                    Connection.type == ConnectionType.SHOPIFY,
                )
            )
        ).scalar_one()
    store = await desk.api.post(f"/api/connections/{shop_id}/test-email")
    assert store.status_code == 409 and store.json()["error"]["code"] == "not_an_alias", store.text

    assert (
        await desk.api.patch(f"/api/connections/{alias_id}", json={"enabled": False})
    ).status_code == 200
    disabled = await desk.api.post(f"/api/connections/{alias_id}/test-email")
    assert disabled.status_code == 409 and disabled.json()["error"]["code"] == "alias_disabled"
    assert (await desk.connection(desk.api, alias_id))["test_email_requested_at"] is None

    assert (
        await desk.api.patch(f"/api/connections/{alias_id}", json={"enabled": True})
    ).status_code == 200
    assert (await desk.api.post(f"/api/connections/{alias_id}/test-email")).status_code == 202
    again = await desk.api.post(f"/api/connections/{alias_id}/test-email")
    assert again.status_code == 429, again.text
    assert again.json()["error"]["code"] == "test_email_throttled"
    assert 0 < int(again.headers["Retry-After"]) <= MIN_RESEND_INTERVAL.total_seconds()
    await _arrived(desk, alias_id)  # the first one still arrives


async def _smtp_send(port: int, raw: bytes, to: str) -> None:
    await aiosmtplib.send(
        raw,
        sender="customer@example.com",
        recipients=[to],
        hostname="127.0.0.1",
        port=port,
        start_tls=False,
        timeout=10,
    )


def _with_test_header(raw: bytes, token: str) -> bytes:
    return f"{TEST_HEADER}: {token}\r\n".encode() + raw


async def test_a_forged_or_foreign_token_is_ordinary_mail(desk: Desk) -> None:
    """Only the digest stored with the alias marks a test: a made-up token, or the real
    token of another merchant's alias, is a customer's message like any other."""
    mine, theirs = await desk.alias_id(), await desk.alias_id(desk.other_merchant)
    assert (await desk.other.post(f"/api/connections/{theirs}/test-email")).status_code == 202
    await _wait(lambda: _arrived_for(desk.other, desk, theirs))

    [theirs_mail] = [d for d in desk.sink.deliveries if desk.other_merchant.alias in d.recipients]
    their_token = header_token(
        parse_email(desk.sink.raw(desk.sink.deliveries.index(theirs_mail))).headers
    )
    assert their_token is not None

    for number, token in enumerate([new_test_token()[0], their_token]):
        before = await desk.inbound_count(desk.merchant)
        raw = raw_email(
            message_id=make_msgid(f"forged{number}", domain="example.com"),
            to=desk.merchant.alias,
        )
        await _smtp_send(desk.receiver_port, _with_test_header(raw, token), desk.merchant.alias)
        await _wait(lambda b=before: _more_mail(desk, b))
    assert (await desk.connection(desk.api, mine))["test_email_received_at"] is None


async def _arrived_for(client: httpx.AsyncClient, desk: Desk, connection_id: uuid.UUID) -> bool:
    return bool((await desk.connection(client, connection_id))["test_email_received_at"])


async def _more_mail(desk: Desk, before: int) -> bool:
    return await desk.inbound_count(desk.merchant) > before


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_sink_keeps_mail_it_cannot_pass_on() -> None:
    """A next hop that is down is a 4xx to the sender, and nothing is recorded: the
    sender's retry is the one delivery."""
    sink = MailSink()
    relay = MailRelay(DOMAIN, "127.0.0.1", _free_port())
    async with serving_smtp_sink(sink, relay=relay) as port:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await _smtp_send(port, raw_email(to=f"a@{DOMAIN}"), f"a@{DOMAIN}")
        assert refused.value.code == 451
        assert sink.deliveries == []
        # Mail for any other domain is only recorded, as before.
        await _smtp_send(port, raw_email(), "someone@example.com")
        assert [d.recipients for d in sink.deliveries] == [["someone@example.com"]]


# --- the pure parts --------------------------------------------------------------------------


def test_the_header_is_read_in_any_case_and_only_once() -> None:
    token, digest = new_test_token()
    assert header_token({TEST_HEADER.lower(): f" {token} "}) == token
    assert token_matches(header_token({TEST_HEADER.upper(): token}), digest)
    assert header_token({TEST_HEADER: [token, token]}) is None  # two headers: not ours
    assert header_token({TEST_HEADER: "x" * 101}) is None
    assert header_token({"Subject": token}) is None
    assert not token_matches(None, digest)
    assert not token_matches(token, None)
    assert not token_matches(token + "x", digest)


def test_resend_wait_and_the_pages_wait_for_arrival() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert resend_wait(None, now) == 0
    assert resend_wait(now - timedelta(seconds=10), now) == 20
    assert resend_wait(now - MIN_RESEND_INTERVAL, now) == 0
    assert arrival_pending(now - timedelta(seconds=5), None, now)
    assert not arrival_pending(now - timedelta(seconds=5), now, now)
    assert not arrival_pending(now - timedelta(minutes=3), None, now)
    assert not arrival_pending(None, None, now)
