"""The forwarding alias over SMTP, on loopback: the built-in receiver (aiosmtpd) in front of
the ingest path, the SMTP mailer (aiosmtplib) behind send_reply, and the sandbox SMTP sink.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib.errors import SMTPDataError, SMTPRecipientRefused, SMTPSenderRefused
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from deskpilot.smtp_receiver import smtp_receiver
from deskpilot.smtp_server import serve_smtp
from integrations.smtp_outbound import SmtpMailer
from kernel.enums import ConnectionType, MessageDirection
from kernel.errors import IntegrationError
from kernel.settings import Settings
from kernel.values import OutboundEmail
from models import Connection, CustomEmailMetadata, Message
from models.db import unit_of_work
from sandbox.mail_sink import MailSink
from sandbox.smtp_sink import serving_smtp_sink
from services.accounts import create_user
from tests.api_support import api_client, deeply_nested_email, raw_email, token_for
from tests.pipeline import Merchant, running_pipeline
from workflows.contracts import message_workflow_id

DOMAIN = "inbound.test"
SETTINGS = Settings(INBOUND_DOMAIN=DOMAIN)
WAIT_S = 30


# --- an owner with aliases ------------------------------------------------------------------


async def _alias(
    session: AsyncSession, user_id: uuid.UUID, local: str, *, disabled: bool = False
) -> str:
    address = f"{local}-{uuid.uuid4().hex[:6]}@{DOMAIN}"
    session.add(
        Connection(
            user_id=user_id,
            type=ConnectionType.CUSTOM_EMAIL,
            access_token="-",
            metadata_=CustomEmailMetadata(
                alias=address, domain=DOMAIN, disabled=disabled, store_name="Alias Store"
            ).to_json(),
        )
    )
    await session.flush()
    return address


async def _owner_with_aliases(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[uuid.UUID, str, str, str]:
    """(owner, alias, second alias, disabled alias)"""
    async with unit_of_work(sessions) as session:
        user = await create_user(session, f"smtp-{uuid.uuid4().hex[:6]}@store.test", "Owner")
        return (
            user.id,
            await _alias(session, user.id, "support"),
            await _alias(session, user.id, "orders"),
            await _alias(session, user.id, "old", disabled=True),
        )


async def _inbound(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> list[Message]:
    async with sessions() as session:
        rows = await session.execute(
            select(Message).where(
                Message.user_id == user_id, Message.direction == MessageDirection.INBOUND
            )
        )
        return list(rows.scalars())


@asynccontextmanager
async def _client(port: int) -> AsyncIterator[aiosmtplib.SMTP]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await client.connect()
    await client.ehlo()
    try:
        yield client
    finally:
        await client.quit()


async def _rcpt_code(port: int, address: str) -> int:
    async with _client(port) as client:
        await client.mail("customer@example.com")
        try:
            response = await client.rcpt(address)
        except SMTPRecipientRefused as exc:
            return exc.code
        return response.code


# --- the receiver ---------------------------------------------------------------------------


async def test_receiver_accepts_only_enabled_aliases_of_its_domain(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, alias, _, disabled = await _owner_with_aliases(own_sessions)
    async with smtp_receiver(own_sessions, None, SETTINGS, port=0) as port:
        assert await _rcpt_code(port, alias) == 250
        assert await _rcpt_code(port, alias.upper()) == 250  # aliases are case-insensitive
        assert await _rcpt_code(port, f"nobody@{DOMAIN}") == 550
        assert await _rcpt_code(port, disabled) == 550  # a disabled connection receives nothing
        local = alias.split("@")[0]
        assert await _rcpt_code(port, f"{local}@elsewhere.example") == 550  # not an open relay

        # A message with only refused recipients is never taken.
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await aiosmtplib.send(
                raw_email(), sender="c@example.com", recipients=[disabled], port=port
            )


async def test_receiver_enforces_the_size_limit(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    owner, alias, _, _ = await _owner_with_aliases(own_sessions)
    limit = 4096
    big = raw_email(body="\r\n".join(["x" * 70] * (limit // 35)))
    async with smtp_receiver(own_sessions, None, SETTINGS, port=0, max_bytes=limit) as port:
        async with _client(port) as client:
            assert client.supports_extension("size")
            assert client.esmtp_extensions["size"] == str(limit)
            # Declared up front with SIZE: refused at MAIL FROM.
            with pytest.raises(SMTPSenderRefused) as declared:
                await client.mail("c@example.com", options=[f"SIZE={len(big)}"])
            assert declared.value.code == 552
        async with _client(port) as client:
            # Not declared: refused once the data passes the limit.
            await client.mail("c@example.com")
            await client.rcpt(alias)
            with pytest.raises(SMTPDataError) as sent:
                await client.data(big)
            assert sent.value.code == 552
    assert await _inbound(own_sessions, owner) == []


async def test_receiver_stores_once_per_owner_and_leaves_the_start_to_the_reconciler(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two aliases of one owner, and a redelivery: one message. Temporal is away (None):
    the row is stored and marked not started, for the reconciler."""
    owner, alias, second, _ = await _owner_with_aliases(own_sessions)
    message_id = make_msgid(domain="customer.test")
    raw = raw_email(sender="Ava <ava@example.com>", to=alias, message_id=message_id)
    async with smtp_receiver(own_sessions, None, SETTINGS, port=0) as port:
        for _ in range(2):
            errors, response = await aiosmtplib.send(
                raw, sender="ava@example.com", recipients=[alias, second], port=port
            )
            assert errors == {} and response == "2.0.0 OK: queued"
    [stored] = await _inbound(own_sessions, owner)
    assert stored.message_id == message_id
    assert stored.from_address == "ava@example.com"
    assert stored.workflow_id == message_workflow_id(owner, message_id)
    assert stored.workflow_started_at is None
    assert stored.raw == raw


