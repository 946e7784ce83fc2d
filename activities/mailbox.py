"""Activities of the MailboxSyncWorkflow: keep Gmail's watch alive, and pull new mail.

The sync reads from the history id stored after the last complete sync (never from a
pushed one: pushes can be late, lost or out of order) and stores the mailbox's new
history id only once every page is handled, so a crash re-reads rather than skips.
Re-reading is harmless: each message is stored once per owner by its Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.gmail_access import GmailAccess, Mailbox, MailboxUnavailable
from domain.mail.mime import EmailTooLargeError, MalformedEmailError, parse_email
from integrations.gmail.client import HistoryExpired
from kernel.errors import IntegrationError
from kernel.settings import Settings
from models.db import unit_of_work
from models.event import log_event
from models.gmail import load_gmail, update_gmail
from services.inbox import MessageOrigin
from services.ingest import ingest_parsed
from workflows.mailbox_contracts import (
    RENEW_WATCH,
    SYNC_MAILBOX,
    MailboxRef,
    SyncResult,
    WatchInput,
    WatchState,
)

log = logging.getLogger(__name__)

# Only what reached the inbox is a customer's message; the rest is ours or junk.
_SKIP_LABELS = frozenset({"SENT", "DRAFT", "SPAM", "TRASH", "CHAT"})
# A full resync after a history gap looks this far behind the last good sync...
RESYNC_OVERLAP = timedelta(days=1)
# ...or this far back if the mailbox never synced, and reads at most this many messages.
RESYNC_FIRST_WINDOW = timedelta(days=3)
RESYNC_LIMIT = 500


def wanted(label_ids: tuple[str, ...]) -> bool:
    return "INBOX" in label_ids and not _SKIP_LABELS.intersection(label_ids)


@dataclass
class _Counts:
    seen: int = 0
    ingested: int = 0


class MailboxActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gmail: GmailAccess,
        settings: Settings,
    ) -> None:
        self._sessions = sessions
        self._gmail = gmail
        self._settings = settings

    def all(self) -> list[object]:
        return [self.renew_watch, self.sync_mailbox]

    @activity.defn(name=RENEW_WATCH)
    async def renew_watch(self, data: WatchInput) -> WatchState:
        """Renew Gmail's watch when it is due; without a Pub/Sub topic, polling only."""
        topic = self._settings.gmail_pubsub_topic
        try:
            async with self._gmail.open(data.connection_id) as mailbox:
                if not topic:
                    return WatchState(active=True)
                renewed = mailbox.metadata.watch_renewed_at
                now = datetime.now(UTC)
                if renewed is not None and now < renewed + data.renewal:
                    return WatchState(active=True, renew_at=renewed + data.renewal)
                watch = await mailbox.client.watch(topic, ["INBOX"], "include")
                async with unit_of_work(self._sessions) as session:
                    changes: dict[str, object] = {
                        "watch_expiration": watch.expiration,
                        "watch_renewed_at": now,
                    }
                    if mailbox.metadata.history_id is None:
                        changes["history_id"] = watch.history_id
                    await update_gmail(session, data.connection_id, **changes)
                return WatchState(active=True, renew_at=now + data.renewal)
        except MailboxUnavailable as exc:
            return WatchState(active=False, error=str(exc))
        except IntegrationError as exc:
            if exc.retryable:
                raise
            await self._record_error(data.connection_id, data.user_id, str(exc))
            # Keep polling: the merchant may reconnect, and the sync says so each round.
            return WatchState(active=True, error=str(exc))

    @activity.defn(name=SYNC_MAILBOX)
    async def sync_mailbox(self, data: MailboxRef) -> SyncResult:
        try:
            async with self._gmail.open(data.connection_id) as mailbox:
                return await self._sync(mailbox)
        except MailboxUnavailable as exc:
            return SyncResult(active=False, error=str(exc))
        except IntegrationError as exc:
            if exc.retryable:
                raise
            await self._record_error(data.connection_id, data.user_id, str(exc))
            return SyncResult(error=str(exc))

    async def _sync(self, mailbox: Mailbox) -> SyncResult:
        counts = _Counts()
        start = mailbox.metadata.history_id
        if start is None:
            # Connected without a position: start from now, old mail is not imported.
            profile = await mailbox.client.profile()
            await self._save_position(mailbox.connection_id, profile.history_id)
            return SyncResult(history_id=profile.history_id)
        try:
            latest = start
            async for page in mailbox.client.history(start):
                for added in page.added:
                    if wanted(added.label_ids):
                        await self._ingest(mailbox, added.id, counts)
                latest = page.history_id
        except HistoryExpired:
            latest = await self._full_resync(mailbox, counts)
            await self._save_position(mailbox.connection_id, latest)
            return SyncResult(
                ingested=counts.ingested, seen=counts.seen, full_resync=True, history_id=latest
            )
        await self._save_position(mailbox.connection_id, latest)
        return SyncResult(ingested=counts.ingested, seen=counts.seen, history_id=latest)

    async def _full_resync(self, mailbox: Mailbox, counts: _Counts) -> int:
        """Gmail no longer has our start id: read the inbox since shortly before the last
        good sync. The position is taken first, so mail arriving meanwhile is read again
        next time rather than missed."""
        profile = await mailbox.client.profile()
        since = mailbox.metadata.last_sync_at
        since = (since - RESYNC_OVERLAP) if since else datetime.now(UTC) - RESYNC_FIRST_WINDOW
        ids = await mailbox.client.list_message_ids(
            f"after:{int(since.timestamp())}", label_ids=["INBOX"], limit=RESYNC_LIMIT
        )
        for message_id in reversed(ids):  # oldest first, so threads form in order
            await self._ingest(mailbox, message_id, counts)
        async with unit_of_work(self._sessions) as session:
            await log_event(
                session,
                "gmail.full_resync",
                user_id=mailbox.user_id,
                entity="connection",
                entity_id=mailbox.connection_id,
                payload={"messages": len(ids), "ingested": counts.ingested},
            )
        return profile.history_id

    async def _ingest(self, mailbox: Mailbox, gmail_id: str, counts: _Counts) -> None:
        activity.heartbeat(gmail_id)
        counts.seen += 1
        try:
            message = await mailbox.client.get_raw(gmail_id)
        except IntegrationError as exc:
            if exc.retryable:
                raise
            log.info("gmail message vanished before it was read", extra={"id": gmail_id})
            return
        if not wanted(message.label_ids):
            return
        try:
            parsed = await asyncio.to_thread(parse_email, message.raw)
        except (MalformedEmailError, EmailTooLargeError) as exc:
            # Unreadable mail must not stop the mailbox: recorded, and the sync goes on.
            async with unit_of_work(self._sessions) as session:
                await log_event(
                    session,
                    "gmail.message_unreadable",
                    user_id=mailbox.user_id,
                    entity="connection",
                    entity_id=mailbox.connection_id,
                    payload={"gmail_id": gmail_id, "error": str(exc)},
                )
            return
        if parsed.from_address.lower() == mailbox.metadata.email_address.lower():
            return  # the merchant's own mail to itself, or a copy of our reply
        async with self._sessions() as session:
            stored = await ingest_parsed(
                session,
                self._sessions,
                activity.client(),
                self._settings,
                mailbox.user_id,
                message.raw,
                parsed,
                task_queue=activity.info().task_queue,
                channel="gmail",
                origin=MessageOrigin(
                    connection_id=mailbox.connection_id,
                    channel_message_id=message.id,
                    channel_thread_id=message.thread_id,
                ),
            )
        if stored.created:
            counts.ingested += 1

    async def _save_position(self, connection_id: uuid.UUID, history_id: int) -> None:
        async with unit_of_work(self._sessions) as session:
            await update_gmail(
                session,
                connection_id,
                history_id=history_id,
                last_sync_at=datetime.now(UTC),
                last_error=None,
            )

    async def _record_error(self, connection_id: uuid.UUID, user_id: uuid.UUID, error: str) -> None:
        async with unit_of_work(self._sessions) as session:
            _, metadata = await load_gmail(session, connection_id, lock=True)
            if metadata.last_error == error:
                return  # already said: one event per failure, not one per poll
            await update_gmail(session, connection_id, last_error=error)
            await log_event(
                session,
                "gmail.sync_failed",
                user_id=user_id,
                entity="connection",
                entity_id=connection_id,
                payload={"error": error},
            )
