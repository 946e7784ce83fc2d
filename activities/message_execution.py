"""Executing an approved action in the store, exactly once, and recording how it ended."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.heartbeat import heartbeating
from activities.message_records import action_of, shop_of
from domain.order_rules import why_not_allowed
from integrations.ports import ShopifyPort
from kernel.enums import REPLY_ONLY, ActionStatus, ActionType
from kernel.errors import Conflict, IntegrationError, Refused
from kernel.values import OrderSnapshot, ShopTarget
from models.action_log import log_action_event, transition
from models.db import unit_of_work
from models.order import Order
from services.email_quota import release_email, reserve_email
from workflows.contracts import (
    EXECUTE_ACTION,
    FINISH,
    MARK_FAILED,
    ActionRef,
    FailInput,
    FinishInput,
)


def idempotency_key(action_id: uuid.UUID) -> str:
    """Shopify returns the first result for a repeated key: a retried refund refunds once."""
    return f"deskpilot-action-{action_id}"


class ExecutionStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], shopify: ShopifyPort) -> None:
        self._sessions = sessions
        self._shopify = shopify

    @activity.defn(name=EXECUTE_ACTION)
    async def execute_action(self, data: ActionRef) -> dict[str, Any]:
        """Re-read the order, check the action still holds, perform it once in the store.

        A store's refusal is final (the worker maps it to a non-retryable error); a store
        that cannot be reached is retried."""
        async with heartbeating():
            return await self._execute(data)

    async def _execute(self, data: ActionRef) -> dict[str, Any]:
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id)
            if action.status != ActionStatus.APPROVED:
                raise Conflict(f"action is {action.status.value}, not APPROVED")
            # Taken at approval; an action approved before reservations existed takes it
            # now, so the store never acts for a reply the plan cannot send.
            await reserve_email(session, data.user_id, action.id)
            if action.type in REPLY_ONLY:
                return {}
            if "outcome" in action.payload:  # performed and recorded by an earlier attempt
                return action.payload["outcome"]
            order = await session.get(Order, action.order_id) if action.order_id else None
            if order is None:
                raise Refused("the action has no order to act on")
            shop = await shop_of(session, order)
            action_type, payload, order_gid = action.type, dict(action.payload), order.shopify_id

        prepared = payload.get("prepared")
        if prepared is None:
            # A refund's plan reads Shopify's suggestedRefund, which bounds it by what the
            # order can still refund now: reading the order's state first checks nothing
            # more and costs the store a query. Only a replacement checks the lines.
            if action_type is not ActionType.REFUND:
                snapshot = await self._current_order(
                    shop, order_gid, line_items=action_type is ActionType.REPLACE_ITEM
                )
                problem = why_not_allowed(action_type, payload, snapshot)
                if problem is not None:
                    raise Refused(problem)
            prepared = await self._shopify.prepare(shop, order_gid, action_type, payload)
            # Committed before the store is called: a retry after a crash must neither
            # re-check the order nor re-plan the request, since our own first call may
            # already have changed the order (a refunded order has nothing left to
            # refund). It sends this same request under the same idempotency key, and
            # Shopify returns the first result instead of acting twice.
            async with unit_of_work(self._sessions) as session:
                action = await action_of(session, data.user_id, data.action_id, lock=True)
                action.payload = {
                    **action.payload,
                    "prepared": prepared,
                    "performing_since": datetime.now(UTC).isoformat(),
                }
        # Heartbeats while the store keeps us waiting: the workflow gives this step a long
        # timeout but notices a dead worker by its missing heartbeats.
        outcome = await self._shopify.perform(
            shop,
            order_gid,
            action_type,
            prepared,
            idempotency_key(data.action_id),
            progress=activity.heartbeat,
        )

        result = outcome.model_dump(mode="json")
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            action.payload = {**action.payload, "outcome": result}
            await log_action_event(
                session,
                "action.performed",
                data.user_id,
                action.id,
                {"type": action_type.value, "reference": outcome.reference},
            )
        return result

    async def _current_order(
        self, shop: ShopTarget, order_gid: str, *, line_items: bool
    ) -> OrderSnapshot:
        try:
            return await self._shopify.get_order(shop, order_gid, line_items=line_items)
        except IntegrationError as exc:
            if exc.retryable:
                raise
            raise Refused(str(exc)) from exc  # the order is gone: the action no longer holds

    @activity.defn(name=FINISH)
    async def finish(self, data: FinishInput) -> ActionStatus:
        """End an action whose reply failed (a sent reply ends it in the reply step), or
        one of a run started before the reply step did."""
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            if action.status != ActionStatus.EXECUTED:
                if data.reply_error:
                    await release_email(session, action.id)
                    action.error = f"reply not sent: {data.reply_error}"
                    await log_action_event(
                        session,
                        "reply.failed",
                        data.user_id,
                        action.id,
                        {"error": data.reply_error},
                    )
                await transition(
                    session,
                    action,
                    ActionStatus.EXECUTED,
                    "action.executed",
                    {"type": action.type.value},
                )
            return action.status

    @activity.defn(name=MARK_FAILED)
    async def mark_failed(self, data: FailInput) -> ActionStatus:
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            if action.status not in (ActionStatus.EXECUTED, ActionStatus.FAILED):
                await release_email(session, action.id)
                await transition(
                    session,
                    action,
                    ActionStatus.FAILED,
                    "action.failed",
                    {"error": data.error},
                    error=data.error,
                )
            return action.status