async def test_receiver_refuses_mail_for_an_alias_disabled_after_rcpt(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    owner, alias, _, _ = await _owner_with_aliases(own_sessions)
    async with (
        smtp_receiver(own_sessions, None, SETTINGS, port=0) as port,
        _client(port) as client,
    ):
        await client.mail("c@example.com")
        await client.rcpt(alias)
        async with unit_of_work(own_sessions) as session:
            connection = (
                await session.execute(
                    select(Connection).where(
                        Connection.user_id == owner,
                        Connection.metadata_["alias"].astext == alias,
                    )
                )
            ).scalar_one()
            connection.metadata_ = {**(connection.metadata_ or {}), "disabled": True}
        with pytest.raises(SMTPDataError) as refused:
            await client.data(raw_email(to=alias))
        assert refused.value.code == 550
    assert await _inbound(own_sessions, owner) == []


async def test_receiver_refuses_deeply_nested_mime_with_a_reason(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    owner, alias, _, _ = await _owner_with_aliases(own_sessions)
    async with (
        smtp_receiver(own_sessions, None, SETTINGS, port=0) as port,
        _client(port) as client,
    ):
        await client.mail("c@example.com")
        await client.rcpt(alias)
        with pytest.raises(SMTPDataError) as refused:
            await client.data(deeply_nested_email(2_000, to=alias))
        assert refused.value.code == 550 and "too deeply" in refused.value.message
    assert await _inbound(own_sessions, owner) == []


# --- the mailer -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outbound(raw: bytes = b"Subject: hi\r\n\r\nhello\r\n") -> OutboundEmail:
    return OutboundEmail(
        message_id="<reply-1@inbound.test>",
        sender=f"support@{DOMAIN}",
        recipients=["customer@example.com"],
        raw=raw,
    )


class _Answering:
    """A relay that answers every RCPT with a fixed reply (greylisting, a hard bounce)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.reply


async def test_mailer_delivers_the_raw_bytes_to_the_sink() -> None:
    sink = MailSink()
    raw = b"Message-ID: <reply-1@inbound.test>\r\nSubject: hi\r\n\r\nhello\r\n"
    async with serving_smtp_sink(sink) as port:
        mailer = SmtpMailer("127.0.0.1", port, starttls=False)
        await mailer.send(_outbound(raw))
        await mailer.send(_outbound(raw))  # the sink does not deduplicate
    assert [d.via for d in sink.deliveries] == ["smtp", "smtp"]
    assert sink.deliveries[0].message_id == "<reply-1@inbound.test>"
    assert sink.deliveries[0].sender == f"support@{DOMAIN}"
    assert sink.deliveries[0].recipients == ["customer@example.com"]
    assert sink.raw(0).replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


async def test_mailer_classifies_errors() -> None:
    with pytest.raises(IntegrationError) as refused:
        await SmtpMailer("127.0.0.1", _free_port(), starttls=False).send(_outbound())
    assert refused.value.retryable, "a refused connection is tried again"

    async with serve_smtp(_Answering("451 4.7.1 greylisted, come back later")) as port:
        with pytest.raises(IntegrationError) as later:
            await SmtpMailer("127.0.0.1", port, starttls=False).send(_outbound())
    assert later.value.retryable and "451" in str(later.value)

    async with serve_smtp(_Answering("550 5.1.1 no such user")) as port:
        with pytest.raises(IntegrationError) as bounced:
            await SmtpMailer("127.0.0.1", port, starttls=False).send(_outbound())
    assert not bounced.value.retryable and "550" in str(bounced.value)

    # STARTTLS demanded from a relay that does not offer it: refused, never sent in clear.
    sink = MailSink()
    async with serving_smtp_sink(sink) as port:
        with pytest.raises(IntegrationError) as clear:
            await SmtpMailer("127.0.0.1", port, starttls=True).send(_outbound())
    assert not clear.value.retryable
    assert sink.deliveries == []


# --- end to end: SMTP in, decision, SMTP out --------------------------------------------------


async def _wait(check: Callable[[], Any]) -> Any:
    async with asyncio.timeout(WAIT_S):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.05)


@asynccontextmanager
async def _smtp_pipeline(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[Merchant, int, httpx.AsyncClient, MailSink]]:
    """The worker sends through SMTP to the sandbox's SMTP sink; mail arrives at the receiver."""
    queue = f"smtp-{uuid.uuid4().hex[:8]}"
    sink = MailSink()
    async with serving_smtp_sink(sink) as sink_port:
        mailer = SmtpMailer("127.0.0.1", sink_port, starttls=False)
        async with running_pipeline(env.client, sessions, queue, mailer=mailer) as merchant:
            client: Client = env.client
            async with smtp_receiver(sessions, client, SETTINGS, port=0, task_queue=queue) as port:
                token = await token_for(sessions, merchant.user_id)
                engine: AsyncEngine = sessions.kw["bind"]
                app = create_app(engine, client, SETTINGS, task_queue=queue)
                async with api_client(app, token) as api:
                    yield merchant, port, api, sink


async def _pending(api: httpx.AsyncClient, message_uuid: uuid.UUID) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = (await api.get(f"/api/messages/{message_uuid}")).json()
        action = view.get("action")
        return view if action and action["status"] == "PENDING" else None

    return await _wait(check)


async def _stored(
    sessions: async_sessionmaker[AsyncSession], merchant: Merchant, message_id: str
) -> Message:
    async def check() -> Message | None:
        rows = [m for m in await _inbound(sessions, merchant.user_id) if m.message_id == message_id]
        assert len(rows) <= 1
        return rows[0] if rows and rows[0].workflow_started_at is not None else None

    return await _wait(check)


async def test_smtp_in_to_reply_out_through_the_sink(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with _smtp_pipeline(temporal_dev, own_sessions) as (merchant, port, api, sink):
        customer = merchant.orders["1001"]["email"]
        message_id = make_msgid(domain="customer.test")
        raw = raw_email(
            sender=customer,
            to=merchant.alias,
            subject="Broken mug",
            body="My order #1001 arrived broken. I would like a refund please.",
            message_id=message_id,
        )
        await aiosmtplib.send(raw, sender=customer, recipients=[merchant.alias], port=port)
        await aiosmtplib.send(raw, sender=customer, recipients=[merchant.alias], port=port)

        stored = await _stored(own_sessions, merchant, message_id)
        assert stored.workflow_id == message_workflow_id(merchant.user_id, message_id)
        pending = await _pending(api, stored.id)
        assert pending["workflow_id"] == stored.workflow_id
        pending_run = (
            await temporal_dev.client.get_workflow_handle(stored.workflow_id).describe()
        ).run_id
        action = pending["action"]
        approved = await api.post(f"/api/actions/{action['id']}/approve")
        assert approved.status_code == 200, approved.text

        async def replied() -> bool:
            return bool(sink.deliveries)

        await _wait(replied)
        # The one workflow has finished: nothing is left that could send again.
        handle = temporal_dev.client.get_workflow_handle(stored.workflow_id)
        await handle.result()
        assert (await handle.describe()).run_id == pending_run
        # One message in, one workflow, one refund, one reply.
        assert [m.message_id for m in await _inbound(own_sessions, merchant.user_id)] == [
            message_id
        ]
        assert len(merchant.refunds()) == 1
        [delivery] = sink.deliveries
        assert merchant.sandbox.sink.deliveries == []  # not also through the HTTP sink
        assert delivery.via == "smtp"
        assert delivery.sender == merchant.alias and delivery.recipients == [customer]
        reply: EmailMessage = message_from_bytes(sink.raw(0), policy=default)
        assert reply["From"] == f"Test Store <{merchant.alias}>"
        assert reply["Reply-To"] == "help@store.test"
        assert reply["To"] == customer
        assert reply["Subject"] == "Re: Broken mug"
        assert reply["In-Reply-To"] == message_id
        assert reply["References"] == message_id
        assert reply["Auto-Submitted"] == "auto-replied"
        assert reply["Message-ID"] == delivery.message_id
        assert delivery.message_id == f"<reply-{action['id']}@inbound.test>"


async def test_a_disabled_connection_sends_no_reply(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with _smtp_pipeline(temporal_dev, own_sessions) as (merchant, port, api, sink):
        customer = merchant.orders["1001"]["email"]
        message_id = make_msgid(domain="customer.test")
        raw = raw_email(sender=customer, to=merchant.alias, message_id=message_id)
        await aiosmtplib.send(raw, sender=customer, recipients=[merchant.alias], port=port)
        stored = await _stored(own_sessions, merchant, message_id)
        pending = await _pending(api, stored.id)

        async with unit_of_work(own_sessions) as session:
            await session.execute(
                update(Connection)
                .where(
                    Connection.user_id == merchant.user_id,
                    Connection.type == ConnectionType.CUSTOM_EMAIL,
                )
                .values(metadata_=Connection.metadata_.op("||")({"disabled": True}))
            )
        approved = await api.post(f"/api/actions/{pending['action']['id']}/approve")
        assert approved.status_code == 200, approved.text

        async def failed() -> dict[str, Any] | None:
            view = (await api.get(f"/api/messages/{stored.id}")).json()
            return view if view["action"]["status"] == "FAILED" else None

        # A reply-only action: the reply was the whole action, and it may not go out.
        assert pending["action"]["type"] in ("INFO_REQUEST", "NONE")
        view = await _wait(failed)
        assert "disabled" in view["action"]["error"]
        assert sink.deliveries == [] and merchant.sandbox.sink.deliveries == []
        # And it receives nothing more either.
        assert await _rcpt_code(port, merchant.alias) == 550
