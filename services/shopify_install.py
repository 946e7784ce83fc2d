"""After a Shopify install's OAuth checks: the store attached to its merchant, or, for an
install launched from Shopify by someone with no deskpilot account, that account opened.

An account is opened only for an owner email no account has: signing in to an existing
account because a store names its address would hand that account to whoever made the
store. `attach_shop` and `open_account_for_shop` write in the caller's transaction, and a
refusal leaves nothing written; `attach_for_nobody` and `register_webhooks` commit their own.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ConnectionType
from kernel.errors import Conflict
from kernel.values import ShopTarget
from models.connection import Connection
from models.db import unit_of_work
from models.event import log_event
from services.accounts import AccountError, create_user, find_user

log = logging.getLogger(__name__)


class ShopTakenError(Conflict):
    code = "shop_taken"

    def __init__(self, shop: str) -> None:
        super().__init__(f"{shop} is already connected to another deskpilot account")


class AccountExistsError(Conflict):
    """The shop is new but its owner's email is an account's: signing in to that account
    on the shop's word would give it to whoever made the shop."""

    code = "account_exists"

    def __init__(self, shop: str) -> None:
        super().__init__(
            f"an account with the email of {shop}'s owner already exists: sign in to it, "
            "then add the store from the connections page"
        )


async def shop_owner(session: AsyncSession, shop: str) -> uuid.UUID | None:
    """The merchant whose SHOPIFY connection this shop is, if any."""
    return (
        await session.execute(
            select(Connection.user_id).where(
                Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop
            )
        )
    ).scalar_one_or_none()


async def attach_shop(
    session: AsyncSession,
    user_id: uuid.UUID,
    shop: str,
    *,
    token: str,
    scope: str,
    api_base: str,
) -> uuid.UUID:
    """The merchant's SHOPIFY connection for `shop` with this token (a reinstall refreshes
    it and re-enables the store); ShopTakenError when another merchant has the shop."""
    connection = (
        await session.execute(
            select(Connection)
            .where(Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if connection is not None and connection.user_id != user_id:
        raise ShopTakenError(shop)
    reinstall = connection is not None
    if connection is None:
        connection = Connection(user_id=user_id, type=ConnectionType.SHOPIFY, shop_domain=shop)
        session.add(connection)
    metadata = {k: v for k, v in (connection.metadata_ or {}).items() if k != "disabled"}
    connection.access_token = token
    connection.metadata_ = metadata | {"scope": scope, "apiBase": api_base}
    await session.flush()
    await log_event(
        session,
        "shopify.installed",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"shop_domain": shop, "scope": scope, "reinstall": reinstall},
    )
    return connection.id


async def open_account_for_shop(
    session: AsyncSession,
    owner_email: str,
    shop: str,
    *,
    token: str,
    scope: str,
    api_base: str,
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """A new account for the shop's owner (unverified, no password; the trial and default
    playbooks of every account) with the shop attached: (user id, connection id). None
    when an account already has that email: nothing is written then."""
    if await find_user(session, owner_email) is not None:
        return None
    try:
        user = await create_user(session, owner_email)
    except AccountError:
        if await find_user(session, owner_email) is not None:  # made meanwhile
            return None
        raise
    connection_id = await attach_shop(
        session, user.id, shop, token=token, scope=scope, api_base=api_base
    )
    await log_event(
        session,
        "user.created_from_shopify",
        user_id=user.id,
        entity="user",
        entity_id=user.id,
        payload={"shop_domain": shop},
    )
    return user.id, connection_id


async def attach_for_nobody(
    sessions: async_sessionmaker[AsyncSession], target: ShopTarget, scope: str
) -> tuple[uuid.UUID, uuid.UUID, bool]:
    """An install begun by nobody signed in, its token in `target`: (merchant, connection,
    account just opened). The shop's merchant if it has one, else a new account for the
    owner's email (AccountExistsError when an account has that email)."""
    shop, token, base = target.shop_domain, target.access_token, target.api_base or ""
    async with unit_of_work(sessions) as session:
        owner = await shop_owner(session, shop)
        if owner is not None:
            connection_id = await attach_shop(
                session, owner, shop, token=token, scope=scope, api_base=base
            )
            return owner, connection_id, False
    admin = ShopifyAdmin()
    try:
        email = await admin.shop_owner_email(target)
    finally:
        await admin.aclose()
    async with unit_of_work(sessions) as session:
        opened = await open_account_for_shop(
            session, email, shop, token=token, scope=scope, api_base=base
        )
    if opened is None:
        raise AccountExistsError(shop)
    return opened[0], opened[1], True


async def register_webhooks(
    sessions: async_sessionmaker[AsyncSession],
    target: ShopTarget,
    topics: tuple[str, ...],
    callback_url: str,
    user_id: uuid.UUID,
    connection_id: uuid.UUID,
) -> dict[str, str]:
    """Subscribes the shop to `topics`; topic → outcome, recorded as an Event. A failed
    subscription does not undo the install: it is reported."""
    admin = ShopifyAdmin()
    try:
        webhooks = await admin.subscribe_webhooks(target, topics, callback_url)
    finally:
        await admin.aclose()
    failed = {t: o for t, o in webhooks.items() if o not in ("registered", "exists")}
    async with unit_of_work(sessions) as session:
        await log_event(
            session,
            "shopify.webhooks_failed" if failed else "shopify.webhooks_registered",
            user_id=user_id,
            entity="connection",
            entity_id=connection_id,
            payload={"outcomes": webhooks},
        )
    if failed:
        log.warning(
            "some webhooks were not registered", extra={"shop": target.shop_domain, **failed}
        )
    return webhooks
