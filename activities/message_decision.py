"""Recording a decision on a PENDING action, and reminding that one is waiting.

An approval is checked against the order as last read and reserves the reply's email in
the same transaction, so an approval that could not be carried out leaves the action
PENDING, and the store never acts for a reply the plan cannot send."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.message_records import action_of
from domain.decision_check import edited_keys
from kernel.enums import ActionStatus
from kernel.errors import Conflict
from models.action_log import log_action_event, transition
from models.db import unit_of_work
from models.order import Order
from services.decisions import check_decision
from services.email_quota import reserve_email
from workflows.contracts import (
    RECORD_DECISION,
    REMIND,
    ActionRef,
    DecisionInput,
)


class DecisionStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn(name=RECORD_DECISION)
    async def record_decision(self, data: DecisionInput) -> ActionStatus:
        """PENDING → APPROVED or REJECTED, once. Repeating the same decision is a no-op."""
        target = ActionStatus.APPROVED if data.decision == "approve" else ActionStatus.REJECTED
        async with unit_of_work(self._sessions) as session:
            action = await action_of(session, data.user_id, data.action_id, lock=True)
            if action.status == target:
                return target
            if action.status != ActionStatus.PENDING:
                raise Conflict(f"action is already {action.status.value}")
            changes: dict[str, Any] = {}
            if target is ActionStatus.APPROVED:
                order = await session.get(Order, action.order_id) if action.order_id else None
                check_decision(action, order, data.reply, data.payload)
                await reserve_email(session, data.user_id, action.id)
                changes.update(data.payload or {})
                if data.reply is not None:
                    changes["reply"] = data.reply
            edited = edited_keys(action.payload, changes)
            if changes:
                action.payload = {**action.payload, **changes}
            await transition(
                session,
                action,
                target,
                f"action.{target.value.lower()}",
                {"by": data.decided_by, "reason": data.reason, "edited": edited},
            )
            return target

    @activity.defn(name=REMIND)
    async def remind(self, data: ActionRef) -> None:
        async with unit_of_work(self._sessions) as session:
            await log_action_event(
                session,
                "action.reminder",
                data.user_id,
                data.action_id,
                {"message": "a suggestion has been waiting for a decision"},
            )
