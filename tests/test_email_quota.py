"""The reply's email reserved before the store acts, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.plans import PLAN_LIMITS, TRIAL_DAYS
from kernel.enums import ActionType, PlanType
from kernel.errors import NotEntitled, PlanLimit
from models import Action, EmailReservation
from services.email_quota import consume_email, holds_reservation, release_email, reserve_email
from services.usage import ensure_subscription, get_usage_summary
from tests.factories import make_user, set_usage

TRIAL_SENT = PLAN_LIMITS[PlanType.TRIAL].emails_sent
assert TRIAL_SENT is not None


async def _action(session: AsyncSession, user_id: uuid.UUID) -> uuid.UUID:
    action = Action(user_id=user_id, type=ActionType.NONE, payload={"reply": "hello"})
    session.add(action)
    await session.flush()
    return action.id


async def test_a_reservation_is_taken_once_and_counted_once_when_sent(
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    action_id = await _action(session, user.id)
    await reserve_email(session, user.id, action_id)
    await reserve_email(session, user.id, action_id)  # a retried step: still one
    assert await holds_reservation(session, action_id)
    await consume_email(session, action_id)
    await consume_email(session, action_id)  # a retried send: counted once
    assert (await get_usage_summary(session, user.id)).usage.emails_sent == 1
    rows = (await session.execute(select(EmailReservation))).scalars().all()
    assert [(r.outcome, r.settled_at is not None) for r in rows] == [("sent", True)]


async def test_open_reservations_count_against_the_limit_until_released(
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    await ensure_subscription(session, user.id)
    await set_usage(session, user.id, emails_sent=TRIAL_SENT - 1)
    first, second = await _action(session, user.id), await _action(session, user.id)
    await reserve_email(session, user.id, first)
    summary = await get_usage_summary(session, user.id)
    assert (summary.emails_reserved, summary.remaining.emails_sent) == (1, 0)
    with pytest.raises(PlanLimit, match="1 waiting to be sent"):
        await reserve_email(session, user.id, second)
    await release_email(session, first)  # nothing was sent for it
    assert not await holds_reservation(session, first)
    await reserve_email(session, user.id, second)
    await consume_email(session, second)
    assert (await get_usage_summary(session, user.id)).usage.emails_sent == TRIAL_SENT


async def test_an_expired_trial_reserves_nothing(session: AsyncSession) -> None:
    user = await make_user(session)
    await ensure_subscription(session, user.id)
    action_id = await _action(session, user.id)
    later = datetime.now(UTC) + timedelta(days=TRIAL_DAYS + 1)
    with pytest.raises(NotEntitled) as refused:
        await reserve_email(session, user.id, action_id, now=later)
    assert refused.value.code == "not_entitled"
    assert not await holds_reservation(session, action_id)


async def test_an_unlimited_plan_always_reserves(session: AsyncSession) -> None:
    user = await make_user(session)
    subscription = await ensure_subscription(session, user.id)
    subscription.plan_type = PlanType.ENTERPRISE
    await session.flush()
    await set_usage(session, user.id, emails_sent=10**6)
    action_id = await _action(session, user.id)
    await reserve_email(session, user.id, action_id)
    assert await holds_reservation(session, action_id)


async def test_fifty_concurrent_reservations_at_the_boundary_never_pass_the_limit(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session, session.begin():
        user = await make_user(session)
        await ensure_subscription(session, user.id)
        await set_usage(session, user.id, emails_sent=TRIAL_SENT - 7)
        actions = [await _action(session, user.id) for _ in range(50)]

    async def reserve(action_id: uuid.UUID) -> bool:
        try:
            async with own_sessions() as s, s.begin():
                await reserve_email(s, user.id, action_id)
        except PlanLimit:
            return False
        return True

    results = await asyncio.gather(*(reserve(a) for a in actions))
    async with own_sessions() as session, session.begin():
        for action_id, reserved in zip(actions, results, strict=True):
            if reserved:
                await consume_email(session, action_id)
    async with own_sessions() as session:
        summary = await get_usage_summary(session, user.id)
    assert results.count(True) == 7
    assert summary.usage.emails_sent == TRIAL_SENT
