"""Storing inbound email: threading, deduplication, owners kept apart, races."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.mail.mime import parse_email
from models import Event, Message, Thread
from services.inbox import StoredMessage, store_inbound_email
from services.usage import get_usage_summary
from tests.factories import make_user
from workflows.contracts import message_workflow_id


def _raw(message_id: str, *, in_reply_to: str | None = None, subject: str = "Order #1001") -> bytes:
    lines = [
        "From: Ava <ava@example.com>",
        "To: support@demo-store.example",
        f"Subject: {subject}",
        "Date: Tue, 3 Nov 2026 10:00:00 +0000",
        f"Message-ID: {message_id}",
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(lines) + "\r\n\r\nWhere is my order #1001?\r\n").encode()


async def _store(session: AsyncSession, user_id: uuid.UUID, raw: bytes) -> StoredMessage:
    return await store_inbound_email(session, user_id, raw, parse_email(raw))


async def _count(session: AsyncSession, model: type, user_id: uuid.UUID) -> int:
    return (
        await session.execute(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )
    ).scalar_one()


async def test_stores_raw_message_in_a_new_thread(session: AsyncSession) -> None:
    user = await make_user(session)
    raw = _raw("<first@mail.example.com>")
    stored = await _store(session, user.id, raw)
    assert stored.created and not stored.workflow_started
    assert stored.workflow_id == message_workflow_id(user.id, "<first@mail.example.com>")

    message = await session.get(Message, stored.message_id)
    assert message is not None
    assert message.raw == raw
    assert message.thread_id == stored.thread_id
    assert message.from_address == "ava@example.com"
    assert message.headers["Message-ID"] == "<first@mail.example.com>"
    assert message.body_text == "Where is my order #1001?"
    assert message.workflow_id == stored.workflow_id and message.workflow_started_at is None
    thread = await session.get(Thread, stored.thread_id)
    assert thread is not None
    assert (thread.customer_email, thread.subject) == ("ava@example.com", "Order #1001")
    assert thread.last_message_at == message.sent_at

    events = (await session.execute(select(Event.type).where(Event.user_id == user.id))).scalars()
    assert "message.received" in set(events)
    summary = await get_usage_summary(session, user.id)
    assert summary.usage.emails_received == 1


async def test_a_reply_joins_the_thread_it_answers(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await _store(session, user.id, _raw("<first@mail.example.com>"))
    unrelated = await _store(session, user.id, _raw("<other@mail.example.com>"))
    reply = await _store(
        session,
        user.id,
        _raw("<second@mail.example.com>", in_reply_to="<first@mail.example.com>", subject="Re: x"),
    )
    assert reply.created
    assert reply.thread_id == first.thread_id != unrelated.thread_id
    assert await _count(session, Thread, user.id) == 2


async def test_a_redelivery_returns_the_stored_message(session: AsyncSession) -> None:
    user = await make_user(session)
    raw = _raw("<dup@mail.example.com>")
    first = await _store(session, user.id, raw)
    again = await _store(session, user.id, raw)
    assert not again.created
    assert (again.message_id, again.thread_id, again.workflow_id) == (
        first.message_id,
        first.thread_id,
        first.workflow_id,
    )
    assert await _count(session, Message, user.id) == 1
    assert await _count(session, Thread, user.id) == 1
    assert (await get_usage_summary(session, user.id)).usage.emails_received == 1


async def test_two_owners_with_the_same_message_id_are_kept_apart(session: AsyncSession) -> None:
    alice, bob = await make_user(session), await make_user(session)
    raw = _raw("<shared@mail.example.com>")
    a, b = await _store(session, alice.id, raw), await _store(session, bob.id, raw)
    assert a.created and b.created
    assert a.message_id != b.message_id and a.thread_id != b.thread_id
    assert a.workflow_id != b.workflow_id
    # A reply naming that Message-ID threads only within its owner's inbox.
    reply = await _store(
        session, bob.id, _raw("<bob-reply@x>", in_reply_to="<shared@mail.example.com>")
    )
    assert reply.thread_id == b.thread_id


async def test_over_the_plan_limit_the_message_is_still_stored(session: AsyncSession) -> None:
    from domain.plans import PLAN_LIMITS
    from kernel.enums import PlanType
    from models import UsageRecord
    from services.usage import ensure_subscription

    user = await make_user(session)
    subscription = await ensure_subscription(session, user.id)
    limit = PLAN_LIMITS[PlanType.TRIAL].emails_received
    assert limit is not None
    await _store(session, user.id, _raw("<one@x>"))
    record = (
        await session.execute(
            select(UsageRecord).where(UsageRecord.subscription_id == subscription.id)
        )
    ).scalar_one()
    record.emails_received = limit
    await session.flush()

    stored = await _store(session, user.id, _raw("<over@x>"))
    assert stored.created
    assert await session.get(Message, stored.message_id) is not None
    limit_events = (
        (
            await session.execute(
                select(Event).where(Event.user_id == user.id, Event.type == "usage.limit_reached")
            )
        )
        .scalars()
        .all()
    )
    assert [e.entity_id for e in limit_events] == [str(stored.message_id)]


async def test_concurrent_deliveries_store_one_row(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as setup, setup.begin():
        user_id = (await make_user(setup)).id
    raw = _raw("<race@mail.example.com>")
    parsed = parse_email(raw)

    async def deliver() -> StoredMessage:
        async with own_sessions() as session, session.begin():
            return await store_inbound_email(session, user_id, raw, parsed)

    results = await asyncio.gather(*(deliver() for _ in range(10)))
    assert sum(r.created for r in results) == 1
    assert len({r.message_id for r in results}) == 1
    assert len({r.thread_id for r in results}) == 1
    async with own_sessions() as check:
        assert await _count(check, Message, user_id) == 1
        # Losers created no orphan thread.
        assert await _count(check, Thread, user_id) == 1
        assert (await get_usage_summary(check, user_id)).usage.emails_received == 1
