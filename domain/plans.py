"""Plan limits and billing-period arithmetic. Pure: values in, values out."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from kernel.enums import PlanType, SubscriptionStatus

TRIAL_DAYS = 14


@dataclass(frozen=True)
class PlanLimits:
    """Per billing period; None means unlimited."""

    emails_sent: int | None
    emails_received: int | None
    ai_suggestions: int | None


PLAN_LIMITS: dict[PlanType, PlanLimits] = {
    PlanType.TRIAL: PlanLimits(emails_sent=100, emails_received=250, ai_suggestions=100),
    PlanType.STARTER: PlanLimits(emails_sent=500, emails_received=1_000, ai_suggestions=500),
    PlanType.GROWTH: PlanLimits(emails_sent=2_500, emails_received=5_000, ai_suggestions=2_500),
    PlanType.PRO: PlanLimits(emails_sent=10_000, emails_received=20_000, ai_suggestions=10_000),
    PlanType.ENTERPRISE: PlanLimits(emails_sent=None, emails_received=None, ai_suggestions=None),
}

COUNTERS = ("emails_sent", "emails_received", "ai_suggestions")


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's end (Jan 31 → Feb 28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def trial_period(now: datetime) -> tuple[datetime, datetime]:
    return now, now + timedelta(days=TRIAL_DAYS)


def period_containing(
    plan: PlanType, start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The usage period that `now` falls in.

    Usually the subscription's current period. A paid plan whose stored period
    has lapsed (the renewal webhook or rollover has not run yet) keeps counting
    in monthly steps from the stored start, so usage is never attributed to a
    stale period. A trial has a single period: after it, it stays on the last one.
    """
    if now < end or plan is PlanType.TRIAL:
        return start, end
    months = 1
    while add_months(start, months) <= now:
        months += 1
    return add_months(start, months - 1), add_months(start, months)


def is_entitled(
    plan: PlanType, status: SubscriptionStatus, period_end: datetime, now: datetime
) -> bool:
    """Whether the subscription may use the product at all right now."""
    if status is SubscriptionStatus.expired:
        return False
    if plan is PlanType.TRIAL or status is SubscriptionStatus.cancelled:
        # Trials end with their period; a cancelled plan runs to the end of what was paid.
        return now < period_end
    return True  # active, or past_due during the gateway's retry window


def remaining(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(limit - used, 0)
