"""Testing a playbook on a message: what it would do now, and why, changing nothing.

The facts and the safety context are the engine's own (services.playbook_facts), and the
verdict is the domain's (domain.playbook_engine.evaluate), so a test answers as a run would.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_engine import Blocker, ConditionResult, TriggerEvent, evaluate
from services.playbook_facts import message_context, playbook_view
from services.playbook_settings import get_playbook


class DryRunIn(BaseModel):
    message_id: uuid.UUID


class DryRunOut(BaseModel):
    would_run: bool = Field(description="its trigger and conditions hold, and automation is on")
    trigger_matched: bool
    matched: bool = Field(description="enabled, not run in the thread already if once, and held")
    auto_approve: bool = Field(description="its approve_suggestion would approve on its own")
    event: TriggerEvent = Field(description="what the message is, as the trigger sees it")
    conditions: list[ConditionResult]  # each with the fact's actual value (null: unknown)
    actions: list[dict[str, Any]]  # the action documents, in order
    blocked_by: list[Blocker]  # why it would stop, or why a person must approve


async def dry_run(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, message_id: uuid.UUID
) -> DryRunOut:
    """The verdict for the merchant's playbook on the merchant's message (either another
    merchant's: 404). Reading the facts may store first-use defaults (the automation
    settings), so the session's transaction is rolled back: a test leaves no trace."""
    try:
        playbook = await get_playbook(session, user_id, playbook_id)
        context = await message_context(session, user_id, message_id)
        verdict = evaluate(playbook_view(playbook), context.event, context.facts, context.safety)
    finally:
        await session.rollback()
    return DryRunOut(
        would_run=verdict.would_run,
        trigger_matched=verdict.trigger_matched,
        matched=verdict.matched,
        auto_approve=verdict.auto_approve,
        event=context.event,
        conditions=verdict.conditions,
        actions=verdict.actions,
        blocked_by=verdict.blocked_by,
    )
