"""A merchant's connections (stores, mailboxes, aliases): what they may see of them, and
switching one on or off, with what that means for its running workflows."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from kernel.enums import ConnectionType
from kernel.errors import NotFound
from kernel.settings import Settings
from models.connection import Connection, CustomEmailMetadata
from models.event import log_event
from models.gmail import GmailMetadata, update_gmail
from services.mailbox_workflows import ensure_mailbox_sync
from workflows.mailbox_contracts import DISCONNECT_SIGNAL, mailbox_workflow_id

logger = logging.getLogger(__name__)


class ConnectionOut(BaseModel):
    """What a merchant may see of a connection: never its tokens."""

    id: uuid.UUID
    type: ConnectionType
    enabled: bool
    label: str  # the shop domain, mailbox address or alias
    shop_domain: str | None = None
    email_address: str | None = None
    alias: str | None = None
    store_name: str | None = None
    support_email: str | None = None
    last_sync_at: datetime | None = None
    last_error: str | None = None
    # A forwarding alias's latest test email: asked for, sent, seen arriving.
    test_email_requested_at: datetime | None = None
    test_email_sent_at: datetime | None = None
    test_email_received_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


def connection_out(connection: Connection) -> ConnectionOut:
    meta = connection.metadata_ or {}
    out = ConnectionOut(
        id=connection.id,
        type=connection.type,
        enabled=not meta.get("disabled"),
        label=connection.shop_domain or "",
        shop_domain=connection.shop_domain,
        store_name=meta.get("storeName"),
        support_email=meta.get("supportEmail"),
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
    if connection.type == ConnectionType.GMAIL and meta:
        gmail = GmailMetadata.model_validate(meta)
        out.email_address = str(gmail.email_address)
        out.label = out.email_address
        out.last_sync_at = gmail.last_sync_at
        out.last_error = gmail.last_error
    elif connection.type == ConnectionType.CUSTOM_EMAIL and meta:
        alias = CustomEmailMetadata.model_validate(meta)
        out.alias = str(alias.alias)
        out.label = out.alias
        out.shop_domain = out.shop_domain or alias.shop_domain
        out.test_email_requested_at = alias.test_requested_at
        out.test_email_sent_at = alias.test_sent_at
        out.test_email_received_at = alias.test_received_at
    return out


async def list_connections(session: AsyncSession, user_id: uuid.UUID) -> list[ConnectionOut]:
    rows = await session.execute(
        select(Connection)
        .where(Connection.user_id == user_id)
        .order_by(Connection.type, Connection.created_at, Connection.id)
    )
    return [connection_out(c) for c in rows.scalars()]


async def owned_connection(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, *, lock: bool = False
) -> Connection:
    """The merchant's connection, else NotFound (another merchant's id reads as no such
    connection); `lock` holds its row until the caller commits."""
    query = select(Connection).where(Connection.id == connection_id, Connection.user_id == user_id)
    connection = (
        await session.execute(query.with_for_update() if lock else query)
    ).scalar_one_or_none()
    if connection is None:
        raise NotFound("connection not found")
    return connection


async def set_connection_enabled(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, enabled: bool
) -> Connection:
    """Flip `disabled` in the connection's metadata (what the webhook, SMTP and Gmail paths
    read) and log it; the caller commits, then calls `after_connection_change`."""
    connection = await owned_connection(session, user_id, connection_id, lock=True)
    if connection.type == ConnectionType.GMAIL:
        # Under update_gmail's row lock, so a concurrent sync's history id is not undone.
        await update_gmail(session, connection.id, disabled=not enabled)
    else:
        meta = dict(connection.metadata_ or {})
        meta["disabled"] = not enabled
        connection.metadata_ = meta
    await log_event(
        session,
        "connection.enabled" if enabled else "connection.disabled",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"type": connection.type.value},
    )
    await session.flush()
    await session.refresh(connection)
    return connection


async def after_connection_change(
    temporal: Client | None,
    settings: Settings,
    task_queue: str,
    connection: Connection,
    enabled: bool,
) -> None:
    """Start a re-enabled mailbox's sync, or tell a disabled one's to stop.

    Best effort: the change is committed already; without Temporal the reconciler starts
    enabled mailboxes at worker start, and a running sync sees `disabled` on its next round.
    """
    if connection.type != ConnectionType.GMAIL or temporal is None:
        return
    try:
        if enabled:
            await ensure_mailbox_sync(
                temporal, settings, connection.id, connection.user_id, task_queue=task_queue
            )
        else:
            handle = temporal.get_workflow_handle(mailbox_workflow_id(connection.id))
            await handle.signal(DISCONNECT_SIGNAL)
    except RPCError as exc:
        # Not running (nothing to stop) or Temporal unreachable: the next round settles it.
        logger.info(
            "mailbox sync not nudged", extra={"connection_id": str(connection.id)}, exc_info=exc
        )
