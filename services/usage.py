"""The seed's subscription and usage helpers, safe under concurrent callers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.plans import (
    COUNTERS,
    PLAN_LIMITS,
    Entitlement,
    entitlement,
    period_containing,
    remaining,
    trial_period,
)
from kernel.enums import PlanType, SubscriptionStatus
from kernel.errors import NotFound
from kernel.settings import get_settings
from models.billing import EmailReservation, Subscription, UsageRecord
from models.event import log_event


class SubscriptionMissingError(NotFound, LookupError):
    """The user has no subscription; call ensure_subscription first."""


class UsageCounts(BaseModel):
    emails_sent: int = 0
    emails_received: int = 0
    ai_suggestions: int = 0


class UsageLimits(BaseModel):
    emails_sent: int | None
    emails_received: int | None
    ai_suggestions: int | None


class UsageSummary(BaseModel):
    plan_type: PlanType
    status: SubscriptionStatus
    entitled: bool
    # Why not, when not entitled: trial_ended, cancelled, expired, past_due.
    entitlement_reason: str | None = None
    period_start: datetime
    period_end: datetime
    usage: UsageCounts
    emails_reserved: int = 0  # replies of approved actions, not sent yet
    limits: UsageLimits
    remaining: UsageLimits


class UsagePeriod(BaseModel):
    period_start: datetime
    period_end: datetime
    usage: UsageCounts


def _now() -> datetime:
    return datetime.now(UTC)


async def ensure_subscription(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime | None = None
) -> Subscription:
    """The user's subscription, creating a TRIAL the first time.

    `ON CONFLICT DO NOTHING` on the unique user_id makes concurrent first calls
    agree on one row instead of failing or creating two.
    """
    existing = (
        await session.execute(select(Subscription).where(Subscription.user_id == user_id))
    ).scalar_one_or_none()
    if existing is not None:  # every call but the first: one read, no write
        return existing
    start, end = trial_period(now or _now())
    inserted = await session.execute(
        insert(Subscription)
        .values(
            user_id=user_id,
            plan_type=PlanType.TRIAL,
            status=SubscriptionStatus.active,
            current_period_start=start,
            current_period_end=end,
        )
        .on_conflict_do_nothing(index_elements=[Subscription.user_id])
        .returning(Subscription.id)
    )
    created_id = inserted.scalar_one_or_none()
    subscription = (
        await session.execute(select(Subscription).where(Subscription.user_id == user_id))
    ).scalar_one()
    if created_id is not None:
        await log_event(
            session,
            "subscription.trial_started",
            user_id=user_id,
            entity="subscription",
            entity_id=created_id,
            payload={"period_end": end.isoformat()},
        )
    return subscription


async def subscription_of(session: AsyncSession, user_id: uuid.UUID) -> Subscription:
    subscription = (
        await session.execute(select(Subscription).where(Subscription.user_id == user_id))
    ).scalar_one_or_none()
    if subscription is None:
        raise SubscriptionMissingError(f"user {user_id} has no subscription")
    return subscription


def configured_grace() -> timedelta:
    return timedelta(days=get_settings().billing_grace_days)


def past_due_since(subscription: Subscription) -> datetime | None:
    """When the renewal failed, as the billing apply step recorded it in the metadata."""
    value = (subscription.metadata_ or {}).get("past_due_since")
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def entitlement_of(
    subscription: Subscription, now: datetime, *, grace: timedelta | None = None
) -> Entitlement:
    """`domain.plans.entitlement` for a stored subscription: every caller asks here.
    Without `grace`, the configured one (DESKPILOT_BILLING_GRACE_DAYS), as the billing
    calendar uses it, so a past_due account ends at the same moment everywhere."""
    if grace is None:
        grace = configured_grace()
    return entitlement(
        subscription.plan_type,
        subscription.status,
        subscription.current_period_end,
        now,
        past_due_since=past_due_since(subscription),
        grace=grace,
        cancel_at_period_end=bool((subscription.metadata_ or {}).get("cancel_at_period_end")),
    )


def period_of(subscription: Subscription, now: datetime) -> tuple[datetime, datetime]:
    return period_containing(
        subscription.plan_type,
        subscription.current_period_start,
        subscription.current_period_end,
        now,
    )


async def ensure_usage_record(
    session: AsyncSession, subscription: Subscription, start: datetime, end: datetime
) -> None:
    """Create the period's usage row if missing; concurrent callers agree on one."""
    await session.execute(
        insert(UsageRecord)
        .values(subscription_id=subscription.id, period_start=start, period_end=end)
        .on_conflict_do_nothing(
            index_elements=[UsageRecord.subscription_id, UsageRecord.period_start]
        )
    )


