"""Forwarding aliases made and removed by the merchant: an alias answers for one of the
merchant's own Shopify stores, and removing one keeps the mail it brought in."""

from __future__ import annotations

import secrets
import uuid

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.alias_address import alias_address
from kernel.email_address import EmailAddress
from kernel.enums import ConnectionType
from kernel.errors import Conflict, Malformed
from models.connection import Connection, CustomEmailMetadata
from models.event import log_event
from services.connections import owned_connection

# A clash of the random tail is all but impossible; a few tries make it impossible in practice.
ALIAS_ATTEMPTS = 5


class AliasCreate(BaseModel):
    type: ConnectionType
    shop_domain: str = Field(min_length=1, max_length=255)
    support_email: EmailAddress  # the Reply-To of every answer sent from the alias
    store_name: str = Field(min_length=1, max_length=100)  # the From display name

    @field_validator("shop_domain", "store_name")
    @classmethod
    def _one_clean_line(cls, value: str) -> str:
        # The name goes into a From header: a control character could forge another header.
        value = value.strip()
        if not value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("must be one line of text, without control characters")
        return value


async def _own_shop(session: AsyncSession, user_id: uuid.UUID, shop_domain: str) -> Connection:
    shop = (
        await session.execute(
            select(Connection).where(
                Connection.user_id == user_id,
                Connection.type == ConnectionType.SHOPIFY,
                func.lower(Connection.shop_domain) == shop_domain.lower(),
            )
        )
    ).scalar_one_or_none()
    if shop is None:
        # The same answer whether the shop is another merchant's or nobody's.
        raise Malformed(
            f"{shop_domain!r} is not one of your connected Shopify stores; "
            "install the app on it first",
            code="unknown_shop",
        )
    return shop


async def create_alias(
    session: AsyncSession, user_id: uuid.UUID, body: AliasCreate, inbound_domain: str
) -> Connection:
    """A new CUSTOM_EMAIL connection with a generated alias on `inbound_domain`, logged;
    the caller commits."""
    if body.type != ConnectionType.CUSTOM_EMAIL:
        raise Malformed(
            f"only CUSTOM_EMAIL connections are created here, not {body.type.value}: "
            "a Shopify store connects through /shopify/install, a Gmail mailbox through "
            "/gmail/connect",
            code="unsupported_type",
        )
    shop = await _own_shop(session, user_id, body.shop_domain)
    for _ in range(ALIAS_ATTEMPTS):
        metadata = CustomEmailMetadata(
            alias=alias_address(body.store_name, inbound_domain),
            domain=inbound_domain.lower(),
            shop_domain=shop.shop_domain,
            support_email=body.support_email,
            store_name=body.store_name,
        )
        connection = Connection(
            user_id=user_id,
            type=ConnectionType.CUSTOM_EMAIL,
            # An alias has no vendor token; the column is required, so it holds a random one.
            access_token=secrets.token_urlsafe(24),
            shop_domain=shop.shop_domain,
            metadata_=metadata.to_json(),
        )
        try:
            # A savepoint: a clash on the alias index undoes this row only.
            async with session.begin_nested():
                session.add(connection)
        except IntegrityError:
            continue
        break
    else:
        raise Conflict("no free alias could be generated; try again")
    await log_event(
        session,
        "connection.created",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"type": connection.type.value, "alias": str(metadata.alias)},
    )
    await session.flush()
    await session.refresh(connection)
    return connection


async def delete_alias(session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID) -> str:
    """Remove one of the merchant's aliases, logged; returns its address. Its messages stay
    (messages.connection_id is ON DELETE SET NULL), and so do their threads. The caller
    commits."""
    connection = await owned_connection(session, user_id, connection_id, lock=True)
    if connection.type != ConnectionType.CUSTOM_EMAIL:
        # A store takes its orders with it and a mailbox has a running sync: those are
        # disabled (or uninstalled in Shopify), not deleted from here.
        raise Conflict(
            f"a {connection.type.value} connection can be disabled, not deleted; "
            "only forwarding aliases are deleted here"
        )
    address = str((connection.metadata_ or {}).get("alias", ""))
    await session.delete(connection)
    await log_event(
        session,
        "connection.deleted",
        user_id=user_id,
        entity="connection",
        entity_id=connection_id,
        payload={"type": connection.type.value, "alias": address},
    )
    await session.flush()
    return address
