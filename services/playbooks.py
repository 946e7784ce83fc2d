"""Seeding a merchant's default playbooks from the templates in `domain.default_playbooks`."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.default_playbooks import DEFAULT_PLAYBOOKS
from domain.playbook_rules import PlaybookRules
from models.event import log_event
from models.playbook import Playbook


async def seed_default_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    """Create the templates the user does not have yet; return the user's default playbooks.

    Idempotent and safe under concurrent calls (unique user_id + template_key).
    A template the merchant edited or disabled is left as the merchant left it.
    """
    created: list[str] = []
    for template in DEFAULT_PLAYBOOKS:
        trigger, conditions, actions = PlaybookRules.parse(
            template.trigger, template.conditions, template.actions
        ).to_json()
        result = await session.execute(
            insert(Playbook)
            .values(
                user_id=user_id,
                name=template.name,
                description=template.description,
                category=template.category,
                trigger=trigger,
                conditions=conditions,
                actions=actions,
                confidence_threshold=template.confidence_threshold,
                priority=template.priority,
                stop_processing=template.stop_processing,
                requires_approval=True,
                enabled=True,
                is_default=True,
                template_key=template.key,
            )
            .on_conflict_do_nothing(index_elements=[Playbook.user_id, Playbook.template_key])
            .returning(Playbook.id)
        )
        if result.scalar_one_or_none() is not None:
            created.append(template.key)
    if created:
        await log_event(
            session,
            "playbooks.defaults_seeded",
            user_id=user_id,
            entity="user",
            entity_id=user_id,
            payload={"templates": created},
        )
    rows = await session.execute(
        select(Playbook)
        .where(Playbook.user_id == user_id, Playbook.is_default.is_(True))
        .order_by(Playbook.created_at, Playbook.name)
    )
    return list(rows.scalars())
