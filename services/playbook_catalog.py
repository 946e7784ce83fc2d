"""A merchant's own playbooks: creating one (category CUSTOM) and deleting one. A default
playbook can be disabled (services.playbook_settings), never deleted."""

from __future__ import annotations

import uuid

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_rules import PlaybookRuleError, PlaybookRules
from kernel.enums import PlaybookCategory
from kernel.errors import Conflict
from kernel.values import STORABLE_TEXT, holds_nul
from models.event import log_event
from models.playbook import Playbook
from services.playbook_settings import PlaybookRulesIn, Priority, get_playbook


class PlaybookCreate(PlaybookRulesIn):
    """The rules (the same documents as PUT /rules) with the playbook's name and flags;
    a flag left out takes the safe default, a person approving."""

    name: str = Field(min_length=1, max_length=200, pattern=STORABLE_TEXT)
    description: str | None = Field(default=None, max_length=2_000, pattern=STORABLE_TEXT)
    confidence_threshold: float = Field(default=0.9, ge=0, le=1)
    requires_approval: bool = True
    enabled: bool = True
    priority: Priority = 100
    stop_processing: bool = Field(default=False, description="no later playbook runs after it")
    run_once_per_thread: bool = False


async def create_playbook(
    session: AsyncSession, user_id: uuid.UUID, body: PlaybookCreate
) -> Playbook:
    """Validate the rules together and store their normalised form; a PlaybookRuleError
    answers 422 with the part and the reason."""
    documents = PlaybookRules.parse(body.trigger, body.conditions, body.actions).to_json()
    for part, document in zip(("trigger", "conditions", "actions"), documents, strict=True):
        if holds_nul(document):
            raise PlaybookRuleError(f"{part}: text cannot contain the NUL character")
    trigger, conditions, actions = documents
    playbook = Playbook(
        user_id=user_id,
        name=body.name,
        description=body.description,
        category=PlaybookCategory.CUSTOM,
        trigger=trigger,
        conditions=conditions,
        actions=actions,
        confidence_threshold=body.confidence_threshold,
        requires_approval=body.requires_approval,
        enabled=body.enabled,
        priority=body.priority,
        stop_processing=body.stop_processing,
        run_once_per_thread=body.run_once_per_thread,
    )
    session.add(playbook)
    await session.flush()
    await log_event(
        session,
        "playbook.created",
        user_id=user_id,
        entity="playbook",
        entity_id=playbook.id,
        payload={"name": playbook.name},
    )
    await session.refresh(playbook)
    return playbook


async def delete_playbook(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID
) -> None:
    """Delete the merchant's own playbook with its executions (the audit log keeps the
    Event); a default one is refused with Conflict (409)."""
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    if playbook.is_default:
        raise Conflict("a default playbook can be disabled, not deleted")
    await log_event(
        session,
        "playbook.deleted",
        user_id=user_id,
        entity="playbook",
        entity_id=playbook.id,
        payload={"name": playbook.name},
    )
    await session.delete(playbook)
    await session.flush()
