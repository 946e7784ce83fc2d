"""How an Action changes state: the new status and its Event, in one transaction.

Every step that moves an action (prepare, decision, execution, failure) goes through
`transition`, so the audit log can never miss a status change, and
`threads.needs_decision` follows any change into or out of PENDING.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ActionStatus
from models.action import Action
from models.event import log_event
from models.thread_state import refresh_for_action


async def log_action_event(
    session: AsyncSession,
    event: str,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    payload: dict[str, Any] | None = None,
) -> None:
    """An Event about an action that does not change its status (a reminder, a sent reply)."""
    await log_event(
        session, event, user_id=user_id, entity="action", entity_id=action_id, payload=payload
    )


async def transition(
    session: AsyncSession,
    action: Action,
    status: ActionStatus,
    event: str,
    payload: dict[str, Any] | None = None,
    *,
    error: str | None = None,
) -> None:
    previous = action.status
    action.status = status
    if error is not None:
        action.error = error
    if status == ActionStatus.EXECUTED:
        action.executed_at = datetime.now(UTC)
    if ActionStatus.PENDING in (previous, status):
        await refresh_for_action(session, action.id)
    await log_action_event(session, event, action.user_id, action.id, payload)
