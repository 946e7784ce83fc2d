"""Subscription and usage helpers against a real PostgreSQL, including concurrent callers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.plans import PLAN_LIMITS, TRIAL_DAYS
from kernel.enums import PlanType, SubscriptionStatus
from models import Event, Subscription, UsageRecord
from services.usage import (
    ensure_subscription,
    get_usage_history,
    get_usage_summary,
    increment_ai_suggestions,
    increment_email_received,
)
from tests.factories import make_user, set_usage

TRIAL_AI = PLAN_LIMITS[PlanType.TRIAL].ai_suggestions


async def test_ensure_subscription_creates_one_trial(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await ensure_subscription(session, user.id)
    second = await ensure_subscription(session, user.id)
    assert first.id == second.id
    assert (first.plan_type, first.status) == (PlanType.TRIAL, SubscriptionStatus.active)
    assert first.current_period_end - first.current_period_start == timedelta(days=TRIAL_DAYS)
    events = (
        (await session.execute(select(Event.type).where(Event.user_id == user.id))).scalars().all()
    )
    assert events == ["subscription.trial_started"]


async def test_usage_summary_reports_usage_limits_and_remaining(session: AsyncSession) -> None:
    user = await make_user(session)
    await ensure_subscription(session, user.id)
    fresh = await get_usage_summary(session, user.id)  # before anything was counted
    assert fresh.usage.model_dump() == {"emails_sent": 0, "emails_received": 0, "ai_suggestions": 0}
    assert (await session.execute(select(func.count()).select_from(UsageRecord))).scalar_one() == 0
    assert await increment_email_received(session, user.id)
    assert await increment_email_received(session, user.id)
    assert await increment_ai_suggestions(session, user.id)
    summary = await get_usage_summary(session, user.id)
    assert summary.plan_type == PlanType.TRIAL and summary.entitled
    assert summary.usage.model_dump() == {
        "emails_sent": 0,
        "emails_received": 2,
        "ai_suggestions": 1,
    }
    limits = PLAN_LIMITS[PlanType.TRIAL]
    assert summary.limits.emails_sent == limits.emails_sent
    assert summary.remaining.emails_received == limits.emails_received - 2


async def test_counts_until_the_limit_then_not(session: AsyncSession) -> None:
    user = await make_user(session)
    await ensure_subscription(session, user.id)
    await set_usage(session, user.id, ai_suggestions=TRIAL_AI - 1)
    assert await increment_ai_suggestions(session, user.id)
    assert not await increment_ai_suggestions(session, user.id)
    assert (await get_usage_summary(session, user.id)).usage.ai_suggestions == TRIAL_AI


async def test_enterprise_is_unlimited(session: AsyncSession) -> None:
    user = await make_user(session)
    subscription = await ensure_subscription(session, user.id)
    subscription.plan_type = PlanType.ENTERPRISE
    await session.flush()
    await set_usage(session, user.id, ai_suggestions=10**6)
    assert await increment_ai_suggestions(session, user.id)
    assert (await get_usage_summary(session, user.id)).remaining.ai_suggestions is None


async def test_expired_trial_counts_nothing(session: AsyncSession) -> None:
    user = await make_user(session)
    await ensure_subscription(session, user.id)
    later = datetime.now(UTC) + timedelta(days=TRIAL_DAYS + 1)
    assert not await increment_ai_suggestions(session, user.id, now=later)
    assert not (await get_usage_summary(session, user.id, now=later)).entitled


async def test_history_lists_periods_newest_first(session: AsyncSession) -> None:
    user = await make_user(session)
    subscription = await ensure_subscription(session, user.id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    subscription.plan_type = PlanType.STARTER
    subscription.current_period_start, subscription.current_period_end = (
        start,
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    await session.flush()
    for month in (1, 2, 3):
        now = datetime(2026, month, 10, tzinfo=UTC)
        for _ in range(month):
            assert await increment_ai_suggestions(session, user.id, now=now)
    history = await get_usage_history(session, user.id)
    assert [(p.period_start.month, p.usage.ai_suggestions) for p in history] == [
        (3, 3),
        (2, 2),
        (1, 1),
    ]
    assert await get_usage_history(session, user.id, limit=1) == history[:1]


async def test_missing_subscription_is_a_clear_error(session: AsyncSession) -> None:
    import pytest

    from services.usage import SubscriptionMissingError

    user = await make_user(session)
    with pytest.raises(SubscriptionMissingError):
        await get_usage_summary(session, user.id)


# --- concurrency: separate connections, real commits ---------------------------------------


async def test_fifty_concurrent_counts_at_the_boundary_never_exceed_the_limit(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session, session.begin():
        user = await make_user(session)
        await ensure_subscription(session, user.id)
        await set_usage(session, user.id, ai_suggestions=TRIAL_AI - 7)

    async def send() -> bool:
        async with own_sessions() as s, s.begin():
            return await increment_ai_suggestions(s, user.id)

    results = await asyncio.gather(*(send() for _ in range(50)))

    async with own_sessions() as session:
        summary = await get_usage_summary(session, user.id)
    assert results.count(True) == 7
    assert summary.usage.ai_suggestions == TRIAL_AI


async def test_fifty_concurrent_first_counts_share_one_usage_row(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The period's row does not exist yet: all callers race to create it."""
    async with own_sessions() as session, session.begin():
        user = await make_user(session)
        await ensure_subscription(session, user.id)

    async def send() -> bool:
        async with own_sessions() as s, s.begin():
            return await increment_ai_suggestions(s, user.id)

    results = await asyncio.gather(*(send() for _ in range(50)))
    async with own_sessions() as session:
        rows = (await session.execute(select(UsageRecord))).scalars().all()
    assert all(results)
    assert [r.ai_suggestions for r in rows] == [50]


async def test_concurrent_ensure_subscription_creates_exactly_one(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session, session.begin():
        user = await make_user(session)

    async def ensure() -> object:
        async with own_sessions() as s, s.begin():
            return (await ensure_subscription(s, user.id)).id

    ids = await asyncio.gather(*(ensure() for _ in range(30)))
    async with own_sessions() as session:
        count = (await session.execute(select(func.count()).select_from(Subscription))).scalar_one()
        events = (
            await session.execute(
                select(func.count())
                .select_from(Event)
                .where(Event.type == "subscription.trial_started")
            )
        ).scalar_one()
    assert len(set(ids)) == 1 and count == 1 and events == 1
