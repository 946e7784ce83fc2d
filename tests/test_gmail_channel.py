"""Gmail end to end over loopback: connect by OAuth, Pub/Sub pushes into the API, the
MailboxSyncWorkflow pulling history into the pipeline, replies sent through Gmail in the
customer's thread; lost pushes, expired history, token refresh and revocation.

Everything real: PostgreSQL, the Temporal dev server and worker, the API served over
HTTP (the sandbox pushes to it), and the Gmail/Google sandbox speaking their wire shapes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.gmail_access import GmailAccess
from api.app import create_app
from kernel.enums import ConnectionType, MessageDirection
from models import Connection, Event, Message
from models.db import unit_of_work
from models.gmail import GmailMetadata, update_gmail
from sandbox.server import serve_app
from tests.api_support import raw_email, token_for
from tests.gmail_support import follow_consent
from tests.pipeline import GMAIL_TOPIC, PUSH_SECRET, Merchant, running_pipeline
from worker import google_oauth_client
from workflows.mailbox_contracts import (
    DISCONNECT_SIGNAL,
    MAILBOX_STATUS_QUERY,
    MailboxStatus,
    mailbox_workflow_id,
)

MAILBOX = "orders@acme-store.example"
WAIT_S = 30
T = TypeVar("T")


@dataclass
class GmailDesk:
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    merchant: Merchant
    api: httpx.AsyncClient  # real HTTP to the served API, with the merchant's token
    api_url: str

    @property
    def gmail(self) -> Any:
        return self.merchant.sandbox.gmail

    def customer(self, number: str = "1001") -> str:
        return self.merchant.orders[number]["email"]

    async def connect(self) -> uuid.UUID:
        """The merchant connects Gmail: our redirect → Google's consent → our callback."""
        started = await self.api.get("/gmail/connect", params={"login_hint": MAILBOX})
        assert started.status_code == 302, started.text
        where, query = await follow_consent(started.headers["location"])
        assert where == f"{self.api_url}/gmail/callback"
        done = await self.api.get("/gmail/callback", params=query)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["email_address"] == MAILBOX and body["syncing"] is True
        return uuid.UUID(body["connection_id"])

    async def metadata(self, connection_id: uuid.UUID) -> GmailMetadata:
        async with self.sessions() as session:
            connection = await session.get(Connection, connection_id)
            assert connection is not None and connection.metadata_ is not None
            return GmailMetadata.model_validate(connection.metadata_)

    async def inbound(self, **where: Any) -> list[Message]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Message)
                .where(
                    Message.user_id == self.merchant.user_id,
                    Message.direction == MessageDirection.INBOUND,
                    *(getattr(Message, k) == v for k, v in where.items()),
                )
                .order_by(Message.created_at)
            )
            return list(rows.scalars())

    async def status(self, connection_id: uuid.UUID) -> MailboxStatus:
        handle = self.env.client.get_workflow_handle(mailbox_workflow_id(connection_id))
        return await handle.query(MAILBOX_STATUS_QUERY, result_type=MailboxStatus)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                if found := await probe():
                    return found
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@asynccontextmanager
async def desk_for(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], **settings: Any
) -> AsyncIterator[GmailDesk]:
    queue = f"gmail-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = sessions.kw["bind"]
    async with running_pipeline(env.client, sessions, queue) as merchant:
        merchant.sandbox.gmail.add_mailbox(MAILBOX)
        token = await token_for(sessions, merchant.user_id)
        app = create_app(engine, env.client, merchant.settings, task_queue=queue)
        async with serve_app(app) as api_url:
            # The callback and push URLs are this server's, known once it listens.
            app.state.settings = merchant.settings.model_copy(
                update={"public_url": api_url, **settings}
            )
            merchant.sandbox.gmail.subscribe_push(
                GMAIL_TOPIC, f"{api_url}/gmail/push?token={PUSH_SECRET}"
            )
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api:
                desk = GmailDesk(env, sessions, merchant, api, api_url)
                try:
                    yield desk
                finally:
                    await _stop_syncs(env, sessions, merchant.user_id)


