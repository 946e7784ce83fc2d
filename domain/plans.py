"""Plan limits, prices, billing-period arithmetic and the one entitlement rule.
Pure: values in, values out."""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kernel.enums import PlanType, SubscriptionStatus

TRIAL_DAYS = 14
# How long a past_due account keeps working while the gateway retries the payment
# (settings.billing_grace_days overrides it where the caller has settings).
DEFAULT_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class Price:
    """An amount in the currency's minor unit (paise, cents), as the gateways bill it."""

    currency: str
    amount_minor: int


@dataclass(frozen=True)
class PlanLimits:
    """Per billing period; None means unlimited. `prices` is keyed by gateway name."""

    emails_sent: int | None
    emails_received: int | None
    ai_suggestions: int | None
    prices: Mapping[str, Price] = field(default_factory=dict)


def _prices(inr: int, usd: int) -> dict[str, Price]:
    """Razorpay bills in INR, Paddle in USD; both in whole units here, minor units stored."""
    return {"razorpay": Price("INR", inr * 100), "paddle": Price("USD", usd * 100)}


PLAN_LIMITS: dict[PlanType, PlanLimits] = {
    PlanType.TRIAL: PlanLimits(emails_sent=100, emails_received=250, ai_suggestions=100),
    PlanType.STARTER: PlanLimits(
        emails_sent=500, emails_received=1_000, ai_suggestions=500, prices=_prices(1_499, 19)
    ),
    PlanType.GROWTH: PlanLimits(
        emails_sent=2_500, emails_received=5_000, ai_suggestions=2_500, prices=_prices(3_999, 49)
    ),
    PlanType.PRO: PlanLimits(
        emails_sent=10_000,
        emails_received=20_000,
        ai_suggestions=10_000,
        prices=_prices(11_999, 149),
    ),
    # Sold by contract, not through a gateway: no prices.
    PlanType.ENTERPRISE: PlanLimits(emails_sent=None, emails_received=None, ai_suggestions=None),
}

# The plans a merchant can buy through a gateway's checkout.
PAID_PLANS: tuple[PlanType, ...] = (PlanType.STARTER, PlanType.GROWTH, PlanType.PRO)

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
    in monthly steps from the stored end, so usage is never attributed to a
    stale period, and the billing calendar rolls it onto the same period. Stepping
    from the end (not the start) keeps periods back to back after a month-end clamp:
    a Feb 28 → Mar 31 period is followed by Mar 31 → Apr 30, never by one from Mar 28.
    A trial has a single period: after it, it stays on the last one.
    """
    if now < end or plan is PlanType.TRIAL:
        return start, end
    months = 1
    while add_months(end, months) <= now:
        months += 1
    return add_months(end, months - 1), add_months(end, months)


@dataclass(frozen=True)
class Entitlement:
    """Whether the account may send and be suggested replies; if not, why not:
    "trial_ended", "cancelled" (the paid period is over), "expired", "past_due" (grace over).
    Inbound mail is stored either way."""

    entitled: bool
    reason: str | None = None


ENTITLED = Entitlement(True)


def entitlement(
    plan: PlanType,
    status: SubscriptionStatus,
    period_end: datetime,
    now: datetime,
    *,
    past_due_since: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    cancel_at_period_end: bool = False,
) -> Entitlement:
    """The one rule deciding whether a subscription may use the product right now.

    A lapsed paid period alone does not end entitlement: the renewal webhook or the
    billing calendar may not have run yet, and a paying merchant must not be cut off
    for that. Only the status (and, for trials and cancellations, the period) does."""
    if status is SubscriptionStatus.expired:
        return Entitlement(False, "expired")
    if plan is PlanType.TRIAL:
        # A trial has one period; nothing renews it.
        return ENTITLED if now < period_end else Entitlement(False, "trial_ended")
    if status is SubscriptionStatus.cancelled or cancel_at_period_end:
        # A cancelled plan runs to the end of what was paid; so does one set to cancel
        # there, without waiting for the gateway's notice or the calendar's sweep.
        return ENTITLED if now < period_end else Entitlement(False, "cancelled")
    if status is SubscriptionStatus.past_due:
        # The gateway retries the payment; the account works until the grace ends,
        # counted from when the renewal failed (the period's end if that is unknown).
        since = past_due_since or period_end
        return ENTITLED if now < since + grace else Entitlement(False, "past_due")
    return ENTITLED


def remaining(limit: int | None, used: int) -> int | None:
    return None if limit is None else max(limit - used, 0)
