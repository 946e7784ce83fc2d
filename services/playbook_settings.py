"""Changing a merchant's playbooks: their rules (validated together, stored normalised) and
their flags, each change in the audit log."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_rules import PlaybookRules
from kernel.errors import NotFound
from models.event import log_event
from models.playbook import Playbook


class PlaybookRulesIn(BaseModel):
    trigger: Any
    conditions: Any
    actions: Any
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    requires_approval: bool | None = None


class PlaybookPatch(BaseModel):
    enabled: bool | None = None
    requires_approval: bool | None = None


async def list_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    rows = await session.execute(
        select(Playbook).where(Playbook.user_id == user_id).order_by(Playbook.name, Playbook.id)
    )
    return list(rows.scalars())


async def get_playbook(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, *, lock: bool = False
) -> Playbook:
    query = select(Playbook).where(Playbook.id == playbook_id, Playbook.user_id == user_id)
    if lock:
        query = query.with_for_update()
    playbook = (await session.execute(query)).scalar_one_or_none()
    if playbook is None:
        raise NotFound("playbook not found")
    return playbook


async def update_playbook_rules(
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    rules: PlaybookRulesIn,
) -> Playbook:
    """Validate the three documents together and store their normalised form."""
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    # A PlaybookRuleError answers 422 with the part and the reason.
    parsed = PlaybookRules.parse(rules.trigger, rules.conditions, rules.actions)
    playbook.trigger, playbook.conditions, playbook.actions = parsed.to_json()
    if rules.confidence_threshold is not None:
        playbook.confidence_threshold = rules.confidence_threshold
    if rules.requires_approval is not None:
        playbook.requires_approval = rules.requires_approval
    await log_event(
        session, "playbook.updated", user_id=user_id, entity="playbook", entity_id=playbook.id
    )
    await session.flush()
    await session.refresh(playbook)
    return playbook


async def patch_playbook_flags(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, patch: PlaybookPatch
) -> Playbook:
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    if patch.enabled is not None and patch.enabled != playbook.enabled:
        playbook.enabled = patch.enabled
        await log_event(
            session,
            "playbook.enabled" if patch.enabled else "playbook.disabled",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
        )
    if (
        patch.requires_approval is not None
        and patch.requires_approval != playbook.requires_approval
    ):
        playbook.requires_approval = patch.requires_approval
        await log_event(
            session,
            "playbook.updated",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
            payload={"requires_approval": patch.requires_approval},
        )
    await session.flush()
    await session.refresh(playbook)
    return playbook