async def _stop_syncs(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID
) -> None:
    """The shared dev server outlives the test: end the merchant's mailbox workflows."""
    async with sessions() as session:
        ids = (
            await session.execute(select(Connection.id).where(Connection.user_id == user_id))
        ).scalars()
        for connection_id in ids:
            handle = env.client.get_workflow_handle(mailbox_workflow_id(connection_id))
            # Not a mailbox, or already ended: nothing to stop.
            with contextlib.suppress(RPCError):
                await handle.terminate("test over")


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[GmailDesk]:
    # Polling is slow here, so whatever arrives fast came by push.
    async with desk_for(temporal_dev, own_sessions, gmail_poll_seconds=600) as desk:
        yield desk


async def watched(desk: GmailDesk, connection_id: uuid.UUID) -> GmailMetadata:
    async def probe() -> GmailMetadata | None:
        metadata = await desk.metadata(connection_id)
        return metadata if metadata.watch_renewed_at and metadata.last_sync_at else None

    return await eventually(probe, "the first watch and sync")


async def test_gmail_mail_reaches_the_pipeline_by_push_and_the_reply_stays_in_the_thread(
    desk: GmailDesk,
) -> None:
    connection_id = await desk.connect()
    metadata = await watched(desk, connection_id)
    assert metadata.email_address == MAILBOX and metadata.history_id is not None
    mailbox = desk.gmail.mailbox(MAILBOX)
    assert mailbox.watch is not None and mailbox.watch.topic_name == GMAIL_TOPIC

    customer = desk.customer("1001")
    raw = raw_email(
        sender=customer,
        to=MAILBOX,
        subject="Broken mug",
        body="My order #1001 arrived broken. I would like a refund please.",
    )
    delivered = desk.gmail.deliver(MAILBOX, raw)

    async def stored() -> list[Message]:
        return await desk.inbound(connection_id=connection_id)

    [message] = await eventually(stored, "the pushed message in the inbox")
    assert message.channel_message_id == delivered.id
    assert message.channel_thread_id == delivered.thread_id
    assert [p.delivered for p in desk.gmail.pushes] == [True]

    detail = await eventually(
        lambda: _pending(desk, message.id), "a pending action for the Gmail message"
    )
    action = detail["action"]
    approved = await desk.api.post(
        f"/api/actions/{action['id']}/approve", json={"reply": "Refunded, sorry about the mug."}
    )
    assert approved.status_code == 200, approved.text

    async def sent_by_gmail() -> list[Any]:
        return desk.gmail.sent(MAILBOX)

    [sent] = await eventually(sent_by_gmail, "the reply sent through Gmail")
    # In the customer's Gmail thread, with the RFC 5322 threading headers as well.
    assert sent.thread_id == delivered.thread_id
    reply = message_from_bytes(sent.raw, policy=default)
    assert reply["In-Reply-To"] == message.message_id
    assert message.message_id in str(reply["References"]).split()
    assert reply["Subject"] == "Re: Broken mug"
    assert reply["Auto-Submitted"] == "auto-replied"
    # The mailbox does not know the store's name; the merchant's alias does.
    assert reply["To"] == customer and str(reply["From"]) == f"Test Store <{MAILBOX}>"
    assert "Refunded, sorry about the mug." in reply.get_content()
    assert desk.merchant.sandbox.sink.deliveries == []  # not through the SMTP relay
    assert len(desk.merchant.refunds()) == 1

    # The customer answers in the thread: it joins our conversation, once.
    answer = raw_email(
        sender=customer,
        to=MAILBOX,
        subject="Re: Broken mug",
        body="Thank you!",
        in_reply_to=str(reply["Message-ID"]),
    )
    followed = desk.gmail.deliver(MAILBOX, answer)
    assert followed.thread_id == delivered.thread_id
    both = await eventually(
        lambda: _at_least(desk.inbound(connection_id=connection_id), 2), "the customer's answer"
    )
    assert {m.thread_id for m in both} == {message.thread_id}
    async with desk.sessions() as session:
        ours = (
            await session.execute(
                select(Message).where(
                    Message.user_id == desk.merchant.user_id,
                    Message.direction == MessageDirection.OUTBOUND,
                )
            )
        ).scalar_one()
    assert ours.thread_id == message.thread_id
    assert (ours.channel_message_id, ours.channel_thread_id) == (sent.id, sent.thread_id)


