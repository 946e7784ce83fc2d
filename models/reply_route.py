"""Which door a reply leaves by: the connection the customer's message came in on.

Mail to an alias is answered from that alias over SMTP; mail synced from Gmail is
answered from that mailbox through Gmail's API, in the same Gmail thread. A message
from the HTTP ingest has no connection: it is answered from the merchant's first
alias, else its first Gmail mailbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ConnectionType
from models.connection import Connection, CustomEmailMetadata
from models.conversation import Message
from models.gmail import GmailMetadata


@dataclass(frozen=True)
class ReplyRoute:
    via: Literal["smtp", "gmail"]
    sender_address: str
    connection_id: uuid.UUID
    store_name: str | None = None
    support_email: str | None = None  # Reply-To, when the store answers from elsewhere
    disabled: bool = False
    thread_id: str | None = None  # the provider's thread to reply in


def _route(connection: Connection, message: Message) -> ReplyRoute | None:
    if not connection.metadata_:
        return None
    if connection.type == ConnectionType.CUSTOM_EMAIL:
        alias = CustomEmailMetadata.model_validate(connection.metadata_)
        return ReplyRoute(
            via="smtp",
            sender_address=str(alias.alias),
            connection_id=connection.id,
            store_name=alias.store_name,
            support_email=str(alias.support_email) if alias.support_email else None,
            disabled=alias.disabled,
        )
    if connection.type == ConnectionType.GMAIL:
        gmail = GmailMetadata.model_validate(connection.metadata_)
        same_mailbox = message.connection_id == connection.id
        return ReplyRoute(
            via="gmail",
            sender_address=str(gmail.email_address),
            connection_id=connection.id,
            store_name=gmail.store_name,
            support_email=str(gmail.support_email) if gmail.support_email else None,
            disabled=gmail.disabled,
            thread_id=message.channel_thread_id if same_mailbox else None,
        )
    return None


async def reply_route(session: AsyncSession, message: Message) -> ReplyRoute | None:
    """None: the merchant has no mail connection (the reply goes out through whatever
    relay the worker has, from a support@ address of the domain it was sent to)."""
    route = await _chosen_route(session, message)
    if route is not None and route.store_name is None:
        # A Gmail mailbox does not know the store's name; the merchant's alias may.
        route = replace(route, store_name=await _any_store_name(session, message.user_id))
    return route


async def _any_store_name(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    names = await session.execute(
        select(Connection.metadata_.op("->>")("storeName"))
        .where(Connection.user_id == user_id)
        .order_by(Connection.created_at)
    )
    return next((name for name in names.scalars() if name), None)


async def _chosen_route(session: AsyncSession, message: Message) -> ReplyRoute | None:
    if message.connection_id is not None:
        connection = await session.get(Connection, message.connection_id)
        if connection is not None and connection.user_id == message.user_id:
            route = _route(connection, message)
            if route is not None:
                return route
    for kind in (ConnectionType.CUSTOM_EMAIL, ConnectionType.GMAIL):
        connection = (
            await session.execute(
                select(Connection)
                .where(Connection.user_id == message.user_id, Connection.type == kind)
                .order_by(Connection.created_at)
                .limit(1)
            )
        ).scalar_one_or_none()
        if connection is not None and (route := _route(connection, message)) is not None:
            return route
    return None


async def store_name(session: AsyncSession, message: Message) -> str | None:
    route = await reply_route(session, message)
    return route.store_name if route else None
