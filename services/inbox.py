"""Storing an inbound email: thread it (`domain.mail.threads` decides, the queries supply the
candidates), keep the raw bytes, count it against the plan. The caller commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail.mime import ParsedEmail
from domain.mail.threads import (
    SUBJECT_WINDOW,
    ThreadCandidate,
    is_reply,
    referenced_ids,
    thread_by_references,
    thread_by_subject,
)
from kernel.enums import MessageDirection
from models.conversation import Message, Thread
from models.event import log_event
from services.usage import ensure_subscription, entitlement_of, increment_email_received
from workflows.contracts import message_workflow_id


@dataclass(frozen=True)
class MessageOrigin:
    """Where a message came in: the alias or mailbox, and the provider's own ids."""

    connection_id: uuid.UUID | None = None
    channel_message_id: str | None = None
    channel_thread_id: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    message_id: uuid.UUID  # messages.id
    thread_id: uuid.UUID
    workflow_id: str
    created: bool  # False: the same Message-ID was already stored for this owner
    workflow_started: bool = False  # the stored row already records a started workflow


async def _existing(
    session: AsyncSession, user_id: uuid.UUID, rfc_message_id: str
) -> Message | None:
    return (
        await session.execute(
            select(Message).where(Message.user_id == user_id, Message.message_id == rfc_message_id)
        )
    ).scalar_one_or_none()


def _as_stored(message: Message, fallback_workflow_id: str) -> StoredMessage:
    return StoredMessage(
        message_id=message.id,
        thread_id=message.thread_id,
        workflow_id=message.workflow_id or fallback_workflow_id,
        created=False,
        workflow_started=message.workflow_started_at is not None,
    )


async def _thread_for(
    session: AsyncSession,
    user_id: uuid.UUID,
    parsed: ParsedEmail,
    sent_at: datetime,
    origin: MessageOrigin,
) -> uuid.UUID | None:
    """The thread this message joins within the owner's inbox (keys from domain.mail.threads)."""
    ordered = referenced_ids(parsed.in_reply_to, parsed.references)
    if ordered:
        # Our own replies are stored as messages too, so an answer to one threads here.
        rows = await session.execute(
            select(Message.message_id, Message.thread_id).where(
                Message.user_id == user_id, Message.message_id.in_(ordered)
            )
        )
        found = thread_by_references(ordered, {mid: tid for mid, tid in rows})
        if found is not None:
            return found
    if origin.connection_id and origin.channel_thread_id:
        # The provider threaded it (Gmail's threadId): it may have rewritten the
        # Message-ID of a reply we sent, so References alone can miss it.
        same_thread = (
            await session.execute(
                select(Message.thread_id)
                .where(
                    Message.user_id == user_id,
                    Message.connection_id == origin.connection_id,
                    Message.channel_thread_id == origin.channel_thread_id,
                )
                .order_by(Message.sent_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if same_thread is not None:
            return same_thread
    if not is_reply(parsed.subject, parsed.in_reply_to, parsed.references):
        return None
    rows = await session.execute(
        select(Thread.id, Thread.customer_email, Thread.subject, Thread.last_message_at).where(
            Thread.user_id == user_id,
            Thread.customer_email == parsed.from_address,
            Thread.last_message_at >= sent_at - SUBJECT_WINDOW,
            Thread.last_message_at <= sent_at + SUBJECT_WINDOW,
        )
    )
    candidates = [ThreadCandidate(*row) for row in rows]
    return thread_by_subject(parsed.subject, parsed.from_address, sent_at, candidates)


async def store_inbound_email(
    session: AsyncSession,
    user_id: uuid.UUID,
    raw: bytes,
    parsed: ParsedEmail,
    origin: MessageOrigin | None = None,
) -> StoredMessage:
    origin = origin or MessageOrigin()
    workflow_id = message_workflow_id(user_id, parsed.message_id)
    # Most redeliveries are caught here, before a thread is created for nothing.
    existing = await _existing(session, user_id, parsed.message_id)
    if existing is not None:
        return _as_stored(existing, workflow_id)

    now = datetime.now(UTC)
    sent_at = parsed.date or now
    # A savepoint, so a lost race leaves no orphan thread behind.
    savepoint = await session.begin_nested()
    thread_id = await _thread_for(session, user_id, parsed, sent_at, origin)
    if thread_id is None:
        thread = Thread(
            user_id=user_id,
            customer_email=parsed.from_address,
            subject=parsed.subject,
            last_message_at=sent_at,
        )
        session.add(thread)
        await session.flush()
        thread_id = thread.id
    inserted = (
        await session.execute(
            insert(Message)
            .values(
                user_id=user_id,
                thread_id=thread_id,
                connection_id=origin.connection_id,
                channel_message_id=origin.channel_message_id,
                channel_thread_id=origin.channel_thread_id,
                direction=MessageDirection.INBOUND,
                message_id=parsed.message_id,
                from_address=parsed.from_address,
                to_address=parsed.to_address,
                subject=parsed.subject,
                body_text=parsed.text,
                quoted_text=parsed.quoted,
                hidden_text=parsed.hidden,
                attachments=[a.model_dump() for a in parsed.attachments],
                headers=parsed.headers,
                raw=raw,
                sent_at=sent_at,
                workflow_id=workflow_id,
            )
            # Concurrent deliveries of one message wait on the unique index; one wins.
            .on_conflict_do_nothing(index_elements=[Message.user_id, Message.message_id])
            .returning(Message.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        await savepoint.rollback()
        winner = await _existing(session, user_id, parsed.message_id)
        # DO NOTHING only yields to a committed row, which this statement can now read.
        if winner is None:
            raise RuntimeError(f"message {parsed.message_id!r} conflicted but is not stored")
        return _as_stored(winner, workflow_id)
    await savepoint.commit()

    # Never move a thread's clock backwards for a late-arriving older message.
    await session.execute(
        update(Thread)
        .where(Thread.id == thread_id, Thread.last_message_at < sent_at)
        .values(last_message_at=sent_at)
        .execution_options(synchronize_session=False)
    )
    subscription = await ensure_subscription(session, user_id, now=now)
    if not await increment_email_received(session, user_id, now=now, subscription=subscription):
        # Over the plan's limit, or after the plan ended, the message is still kept: the
        # merchant must not lose mail. The event says which.
        allowed = entitlement_of(subscription, now)
        await log_event(
            session,
            "usage.limit_reached" if allowed.entitled else "usage.not_entitled",
            user_id=user_id,
            entity="message",
            entity_id=inserted,
            payload={"counter": "emails_received"}
            | ({} if allowed.entitled else {"reason": allowed.reason}),
        )
    await log_event(
        session,
        "message.received",
        user_id=user_id,
        entity="message",
        entity_id=inserted,
        payload={"thread_id": str(thread_id), "workflow_id": workflow_id},
    )
    return StoredMessage(
        message_id=inserted, thread_id=thread_id, workflow_id=workflow_id, created=True
    )