async def test_each_channel_delivers_a_message_to_the_pipeline_exactly_once(
    desk: GmailDesk,
) -> None:
    """The same customer email arriving again — a redelivered push, a poll, the same
    message forwarded to the HTTP ingest — is one message with one workflow."""
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    raw = raw_email(sender=desk.customer("1002"), to=MAILBOX, subject="Where is #1002?")
    desk.gmail.deliver(MAILBOX, raw)
    [message] = await eventually(
        lambda: desk.inbound(connection_id=connection_id), "the Gmail message"
    )
    # The same push again (Pub/Sub delivers at least once), then a forced poll.
    mailbox = desk.gmail.mailbox(MAILBOX)
    again = await desk.api.post(
        f"/gmail/push?token={PUSH_SECRET}",
        json=_envelope(MAILBOX, mailbox.history_id),
    )
    assert again.status_code == 204
    # The message arrives at the HTTP ingest too (a forwarding rule, say).
    http = await desk.api.post("/api/inbound/email", content=raw)
    assert http.status_code == 202 and http.json()["message_id"] == str(message.id)
    status = await eventually(
        lambda: _rounds_at_least(desk, connection_id, 3), "two more sync rounds"
    )
    assert status.ingested == 1
    assert [m.id for m in await desk.inbound()] == [message.id]


