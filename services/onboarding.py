"""The first-run checklist's facts, read from the account's rows (the rule is
domain.onboarding), and the one record it needs that nothing else keeps: that the
merchant opened the playbooks page."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.onboarding import SetupFacts, setup_complete, setup_steps
from kernel.enums import ConnectionType, PlanType, SubscriptionStatus
from models.billing import Subscription
from models.connection import Connection
from models.event import Event, log_event

PLAYBOOKS_VIEWED = "playbooks.viewed"
# A merchant who changed a playbook has looked at them too.
_REVIEWED = (
    PLAYBOOKS_VIEWED,
    "playbook.created",
    "playbook.updated",
    "playbook.enabled",
    "playbook.disabled",
    "playbook.deleted",
)
_MAIL = (ConnectionType.GMAIL, ConnectionType.CUSTOM_EMAIL)
# A paid plan the gateway is still running (past_due: it retries the payment).
_LIVE = (SubscriptionStatus.active, SubscriptionStatus.past_due)


class StepOut(BaseModel):
    key: str  # connect_store, connect_mail, review_playbooks, choose_plan
    title: str
    hint: str
    href: str  # the page where the step is done
    done: bool


class OnboardingOut(BaseModel):
    complete: bool  # every step done: the inbox no longer shows the checklist
    steps: list[StepOut]


async def setup_facts(session: AsyncSession, user_id: uuid.UUID) -> SetupFacts:
    def connected(*types: ConnectionType) -> exists:
        return exists().where(
            Connection.user_id == user_id,
            # Enabled unless its metadata says disabled (as services.connections writes it).
            Connection.metadata_["disabled"].astext.is_distinct_from("true"),
            Connection.type.in_(types),
        )

    reviewed = exists().where(Event.user_id == user_id, Event.type.in_(_REVIEWED))
    plan = exists().where(
        Subscription.user_id == user_id,
        Subscription.plan_type != PlanType.TRIAL,
        Subscription.status.in_(_LIVE),
    )
    row = (
        await session.execute(
            select(connected(ConnectionType.SHOPIFY), connected(*_MAIL), reviewed, plan)
        )
    ).one()
    return SetupFacts(*(bool(value) for value in row))


async def onboarding_for(session: AsyncSession, user_id: uuid.UUID) -> OnboardingOut:
    steps = setup_steps(await setup_facts(session, user_id))
    return OnboardingOut(
        complete=setup_complete(steps),
        steps=[StepOut(**vars(step)) for step in steps],
    )


async def note_playbooks_viewed(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Records, once, that the merchant opened the playbooks page (the caller commits)."""
    seen = await session.scalar(
        select(exists().where(Event.user_id == user_id, Event.type == PLAYBOOKS_VIEWED))
    )
    if not seen:
        await log_event(
            session, PLAYBOOKS_VIEWED, user_id=user_id, entity="user", entity_id=user_id
        )
