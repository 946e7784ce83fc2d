"""The Gmail client and mailer against the Gmail REST sandbox over loopback: sync by
history with a full resync when it expires, error classification, reply threading."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from integrations.gmail.client import AccessTokenRejected, GmailClient, HistoryExpired
from kernel.errors import IntegrationError
from tests.gmail_support import CUSTOMER, MERCHANT, Served, email_bytes, served_gmail


@pytest.fixture
async def gmail() -> AsyncIterator[Served]:
    async with served_gmail() as served:
        yield served


def client_for(gmail: Served, token: str | None = None, page_size: int = 100) -> GmailClient:
    return GmailClient(token or gmail.token, base_url=gmail.url, page_size=page_size)


async def collect(client: GmailClient, start: int) -> tuple[list[str], int]:
    ids: list[str] = []
    last = start
    async for page in client.history(start):
        ids.extend(m.id for m in page.added)
        last = page.history_id
    return ids, last


async def test_watch_history_get_and_send(gmail: Served) -> None:
    client = client_for(gmail)
    try:
        watched = await client.watch("projects/p/topics/gmail", ["INBOX"])
        assert watched.expiration > datetime.now(UTC) + timedelta(days=6)
        raw, _ = email_bytes("Where is my order?")
        delivered = gmail.sandbox.deliver(MERCHANT, raw)

        ids, last = await collect(client, watched.history_id)
        assert ids == [delivered.id]
        assert last > watched.history_id
        assert await collect(client, last) == ([], last)

        fetched = await client.get_raw(delivered.id)
        assert fetched.raw == raw
        assert fetched.thread_id == delivered.thread_id
        assert fetched.label_ids == ("INBOX", "UNREAD")

        sent = await client.send(b"To: jane@customer.example\r\nSubject: hi\r\n\r\nhello\r\n")
        assert gmail.sandbox.sent(MERCHANT)[0].id == sent.id
        assert gmail.sandbox.mailbox(MERCHANT).watch is not None
        await client.stop()
        assert gmail.sandbox.mailbox(MERCHANT).watch is None
    finally:
        await client.aclose()


async def test_history_and_message_list_paginate(gmail: Served) -> None:
    gmail.sandbox.history_retention = 100
    gmail.sandbox.mailbox(MERCHANT).history_retention = 100
    client = client_for(gmail, page_size=2)
    try:
        start = (await client.watch("projects/p/topics/gmail")).history_id
        delivered = [
            gmail.sandbox.deliver(MERCHANT, email_bytes(f"parcel{i} missing")[0]) for i in range(5)
        ]
        pages = [page async for page in client.history(start)]
        assert [len(p.added) for p in pages] == [2, 2, 1]
        assert [m.id for p in pages for m in p.added] == [d.id for d in delivered]

        newest_first = [d.id for d in reversed(delivered)]
        assert await client.list_message_ids() == newest_first
        assert await client.list_message_ids(limit=3) == newest_first[:3]
        assert await client.list_message_ids("parcel2") == [delivered[2].id]
        assert await client.list_message_ids("in:inbox -in:sent", label_ids=["INBOX"]) == (
            newest_first
        )
    finally:
        await client.aclose()


async def test_expired_history_raises_then_full_resync(gmail: Served) -> None:
    client = client_for(gmail)
    try:
        start = (await client.watch("projects/p/topics/gmail")).history_id
        delivered = [gmail.sandbox.deliver(MERCHANT, email_bytes(f"n{i}")[0]) for i in range(8)]
        with pytest.raises(HistoryExpired) as caught:
            await collect(client, start)
        assert caught.value.retryable is False

        # The caller's full sync: every message id, then history from the current id.
        assert set(await client.list_message_ids()) == {d.id for d in delivered}
        current = (await client.watch("projects/p/topics/gmail")).history_id
        assert await collect(client, current) == ([], current)
        # The last five changes (the retention) are still there.
        ids, _ = await collect(client, delivered[2].history_id)
        assert ids == [d.id for d in delivered[3:]]
    finally:
        await client.aclose()


async def test_errors_are_classified(gmail: Served) -> None:
    bad = client_for(gmail, token="ya29.revoked")
    try:
        # A 401 is its own kind: the holder of the refresh token gets a new one.
        with pytest.raises(AccessTokenRejected, match="HTTP 401") as caught:
            await bad.list_message_ids()
        assert caught.value.retryable is False
    finally:
        await bad.aclose()

    client = client_for(gmail)
    try:
        for failure in (429, 503, (403, "userRateLimitExceeded")):
            gmail.sandbox.mailbox(MERCHANT).fail_next.append(failure)
            with pytest.raises(IntegrationError) as caught:
                await client.list_message_ids()
            assert caught.value.retryable is True
        gmail.sandbox.mailbox(MERCHANT).fail_next.append(403)  # a scope the token lacks
        with pytest.raises(IntegrationError, match="reconnect Gmail") as caught:
            await client.send(b"Subject: x\r\n\r\nx\r\n")
        assert caught.value.retryable is False
        with pytest.raises(IntegrationError, match="no longer exists") as caught:
            await client.get_raw("0123456789abcdef")
        assert caught.value.retryable is False
        assert not isinstance(caught.value, HistoryExpired)
    finally:
        await client.aclose()

    unreachable = GmailClient("t", base_url="http://127.0.0.1:9")
    try:
        with pytest.raises(IntegrationError) as caught:
            await unreachable.stop()
        assert caught.value.retryable is True
    finally:
        await unreachable.aclose()


async def test_reply_threading_needs_thread_id_subject_and_headers(gmail: Served) -> None:
    client = client_for(gmail)
    try:
        raw, customer_id = email_bytes("Where is my order?")
        inbound = gmail.sandbox.deliver(MERCHANT, raw)
        thread = inbound.thread_id

        reply, _ = email_bytes(
            "Re: Where is my order?", sender=MERCHANT, to=CUSTOMER, in_reply_to=customer_id
        )
        assert (await client.send(reply, thread)).thread_id == thread

        no_thread_id = await client.send(reply)
        other_subject, _ = email_bytes(
            "Your order", sender=MERCHANT, to=CUSTOMER, in_reply_to=customer_id
        )
        no_subject = await client.send(other_subject, thread)
        bare, _ = email_bytes("Re: Where is my order?", sender=MERCHANT, to=CUSTOMER)
        no_headers = await client.send(bare, thread)
        for sent in (no_thread_id, no_subject, no_headers):
            assert sent.thread_id != thread
            assert sent.thread_id == sent.id  # a new thread of its own

        # The customer's answer to our reply comes back into the same thread.
        our_reply_id = gmail.sandbox.sent(MERCHANT)[0].message_id
        assert our_reply_id is not None
        answer, _ = email_bytes("Re: Where is my order?", in_reply_to=our_reply_id)
        assert gmail.sandbox.deliver(MERCHANT, answer).thread_id == thread
        unrelated, _ = email_bytes("Where is my order?")
        assert gmail.sandbox.deliver(MERCHANT, unrelated).thread_id != thread
    finally:
        await client.aclose()
