"""Threading inbound mail: the pure decisions, then through store_inbound_email."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail.classify import automated_reason
from domain.mail.mime import parse_email
from domain.mail.threads import (
    ThreadCandidate,
    is_reply,
    normalize_subject,
    referenced_ids,
    thread_by_references,
    thread_by_subject,
)
from kernel.enums import MessageDirection
from models import Message
from services.inbox import StoredMessage, store_inbound_email
from tests.factories import make_user

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("subject", "normalised"),
    [
        ("Where is my order?", "where is my order?"),
        ("Re: Where is my order?", "where is my order?"),
        ("RE: Fwd: re:  Where   is my ORDER?", "where is my order?"),
        ("AW: WG: Bestellung #1001", "bestellung #1001"),
        ("SV: VS: Tilaus", "tilaus"),
        ("TR: Rif: R: Ordine", "ordine"),
        ("Re[2]: Re^3: order", "order"),
        ("[Ticket #4521] Re: [Demo Store] Refund", "refund"),
        ("回复\uff1a订单", "订单"),
        ("Re:", ""),
        ("Regarding my order", "regarding my order"),  # "Re" only as a prefix with a colon
    ],
)
def test_normalize_subject(subject: str, normalised: str) -> None:
    assert normalize_subject(subject) == normalised


def test_is_reply() -> None:
    assert is_reply("Re: x", None, [])
    assert is_reply("[#12] AW: x", None, [])
    assert is_reply("x", "<a@b>", [])
    assert is_reply("x", None, ["<a@b>"])
    assert not is_reply("Fwd: x", None, [])  # a forward starts a conversation
    assert not is_reply("Order #1001", None, [])


def test_references_nearest_parent_first() -> None:
    ordered = referenced_ids("<c@x>", ["<a@x>", "<b@x>", "<c@x>"])
    assert ordered == ["<c@x>", "<b@x>", "<a@x>"]
    first, second = uuid.uuid4(), uuid.uuid4()
    # The parent is unknown (its mail lost); the grandparent decides.
    assert thread_by_references(ordered, {"<b@x>": first, "<a@x>": second}) == first
    assert thread_by_references(ordered, {}) is None


def _candidate(customer: str, subject: str, age: timedelta) -> ThreadCandidate:
    return ThreadCandidate(uuid.uuid4(), customer, subject, NOW - age)


def test_subject_threads_only_the_same_customer_within_the_window() -> None:
    mine = _candidate("ava@example.com", "Where is my order?", timedelta(days=3))
    theirs = _candidate("ben@example.com", "Where is my order?", timedelta(hours=1))
    old = _candidate("ava@example.com", "Where is my order?", timedelta(days=15))
    other = _candidate("ava@example.com", "Refund", timedelta(hours=1))
    candidates = [mine, theirs, old, other]
    assert thread_by_subject("RE: where is my ORDER?", "Ava@Example.com", NOW, candidates) == (
        mine.thread_id
    )
    assert thread_by_subject("Re: Where is my order?", "cy@example.com", NOW, candidates) is None
    assert thread_by_subject("Re:", "ava@example.com", NOW, candidates) is None
    newer = _candidate("ava@example.com", "Re: Where is my order?", timedelta(days=1))
    assert thread_by_subject("Re: Where is my order?", "ava@example.com", NOW, [mine, newer]) == (
        newer.thread_id
    )


def _raw(
    message_id: str,
    subject: str,
    *,
    sender: str = "ava@example.com",
    date: str = "Tue, 3 Nov 2026 10:00:00 +0000",
    in_reply_to: str | None = None,
    extra: tuple[str, ...] = (),
) -> bytes:
    lines = [f"From: {sender}", "To: support@demo-store.example", f"Subject: {subject}"]
    lines += [f"Date: {date}", f"Message-ID: {message_id}", *extra]
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    return ("\r\n".join(lines) + "\r\n\r\nHello\r\n").encode()


async def _store(session: AsyncSession, user_id: uuid.UUID, raw: bytes) -> StoredMessage:
    return await store_inbound_email(session, user_id, raw, parse_email(raw))


async def test_a_reply_to_our_reply_stays_in_the_thread(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await _store(session, user.id, _raw("<q@customer.example>", "Order #1001"))
    # What send_reply records for the reply it sends (activities/message_reply.py).
    ours = "<reply-1@demo-store.example>"
    session.add(
        Message(
            user_id=user.id,
            thread_id=first.thread_id,
            direction=MessageDirection.OUTBOUND,
            message_id=ours,
            from_address="support@demo-store.example",
            to_address="ava@example.com",
            subject="Re: Order #1001",
            body_text="It ships tomorrow.",
            headers={"Message-ID": ours, "In-Reply-To": "<q@customer.example>"},
            sent_at=datetime(2026, 11, 3, 11, 0, tzinfo=UTC),
        )
    )
    await session.flush()
    # The customer changed the subject: only In-Reply-To can thread this.
    answer = await _store(
        session,
        user.id,
        _raw(
            "<a@customer.example>",
            "Thanks!",
            date="Wed, 4 Nov 2026 09:00:00 +0000",
            in_reply_to=ours,
        ),
    )
    assert answer.created and answer.thread_id == first.thread_id


async def test_broken_references_fall_back_to_subject_and_customer(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await _store(session, user.id, _raw("<1@c.example>", "Where is my order?"))
    lost = await _store(
        session,
        user.id,
        _raw(
            "<2@c.example>",
            "Re: Where is my order?",
            in_reply_to="<gone@nowhere.example>",
            date="Thu, 5 Nov 2026 10:00:00 +0000",
        ),
    )
    assert lost.thread_id == first.thread_id
    # A reply-looking subject alone also falls back.
    again = await _store(session, user.id, _raw("<3@c.example>", "AW: where is my order?"))
    assert again.thread_id == first.thread_id


async def test_same_subject_from_two_customers_stays_apart(session: AsyncSession) -> None:
    user = await make_user(session)
    ava = await _store(session, user.id, _raw("<ava@c.example>", "Where is my order?"))
    ben = await _store(
        session,
        user.id,
        _raw("<ben@c.example>", "Re: Where is my order?", sender="ben@example.com"),
    )
    assert ava.thread_id != ben.thread_id


async def test_subject_fallback_has_a_window_and_needs_a_reply(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await _store(session, user.id, _raw("<w1@c.example>", "Refund"))
    # A new message with the same subject is a new conversation.
    fresh = await _store(session, user.id, _raw("<w2@c.example>", "Refund"))
    assert fresh.thread_id != first.thread_id
    late = await _store(
        session,
        user.id,
        _raw("<w3@c.example>", "Re: Refund", date="Mon, 30 Nov 2026 10:00:00 +0000"),
    )
    assert late.thread_id not in {first.thread_id, fresh.thread_id}


async def test_references_are_kept_within_the_owner(session: AsyncSession) -> None:
    alice, bob = await make_user(session), await make_user(session)
    a = await _store(session, alice.id, _raw("<x@c.example>", "Hi"))
    b = await _store(session, bob.id, _raw("<y@c.example>", "Re: Hi", in_reply_to="<x@c.example>"))
    assert b.thread_id != a.thread_id


@pytest.mark.parametrize(
    "extra",
    [
        ("Auto-Submitted: auto-replied",),
        ("Return-Path: <>",),
        ("X-Auto-Response-Suppress: DR, RN",),
        ("List-Unsubscribe: <mailto:leave@list.example>",),
        ("Precedence: bulk",),
        ("X-Autorespond: yes",),
    ],
)
async def test_automated_mail_is_stored_and_marked_from_the_stored_headers(
    session: AsyncSession, extra: tuple[str, ...]
) -> None:
    """prepare_message decides from Message.headers: the stored row must carry the reason."""
    user = await make_user(session)
    stored = await _store(
        session, user.id, _raw(f"<{uuid.uuid4().hex}@c.example>", "Hi", extra=extra)
    )
    assert stored.created
    message = await session.get(Message, stored.message_id)
    assert message is not None
    assert automated_reason(message.headers) is not None


async def test_out_of_office_subject_is_marked_from_the_stored_headers(
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    raw = _raw("<ooo@c.example>", "Automatic reply: Re: Order #1001")
    stored = await _store(session, user.id, raw)
    message = await session.get(Message, stored.message_id)
    assert message is not None
    assert (
        automated_reason(message.headers) == "automated subject: Automatic reply: Re: Order #1001"
    )
    # A customer writing about an absence is not an auto-reply.
    assert automated_reason({"Subject": "Re: I was out of office, is the order shipped?"}) is None
