"""A connected Gmail mailbox: its GMAIL Connection, tokens (encrypted by the column type)
and sync state kept in `metadata`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.email_address import EmailAddress
from kernel.enums import ConnectionType
from kernel.errors import Conflict, NotFound
from models.connection import Connection
from models.event import log_event


class GmailMetadata(BaseModel):
    """`metadata` of a GMAIL connection, camelCase like the other connections'."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    email_address: EmailAddress
    api_base: str | None = None  # None: Google's; set for the sandbox
    scopes: list[str] = []
    token_expires_at: datetime | None = None
    # Sync from here on: Gmail's history id after the last complete sync.
    history_id: int | None = None
    last_sync_at: datetime | None = None
    watch_expiration: datetime | None = None
    watch_renewed_at: datetime | None = None
    last_error: str | None = None
    disabled: bool = False
    store_name: str | None = None
    support_email: EmailAddress | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class GmailAlreadyConnected(Conflict):
    """The address is connected to another merchant: a push must route to one owner."""


class GmailConnectionGone(NotFound):
    """The connection was removed or is not a Gmail one."""


def _address_key() -> ColumnElement[Any]:
    # The same expression as the unique index uq_connections_gmail_address.
    return func.lower(Connection.metadata_.op("->>")("emailAddress"))


async def load_gmail(
    session: AsyncSession, connection_id: uuid.UUID, *, lock: bool = False
) -> tuple[Connection, GmailMetadata]:
    query = select(Connection).where(
        Connection.id == connection_id, Connection.type == ConnectionType.GMAIL
    )
    if lock:
        query = query.with_for_update()
    connection = (await session.execute(query)).scalar_one_or_none()
    if connection is None or not connection.metadata_:
        raise GmailConnectionGone(f"Gmail connection {connection_id} does not exist")
    return connection, GmailMetadata.model_validate(connection.metadata_)


async def update_gmail(
    session: AsyncSession,
    connection_id: uuid.UUID,
    *,
    access_token: str | None = None,
    refresh_token: str | None = None,
    **changes: Any,
) -> GmailMetadata:
    """Merge `changes` (GmailMetadata field names) under a row lock: a token refresh by
    a reply and a sync saving its history id must not undo each other."""
    connection, metadata = await load_gmail(session, connection_id, lock=True)
    updated = metadata.model_copy(update=changes)
    connection.metadata_ = (connection.metadata_ or {}) | updated.to_json()
    for key in GmailMetadata.model_fields:
        alias = to_camel(key)
        if key in changes and changes[key] is None:
            connection.metadata_.pop(alias, None)
    if access_token is not None:
        connection.access_token = access_token
    if refresh_token is not None:
        connection.refresh_token = refresh_token
    await session.flush()
    return updated


async def find_gmail_by_address(session: AsyncSession, address: str) -> Connection | None:
    return (
        await session.execute(
            select(Connection).where(
                Connection.type == ConnectionType.GMAIL, _address_key() == address.lower()
            )
        )
    ).scalar_one_or_none()


async def enabled_gmail_connections(session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(connection id, owner) of every Gmail mailbox that should be syncing."""
    rows = await session.execute(
        select(Connection.id, Connection.user_id, Connection.metadata_).where(
            Connection.type == ConnectionType.GMAIL
        )
    )
    return [(cid, uid) for cid, uid, meta in rows if not (meta or {}).get("disabled")]


async def connect_gmail(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    email_address: str,
    access_token: str,
    refresh_token: str | None,
    token_expires_at: datetime,
    scopes: list[str],
    history_id: int,
    api_base: str | None,
    keep_position: bool = True,
) -> uuid.UUID:
    """Create or refresh the merchant's connection for this mailbox. A reconnect keeps the
    sync position (mail that arrived meanwhile is still picked up) unless told not to,
    and re-enables it."""
    existing = (
        await session.execute(
            select(Connection)
            .where(Connection.type == ConnectionType.GMAIL, _address_key() == email_address.lower())
            .with_for_update()
        )
    ).scalar_one_or_none()
    if existing is not None and existing.user_id != user_id:
        raise GmailAlreadyConnected(
            f"{email_address} is already connected to another deskpilot account"
        )
    if existing is None:
        metadata = GmailMetadata(email_address=email_address, history_id=history_id)
        connection = Connection(user_id=user_id, type=ConnectionType.GMAIL)
        session.add(connection)
    else:
        connection = existing
        metadata = GmailMetadata.model_validate(
            existing.metadata_ or {"emailAddress": email_address}
        )
        if metadata.history_id is None or not keep_position:
            metadata.history_id = history_id
    metadata = metadata.model_copy(
        update={
            "api_base": api_base,
            "scopes": scopes,
            "token_expires_at": token_expires_at,
            "disabled": False,
            "last_error": None,
        }
    )
    connection.metadata_ = metadata.to_json()
    connection.access_token = access_token
    # Google sends a refresh token with the first consent; keep the one we have otherwise.
    if refresh_token is not None:
        connection.refresh_token = refresh_token
    await session.flush()
    await log_event(
        session,
        "gmail.connected",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"email_address": email_address, "reconnect": existing is not None},
    )
    return connection.id