async def test_lost_pushes_are_covered_by_polling(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with desk_for(temporal_dev, own_sessions, gmail_poll_seconds=1) as desk:
        connection_id = await desk.connect()
        await watched(desk, connection_id)
        desk.gmail.drop_pushes = True
        desk.gmail.deliver(MAILBOX, raw_email(sender=desk.customer("1003"), to=MAILBOX))
        [message] = await eventually(
            lambda: desk.inbound(connection_id=connection_id), "the polled message"
        )
        assert desk.gmail.dropped_pushes == 1 and desk.gmail.pushes == []
        assert message.channel_thread_id is not None


async def test_expired_history_triggers_a_full_resync_without_duplicates(
    desk: GmailDesk,
) -> None:
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    first = raw_email(sender=desk.customer("1004"), to=MAILBOX, subject="First")
    desk.gmail.deliver(MAILBOX, first)
    await eventually(lambda: desk.inbound(connection_id=connection_id), "the first message")

    # Gmail forgets old history (the sandbox keeps 1000 changes; drop them all) while a
    # second message arrives unseen.
    desk.gmail.drop_pushes = True
    mailbox = desk.gmail.mailbox(MAILBOX)
    second = raw_email(sender=desk.customer("1005"), to=MAILBOX, subject="Second")
    desk.gmail.deliver(MAILBOX, second)
    mailbox.oldest_history_id = mailbox.history_id
    desk.gmail.drop_pushes = False
    pushed = await desk.api.post(
        f"/gmail/push?token={PUSH_SECRET}", json=_envelope(MAILBOX, mailbox.history_id)
    )
    assert pushed.status_code == 204

    both = await eventually(
        lambda: _at_least(desk.inbound(connection_id=connection_id), 2), "the resynced message"
    )
    assert sorted(m.subject for m in both) == ["First", "Second"]

    # The messages are stored during the round; its result reaches the workflow after.
    async def resynced() -> MailboxStatus | None:
        status = await desk.status(connection_id)
        return status if status.last_sync and status.last_sync.full_resync else None

    status = await eventually(resynced, "the round's result")
    assert status.last_sync is not None and status.last_sync.ingested == 1
    async with desk.sessions() as session:
        resyncs = (
            await session.execute(select(Event).where(Event.type == "gmail.full_resync"))
        ).scalars()
        assert len(list(resyncs)) == 1


async def test_expired_tokens_are_refreshed_and_a_revoked_grant_is_reported(
    desk: GmailDesk,
) -> None:
    # Tokens live two minutes: every use is inside the refresh margin, so each sync
    # refreshes first.
    desk.merchant.sandbox.google.access_token_lifetime_s = 120
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    async with desk.sessions() as session:
        before = (await session.get(Connection, connection_id)).access_token  # type: ignore[union-attr]
    desk.gmail.deliver(MAILBOX, raw_email(sender=desk.customer("1006"), to=MAILBOX))
    await eventually(lambda: desk.inbound(connection_id=connection_id), "mail after a refresh")
    async with desk.sessions() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None and connection.access_token != before
        refresh_token = connection.refresh_token
    assert refresh_token

    # The merchant revokes deskpilot's access at Google.
    assert desk.merchant.sandbox.google.revoke(refresh_token)
    pushed = await desk.api.post(
        f"/gmail/push?token={PUSH_SECRET}",
        json=_envelope(MAILBOX, desk.gmail.mailbox(MAILBOX).history_id),
    )
    assert pushed.status_code == 204

    async def failed() -> GmailMetadata | None:
        metadata = await desk.metadata(connection_id)
        return metadata if metadata.last_error else None

    metadata = await eventually(failed, "the revoked grant to be recorded")
    assert "reconnect" in metadata.last_error.lower()  # type: ignore[union-attr]
    handle = desk.env.client.get_workflow_handle(mailbox_workflow_id(connection_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_an_access_token_revoked_before_its_expiry_is_refreshed(desk: GmailDesk) -> None:
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    async with desk.sessions() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None
        revoked = connection.access_token
    # Gmail now answers 401 to a token our records say is good for an hour.
    assert desk.gmail.revoke_token(revoked)
    desk.gmail.deliver(MAILBOX, raw_email(sender=desk.customer("1008"), to=MAILBOX))
    [message] = await eventually(
        lambda: desk.inbound(connection_id=connection_id), "mail after the 401"
    )
    assert message.channel_message_id is not None
    async with desk.sessions() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None and connection.access_token != revoked


async def test_a_disabled_mailbox_is_not_synced_and_its_pushes_are_acknowledged(
    desk: GmailDesk,
) -> None:
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    async with unit_of_work(desk.sessions) as session:
        await update_gmail(session, connection_id, disabled=True)
    desk.gmail.deliver(MAILBOX, raw_email(sender=desk.customer("1007"), to=MAILBOX))
    await desk.gmail.flush_pushes()
    assert [p.status for p in desk.gmail.pushes] == [204]
    # A push to a disabled mailbox wakes nothing; the next round (a poll) ends the sync.
    handle = desk.env.client.get_workflow_handle(mailbox_workflow_id(connection_id))
    await handle.signal("mailbox_changed", 0)

    async def ended() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await eventually(ended, "the mailbox workflow to end")
    assert await desk.inbound() == []


async def test_the_disconnect_signal_ends_the_sync_at_once(desk: GmailDesk) -> None:
    """What the connections page sends when a merchant turns Gmail off."""
    connection_id = await desk.connect()
    await watched(desk, connection_id)
    handle = desk.env.client.get_workflow_handle(mailbox_workflow_id(connection_id))
    await handle.signal(DISCONNECT_SIGNAL)
    status = await eventually(
        lambda: _completed(handle), "the mailbox workflow to end after the signal"
    )
    assert status.rounds == 1  # it did not sync again on its way out


async def test_a_retried_send_finds_the_reply_an_interrupted_attempt_sent(
    desk: GmailDesk,
) -> None:
    """A worker that dies between Gmail's answer and recording it retries the send: the
    retry looks the reply up by its Message-ID instead of sending it twice."""
    connection_id = await desk.connect()
    oauth = google_oauth_client(desk.merchant.settings)
    access = GmailAccess(desk.sessions, oauth)
    try:
        reply_id = "<reply-test@acme-store.example>"
        raw = raw_email(sender=MAILBOX, to=desk.customer("1009"), message_id=reply_id)
        first = await access.send(connection_id, raw, None, rfc_message_id=reply_id)
        again = await access.send(connection_id, raw, None, rfc_message_id=reply_id, retry=True)
        assert again == first
        other_id = "<reply-other@acme-store.example>"
        other = raw_email(sender=MAILBOX, to=desk.customer("1009"), message_id=other_id)
        await access.send(connection_id, other, None, rfc_message_id=other_id, retry=True)
    finally:
        await access.aclose()
        if oauth is not None:
            await oauth.aclose()
    assert [m.message_id for m in desk.gmail.sent(MAILBOX)] == [reply_id, other_id]


async def test_push_endpoint_refuses_a_wrong_secret_and_malformed_envelopes(
    desk: GmailDesk,
) -> None:
    wrong = await desk.api.post("/gmail/push?token=guess", json=_envelope(MAILBOX, 5))
    assert wrong.status_code == 401 and "GMAIL_PUSH_SECRET" in wrong.json()["error"]["message"]
    missing = await desk.api.post("/gmail/push", json=_envelope(MAILBOX, 5))
    assert missing.status_code == 401
    bad = await desk.api.post(f"/gmail/push?token={PUSH_SECRET}", json={"message": {}})
    assert bad.status_code == 400 and "message.data" in bad.json()["error"]["message"]
    # A mailbox nobody connected is acknowledged (redelivery would not change that).
    stranger = await desk.api.post(
        f"/gmail/push?token={PUSH_SECRET}", json=_envelope("nobody@example.com", 7)
    )
    assert stranger.status_code == 204


async def test_consent_refused_or_replayed_connects_nothing(desk: GmailDesk) -> None:
    desk.merchant.sandbox.google.deny_next = True
    started = await desk.api.get("/gmail/connect", params={"login_hint": MAILBOX})
    _, query = await follow_consent(started.headers["location"])
    refused = await desk.api.get("/gmail/callback", params=query)
    assert refused.status_code == 400 and "access_denied" in refused.json()["error"]["message"]
    again = await desk.api.get("/gmail/callback", params=query)
    assert again.status_code == 401  # the state is spent
    async with desk.sessions() as session:
        assert (
            await session.execute(
                select(Connection).where(
                    Connection.user_id == desk.merchant.user_id,
                    Connection.type == ConnectionType.GMAIL,
                )
            )
        ).first() is None


# --- helpers --------------------------------------------------------------------------


def _envelope(address: str, history_id: int) -> dict[str, Any]:
    data = base64.urlsafe_b64encode(
        json.dumps({"emailAddress": address, "historyId": history_id}).encode()
    ).decode()
    return {"message": {"data": data, "messageId": "1", "publishTime": "2026-11-26T00:00:00Z"}}


async def _pending(desk: GmailDesk, message_id: uuid.UUID) -> dict[str, Any] | None:
    response = await desk.api.get(f"/api/messages/{message_id}")
    if response.status_code != 200:
        return None
    detail = response.json()
    action = detail.get("action")
    return detail if action and action["status"] == "PENDING" else None


async def _at_least(rows: Awaitable[list[Message]], count: int) -> list[Message] | None:
    found = await rows
    return found if len(found) >= count else None


async def _completed(handle: Any) -> MailboxStatus | None:
    if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
        return None
    return MailboxStatus.model_validate(await handle.result())


async def _rounds_at_least(
    desk: GmailDesk, connection_id: uuid.UUID, rounds: int
) -> MailboxStatus | None:
    status = await desk.status(connection_id)
    return status if status.rounds >= rounds else None
