"""The reply's email as a reservation in the plan's period, taken before the store acts.

reserve → (the store acts) → the reply is sent: `consume`, counted in `emails_sent`
                          → nothing is sent: `release`, the email is free again.

The usage row is locked while a reservation is taken, so concurrent approvals take
turns, and `emails_sent` plus the open reservations never pass the plan's limit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.plans import PLAN_LIMITS
from kernel.errors import NotEntitled, PlanLimit
from models.billing import EmailReservation, UsageRecord
from services.usage import (
    ensure_subscription,
    ensure_usage_record,
    entitlement_of,
    open_reservations,
    period_of,
    usage_record_of,
)


def _now() -> datetime:
    return datetime.now(UTC)


async def _reservation(session: AsyncSession, action_id: uuid.UUID) -> EmailReservation | None:
    return (
        await session.execute(
            select(EmailReservation).where(EmailReservation.action_id == action_id)
        )
    ).scalar_one_or_none()


async def reserve_email(
    session: AsyncSession,
    user_id: uuid.UUID,
    action_id: uuid.UUID,
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
) -> None:
    """Reserve the action's reply email, once; NotEntitled or PlanLimit if it cannot be.

    A reservation the action already holds (open or settled) is kept as it is: a retried
    step must not take a second email."""
    if await _reservation(session, action_id) is not None:
        return
    now = now or _now()
    subscription = await ensure_subscription(session, user_id, now=now)
    allowed = entitlement_of(subscription, now, grace=grace)
    if not allowed.entitled:
        raise NotEntitled(
            f"not entitled: {allowed.reason} (the {subscription.plan_type.value} subscription "
            f"is {subscription.status.value} and no longer covers sending replies: "
            "choose a plan to go on)"
        )
    start, end = period_of(subscription, now)
    locked = (
        select(UsageRecord)
        .where(usage_record_of(subscription, start))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    record = (await session.execute(locked)).scalar_one_or_none()
    if record is None:  # the period's first reply
        await ensure_usage_record(session, subscription, start, end)
        record = (await session.execute(locked)).scalar_one()
    limit = PLAN_LIMITS[subscription.plan_type].emails_sent
    if limit is not None:
        open_count = await open_reservations(session, record.id)
        if record.emails_sent + open_count >= limit:
            raise PlanLimit(
                f"the plan's {limit} emails for this period are used or reserved "
                f"({record.emails_sent} sent, {open_count} waiting to be sent): "
                "nothing was done in the store"
            )
    session.add(EmailReservation(action_id=action_id, usage_record_id=record.id))
    await session.flush()


async def holds_reservation(session: AsyncSession, action_id: uuid.UUID) -> bool:
    """Whether the action's reply may be sent: reserved and not released."""
    reservation = await _reservation(session, action_id)
    return reservation is not None and reservation.outcome != "released"


async def consume_email(
    session: AsyncSession, action_id: uuid.UUID, *, now: datetime | None = None
) -> bool:
    """The reply was sent: count it in its reservation's period, once. True when this call
    counted it (False: already counted, or nothing was reserved)."""
    reservation = await _reservation(session, action_id)
    if reservation is None or reservation.settled_at is not None:
        return False
    now = now or _now()
    reservation.outcome, reservation.settled_at = "sent", now
    await session.execute(
        update(UsageRecord)
        .where(UsageRecord.id == reservation.usage_record_id)
        .values(emails_sent=UsageRecord.emails_sent + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


async def release_email(
    session: AsyncSession, action_id: uuid.UUID, *, now: datetime | None = None
) -> None:
    """Nothing will be sent for the action: free its email for another reply."""
    reservation = await _reservation(session, action_id)
    if reservation is not None and reservation.settled_at is None:
        reservation.outcome, reservation.settled_at = "released", now or _now()
