"""The built-in SMTP receiver for merchants' forwarding aliases (aiosmtpd).

It accepts mail only for the alias of an enabled CUSTOM_EMAIL connection at the
configured inbound domain (it is not an open relay), refuses mail over the size
limit (the SIZE extension, then 552), and hands every accepted message to the
ingest step the HTTP endpoint uses: parse, store, commit, start the workflow. An
alias's own test email (services.alias_test_email) is recorded as arrived instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from deskpilot.smtp_server import serve_smtp
from domain.mail.alias_test import header_token
from domain.mail.mime import MAX_EMAIL_BYTES, EmailTooLargeError, MalformedEmailError, parse_email
from kernel.enums import ConnectionType
from kernel.settings import Settings
from models.connection import Connection
from models.db import unit_of_work
from services.alias_test_email import record_test_arrival
from services.inbox import MessageOrigin
from services.ingest import ingest_parsed
from workflows.contracts import TASK_QUEUE

log = logging.getLogger(__name__)

TRY_LATER = "451 4.3.0 Temporary failure, please try again later"


@dataclass(frozen=True)
class AliasOwner:
    user_id: uuid.UUID
    connection_id: uuid.UUID
    disabled: bool


def _alias_key() -> ColumnElement[Any]:
    # The same expression as the unique index uq_connections_custom_email_alias.
    return func.lower(Connection.metadata_.op("->>")("alias"))


class InboundSmtpHandler:
    """aiosmtpd handler (it calls the handle_* hooks by name): RCPT checks the alias,
    DATA ingests once per owner."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        temporal: Client | None,
        settings: Settings,
        *,
        task_queue: str = TASK_QUEUE,
    ) -> None:
        self._sessions = sessions
        self._temporal = temporal
        self._settings = settings
        self._domain = settings.inbound_domain.lower()
        self._task_queue = task_queue

    async def owners(self, addresses: Iterable[str]) -> dict[str, AliasOwner]:
        """The owner of each known alias among `addresses`, keyed by the lowercased address."""
        wanted = {address.lower() for address in addresses}
        if not wanted:
            return {}
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        _alias_key(), Connection.user_id, Connection.id, Connection.metadata_
                    ).where(
                        Connection.type == ConnectionType.CUSTOM_EMAIL,
                        _alias_key().in_(wanted),
                    )
                )
            ).all()
        return {
            alias: AliasOwner(user_id, connection_id, bool((metadata or {}).get("disabled")))
            for alias, user_id, connection_id, metadata in rows
        }

    async def _is_test(self, connection_ids: list[uuid.UUID], token: str) -> bool:
        """Whether the mail is the test email of one of these aliases (then recorded)."""
        async with unit_of_work(self._sessions) as db:
            for connection_id in connection_ids:
                if await record_test_arrival(db, connection_id, token, datetime.now(UTC)):
                    log.info(
                        "alias test email arrived", extra={"connection_id": str(connection_id)}
                    )
                    return True
        return False

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        _, at, domain = address.rpartition("@")
        if not at or domain.lower() != self._domain:
            return f"550 5.7.1 <{address}>: relaying denied; only @{self._domain} is served here"
        try:
            owner = (await self.owners([address])).get(address.lower())
        except Exception:
            log.exception("alias lookup failed", extra={"rcpt": address})
            return TRY_LATER
        if owner is None:
            return f"550 5.1.1 <{address}>: no such alias"
        if owner.disabled:
            # A disabled connection receives nothing; a permanent answer stops the forwarding.
            return f"550 5.2.1 <{address}>: this alias is disabled"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which serve_smtp never sets
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            # Off the event loop: the receiver keeps answering while a large message parses.
            parsed = await asyncio.to_thread(parse_email, raw)
        except EmailTooLargeError as exc:
            return f"552 5.3.4 {exc}"
        except MalformedEmailError as exc:
            return f"550 5.6.0 the message cannot be read: {exc}"
        try:
            # Re-checked at DATA: a connection disabled since RCPT receives nothing.
            owners = await self.owners(envelope.rcpt_tos)
            # Two aliases of one owner are one message for that owner, answered from the
            # first of them in the envelope.
            by_owner: dict[uuid.UUID, list[uuid.UUID]] = {}
            for address in envelope.rcpt_tos:
                owner = owners.get(address.lower())
                if owner is not None and not owner.disabled:
                    by_owner.setdefault(owner.user_id, []).append(owner.connection_id)
            if not by_owner:
                return "550 5.1.1 none of the recipients is an enabled alias"
            token = header_token(parsed.headers)
            for user_id, connection_ids in sorted(by_owner.items(), key=lambda kv: kv[0].hex):
                if token is not None and await self._is_test(connection_ids, token):
                    continue  # an alias's test email: recorded as arrived, not a thread
                async with self._sessions() as db:
                    stored = await ingest_parsed(
                        db,
                        self._sessions,
                        self._temporal,
                        self._settings,
                        user_id,
                        raw,
                        parsed,
                        task_queue=self._task_queue,
                        channel="smtp",
                        origin=MessageOrigin(connection_id=connection_ids[0]),
                    )
                log.info(
                    "smtp message accepted",
                    extra={"workflow_id": stored.workflow_id, "message_id": str(stored.message_id)},
                )
        except Exception:
            # Storing failed: the sender keeps the message and retries; a redelivery to an
            # owner that did store it is recognised by its Message-ID.
            log.exception("smtp ingest failed", extra={"message_id": parsed.message_id})
            return TRY_LATER
        return "250 2.0.0 OK: queued"


@contextlib.asynccontextmanager
async def smtp_receiver(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client | None,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    task_queue: str = TASK_QUEUE,
    max_bytes: int = MAX_EMAIL_BYTES,
) -> AsyncIterator[int]:
    """Run the receiver until the block exits; yields its port (port 0 picks a free one)."""
    handler = InboundSmtpHandler(sessions, temporal, settings, task_queue=task_queue)
    async with serve_smtp(
        handler,
        host if host is not None else settings.smtp_receiver_host,
        port if port is not None else settings.smtp_receiver_port,
        data_size_limit=max_bytes,
        hostname=settings.inbound_domain,
    ) as bound:
        yield bound