def usage_record_of(subscription: Subscription, start: datetime) -> ColumnElement[bool]:
    return and_(UsageRecord.subscription_id == subscription.id, UsageRecord.period_start == start)


async def open_reservations(session: AsyncSession, usage_record_id: uuid.UUID) -> int:
    """Replies of approved actions reserved in the period and not yet sent or released."""
    counted = await session.execute(
        select(func.count())
        .select_from(EmailReservation)
        .where(
            EmailReservation.usage_record_id == usage_record_id,
            EmailReservation.settled_at.is_(None),
        )
    )
    return int(counted.scalar_one())


async def get_usage_summary(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> UsageSummary:
    """Usage and limits of the period containing `now`. Reads only."""
    now = now or _now()
    subscription = await subscription_of(session, user_id)
    start, end = period_of(subscription, now)
    record = (
        await session.execute(
            select(UsageRecord)
            .where(usage_record_of(subscription, start))
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    usage = UsageCounts(**{c: getattr(record, c) for c in COUNTERS}) if record else UsageCounts()
    limits = PLAN_LIMITS[subscription.plan_type]
    reserved = await open_reservations(session, record.id) if record is not None else 0
    # Replies reserved by approved actions are spoken for: what is left excludes them.
    taken = usage.model_dump() | {"emails_sent": usage.emails_sent + reserved}
    allowed = entitlement_of(subscription, now, grace=grace)
    return UsageSummary(
        plan_type=subscription.plan_type,
        status=subscription.status,
        entitled=allowed.entitled,
        entitlement_reason=allowed.reason,
        period_start=start,
        period_end=end,
        usage=usage,
        emails_reserved=reserved,
        limits=UsageLimits(**{c: getattr(limits, c) for c in COUNTERS}),
        remaining=UsageLimits(**{c: remaining(getattr(limits, c), taken[c]) for c in COUNTERS}),
    )


async def get_usage_history(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int = 12
) -> list[UsagePeriod]:
    """Past and current periods, newest first."""
    rows = (
        await session.execute(
            select(UsageRecord)
            .join(Subscription)
            .where(Subscription.user_id == user_id)
            .order_by(UsageRecord.period_start.desc())
            .limit(limit)
        )
    ).scalars()
    return [
        UsagePeriod(
            period_start=r.period_start,
            period_end=r.period_end,
            usage=UsageCounts(**{c: getattr(r, c) for c in COUNTERS}),
        )
        for r in rows
    ]


async def _increment(
    session: AsyncSession,
    user_id: uuid.UUID,
    counter: str,
    now: datetime | None,
    grace: timedelta | None,
    subscription: Subscription | None = None,
) -> bool:
    """Count one unit if the plan allows it; False (and nothing counted) at the limit.
    `subscription`, when the caller has just read it, saves reading it again.

    The limit is checked in the UPDATE's WHERE clause, so the row lock makes
    concurrent callers take turns and none can push the counter past the limit.
    """
    now = now or _now()
    if subscription is None:
        subscription = await subscription_of(session, user_id)
    if not entitlement_of(subscription, now, grace=grace).entitled:
        return False
    start, end = period_of(subscription, now)
    column = getattr(UsageRecord, counter)
    statement = update(UsageRecord).where(usage_record_of(subscription, start))
    limit = getattr(PLAN_LIMITS[subscription.plan_type], counter)
    if limit is not None:
        statement = statement.where(column < limit)
    statement = (
        statement.values({column: column + 1, UsageRecord.updated_at: now})
        .returning(column)
        .execution_options(synchronize_session=False)
    )
    if (await session.execute(statement)).scalar_one_or_none() is not None:
        return True
    # Nothing counted: at the limit, or the period's row does not exist yet (or did not
    # when the UPDATE looked: a concurrent first call may have just created it).
    await ensure_usage_record(session, subscription, start, end)
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def increment_email_received(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
    subscription: Subscription | None = None,
) -> bool:
    return await _increment(session, user_id, "emails_received", now, grace, subscription)


async def increment_ai_suggestions(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> bool:
    return await _increment(session, user_id, "ai_suggestions", now, grace)


class UsageOut(BaseModel):
    summary: UsageSummary
    history: list[UsagePeriod]  # newest first


async def usage_for(
    session: AsyncSession, user_id: uuid.UUID, *, grace: timedelta | None = None
) -> UsageOut:
    # Every merchant gets a trial at sign-up; an account made before that still gets one.
    await ensure_subscription(session, user_id)
    summary = await get_usage_summary(session, user_id, grace=grace)
    history = await get_usage_history(session, user_id)
    return UsageOut(summary=summary, history=history)
