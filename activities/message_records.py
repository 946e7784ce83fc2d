"""The rows every MessageWorkflow step starts from, scoped to the merchant."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.errors import NotFound
from kernel.values import ShopTarget
from models.action import Action
from models.connection import Connection
from models.conversation import Message
from models.order import Order


async def message_of(session: AsyncSession, user_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    message = (
        await session.execute(
            select(Message).where(Message.id == message_id, Message.user_id == user_id)
        )
    ).scalar_one_or_none()
    if message is None:
        raise NotFound(f"message {message_id} not found for this merchant")
    return message


async def action_of(
    session: AsyncSession, user_id: uuid.UUID, action_id: uuid.UUID, *, lock: bool = False
) -> Action:
    query = select(Action).where(Action.id == action_id, Action.user_id == user_id)
    if lock:
        query = query.with_for_update()
    action = (await session.execute(query)).scalar_one_or_none()
    if action is None:
        raise NotFound(f"action {action_id} not found for this merchant")
    return action


async def shop_of(session: AsyncSession, order: Order) -> ShopTarget:
    connection = await session.get(Connection, order.connection_id)
    if connection is None:
        raise NotFound(f"the store of order {order.name} is no longer connected")
    api_base = (connection.metadata_ or {}).get("apiBase")
    return ShopTarget(
        shop_domain=order.shop_domain, access_token=connection.access_token, api_base=api_base
    )
