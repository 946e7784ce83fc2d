"""The billing calendar's sweep: what happens to subscriptions as time passes.

At `now` (the workflow's clock), for every subscription that is not expired:
- a trial past its end expires;
- a past_due one expires once the grace from `past_due_since` is over;
- a cancelled one, or one cancelling at its period's end, expires once that period ended;
- any other paid one whose period ended rolls over: its period advances to the one
  containing `now` and that period's UsageRecord is created (the old rows stay as history).

Rows are locked FOR UPDATE SKIP LOCKED in batches, in id order; a change moves a row out
of the due set, so a second sweep at the same `now` changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, DateTime, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.plans import period_containing
from kernel.enums import PlanType, SubscriptionStatus
from models.billing import Subscription
from models.event import log_event
from services.usage import ensure_usage_record, past_due_since
from workflows.billing_calendar import CalendarResult

BATCH = 100


def _due(now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """Subscriptions one of the rules applies to at `now`."""
    since = Subscription.metadata_["past_due_since"].astext.cast(DateTime(timezone=True))
    grace_over = and_(
        Subscription.status == SubscriptionStatus.past_due,
        func.coalesce(since, Subscription.current_period_end) + grace <= now,
    )
    return and_(
        Subscription.status != SubscriptionStatus.expired,
        or_(Subscription.current_period_end <= now, grace_over),
    )


def _cancelling(subscription: Subscription) -> bool:
    return bool((subscription.metadata_ or {}).get("cancel_at_period_end"))


async def _expire(
    session: AsyncSession, subscription: Subscription, event: str, reason: str
) -> None:
    subscription.status = SubscriptionStatus.expired
    await log_event(
        session,
        event,
        user_id=subscription.user_id,
        entity="subscription",
        entity_id=subscription.id,
        payload={"reason": reason, "period_end": subscription.current_period_end.isoformat()},
    )


async def _roll(session: AsyncSession, subscription: Subscription, now: datetime) -> None:
    old = subscription.current_period_start, subscription.current_period_end
    start, end = period_containing(subscription.plan_type, *old, now)
    subscription.current_period_start, subscription.current_period_end = start, end
    await session.flush()
    await ensure_usage_record(session, subscription, start, end)
    await log_event(
        session,
        "subscription.period_rolled",
        user_id=subscription.user_id,
        entity="subscription",
        entity_id=subscription.id,
        payload={
            "from": [old[0].isoformat(), old[1].isoformat()],
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
        },
    )


async def _apply(
    session: AsyncSession,
    subscription: Subscription,
    now: datetime,
    grace: timedelta,
    result: CalendarResult,
) -> None:
    """The first rule that applies, in this order (expiry before rollover)."""
    ended = subscription.current_period_end <= now
    if subscription.plan_type is PlanType.TRIAL:
        if ended:
            await _expire(session, subscription, "subscription.trial_expired", "trial_ended")
            result.trials_expired += 1
        return
    if subscription.status is SubscriptionStatus.past_due:
        since = past_due_since(subscription) or subscription.current_period_end
        if since + grace <= now:
            await _expire(session, subscription, "subscription.expired", "past_due")
            result.past_due_expired += 1
            return
    if not ended:
        return
    if subscription.status is SubscriptionStatus.cancelled or _cancelling(subscription):
        await _expire(session, subscription, "subscription.expired", "cancelled")
        result.cancelled_expired += 1
        return
    await _roll(session, subscription, now)
    result.rolled += 1


async def run_billing_calendar(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    grace: timedelta,
    batch: int = BATCH,
    on_batch: Callable[[], None] | None = None,
) -> CalendarResult:
    """Apply the calendar's rules at `now`; one transaction per batch of subscriptions.
    `on_batch` is called after each committed batch (the activity heartbeats there)."""
    result = CalendarResult()
    after: uuid.UUID | None = None
    while True:
        async with sessions() as session, session.begin():
            query = (
                select(Subscription)
                .where(_due(now, grace))
                .order_by(Subscription.id)
                .limit(batch)
                # Another sweep (an overlapping run, a retry) takes the rows it holds.
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
            if after is not None:
                query = query.where(Subscription.id > after)
            rows = list((await session.execute(query)).scalars())
            for subscription in rows:
                await _apply(session, subscription, now, grace, result)
        if on_batch is not None:
            on_batch()
        if len(rows) < batch:
            return result
        after = rows[-1].id
