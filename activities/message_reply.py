"""Sending the approved reply from the store's address, once."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.gmail_access import GmailAccess
from activities.heartbeat import heartbeating
from activities.message_records import action_of, message_of
from domain.mail.compose import ReplyTo, Sender, reply_email
from integrations.gmail.client import SentMessage
from integrations.ports import MailPort
from kernel.enums import ActionStatus, MessageDirection
from kernel.errors import NotFound, Refused
from kernel.values import OutboundEmail
from models.action import Action
from models.action_log import log_action_event, transition
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.reply_route import reply_route
from services.email_quota import consume_email, holds_reservation, reserve_email
from workflows.contracts import SEND_REPLY, ActionRef

# How long a sent reply's record waits for the database (within the step's 5 minutes).
RECORD_PATIENCE_S = 120.0


def reply_target(action: Action) -> uuid.UUID | None:
    """The message a reply answers: the action's own, or for a playbook's follow-up (an
    action of its own, since a message has one action) the customer's latest."""
    if action.message_id is not None:
        return action.message_id
    followed = action.payload.get("reply_to")
    return uuid.UUID(str(followed)) if followed else None


def reply_message_id(action_id: uuid.UUID, domain: str) -> str:
    """The reply's Message-ID is fixed by the action, so a resend is recognisable."""
    return f"<reply-{action_id}@{domain}>"


async def _outbound(session: AsyncSession, user_id: uuid.UUID, outbound_id: str) -> Message | None:
    return (
        await session.execute(
            select(Message).where(Message.user_id == user_id, Message.message_id == outbound_id)
        )
    ).scalar_one_or_none()


class ReplyStep:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mailer: MailPort,
        gmail: GmailAccess | None = None,
    ) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._gmail = gmail

    @activity.defn(name=SEND_REPLY)
    async def send_reply(self, data: ActionRef) -> str:
        """Send the approved reply from the store's address; a retry never sends it twice
        once the first send was recorded. Returns the reply's Message-ID."""
        async with heartbeating():
            return await self._send_reply(data)

    async def _send_reply(self, data: ActionRef) -> str:
        async with unit_of_work(self._sessions) as session:
            # Locked: this transaction may settle the action (see below).
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            answered = reply_target(action)
            if answered is None:
                raise NotFound("the action has no message to reply to")
            message = await message_of(session, data.user_id, answered)
            route = await reply_route(session, message)
            if route is not None and route.disabled:
                raise Refused("the store's email connection is disabled: no reply is sent")
            if route is not None and route.via == "gmail" and self._gmail is None:
                raise Refused("this worker has no Gmail access configured")
            sender_address = (
                route.sender_address if route else f"support@{message.to_address or 'localhost'}"
            )
            domain = sender_address.rsplit("@", 1)[-1]
            outbound_id = reply_message_id(action.id, domain)
            sent = await _outbound(session, data.user_id, outbound_id)
            if sent is not None and sent.headers.get("X-Deskpilot-Delivery") == "sent":
                # Sent and recorded by an earlier attempt, which may have died before
                # settling: settle now, in this same transaction.
                await _settle(session, action, sent)
                return outbound_id
            if not await holds_reservation(session, action.id):
                # Reserved at approval; taken here for an action that never reserved one.
                await reserve_email(session, data.user_id, action.id)
            text = str(action.payload.get("reply", ""))
            email = reply_email(
                ReplyTo(
                    from_address=message.from_address,
                    subject=message.subject or "",
                    message_id=message.message_id,
                    references=message.headers.get("References") or "",
                ),
                Sender(
                    address=sender_address,
                    store_name=route.store_name if route else None,
                    support_email=route.support_email if route else None,
                ),
                text,
                outbound_id,
                datetime.now(UTC),
            )
            # A row still marked "sending" means an earlier attempt may have sent it.
            retry = sent is not None
            if sent is None:
                # Recorded before sending: the inbox shows the reply even if the send is retried.
                sent = Message(
                    user_id=data.user_id,
                    thread_id=message.thread_id,
                    order_id=message.order_id,
                    connection_id=route.connection_id if route else None,
                    direction=MessageDirection.OUTBOUND,
                    message_id=outbound_id,
                    from_address=sender_address,
                    to_address=message.from_address,
                    subject=str(email["Subject"]),
                    body_text=text,
                    headers={
                        **{k: str(v) for k, v in email.items()},
                        "X-Deskpilot-Delivery": "sending",
                    },
                    raw=email.as_bytes(),
                    sent_at=datetime.now(UTC),
                )
                session.add(sent)
            raw, recipient = bytes(sent.raw or email.as_bytes()), message.from_address

        # A refusal by Gmail or the relay is final (mapped by the worker); a failure to
        # reach them is retried, and the "sending" row makes the retry a resend of the same.
        gmail_sent: SentMessage | None = None
        if self._gmail is not None and route is not None and route.via == "gmail":
            # Gmail reads the recipients from the headers; the threadId keeps the reply
            # in the customer's Gmail thread.
            gmail_sent = await self._gmail.send(
                route.connection_id, raw, route.thread_id, rfc_message_id=outbound_id, retry=retry
            )
        else:
            await self._mailer.send(
                OutboundEmail(
                    message_id=outbound_id, sender=sender_address, recipients=[recipient], raw=raw
                )
            )

        # Recorded at once, alone: a worker that dies between the relay's "accepted" and
        # this commit makes the retry send the same message again (same Message-ID, which
        # mail clients fold into one). Plain SMTP offers nothing to close that window; it
        # is kept as short as one UPDATE.
        await self._record_sent(data, outbound_id, gmail_sent)
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            sent = await _outbound(session, data.user_id, outbound_id)
            assert sent is not None  # recorded above
            await _settle(session, action, sent)
        return outbound_id

    async def _record_sent(
        self, data: ActionRef, outbound_id: str, gmail_sent: SentMessage | None
    ) -> None:
        """Mark the reply sent. The relay already has it, so a database that cannot be
        reached is waited for (heartbeating) instead of failing the step, whose retry
        would send the reply again."""
        deadline = time.monotonic() + RECORD_PATIENCE_S
        pause = 0.2
        while True:
            try:
                async with unit_of_work(self._sessions) as session:
                    sent = await _outbound(session, data.user_id, outbound_id)
                    assert sent is not None  # recorded above, in a committed transaction
                    sent.headers = {**sent.headers, "X-Deskpilot-Delivery": "sent"}
                    if gmail_sent is not None:
                        sent.channel_message_id = gmail_sent.id
                        sent.channel_thread_id = gmail_sent.thread_id
                return
            except (OSError, DBAPIError):
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)


async def _settle(session: AsyncSession, action: Action, sent: Message) -> None:
    """Count the sent reply against the plan, log it, and end the action EXECUTED: the
    reply was the last thing it waited for. Once: a retry repeats nothing."""
    if await consume_email(session, action.id):
        await session.execute(
            update(Thread)
            .where(Thread.id == sent.thread_id)
            .values(last_message_at=sent.sent_at)
            .execution_options(synchronize_session=False)
        )
        await log_action_event(
            session, "reply.sent", action.user_id, action.id, {"message_id": sent.message_id}
        )
    if action.status != ActionStatus.EXECUTED:
        await transition(
            session, action, ActionStatus.EXECUTED, "action.executed", {"type": action.type.value}
        )
