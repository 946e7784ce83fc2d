"""The one entitlement rule and the plans' prices, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.plans import (
    DEFAULT_GRACE,
    PAID_PLANS,
    PLAN_LIMITS,
    Entitlement,
    Price,
    entitlement,
)
from kernel.enums import PlanType, SubscriptionStatus

END = datetime(2026, 3, 1, tzinfo=UTC)
BEFORE, AFTER, LONG_AFTER = (
    END - timedelta(hours=1),
    END + timedelta(hours=1),
    END + timedelta(days=90),
)
OK = Entitlement(True, None)
S = SubscriptionStatus


def test_paid_plans_have_a_price_on_each_gateway() -> None:
    assert PAID_PLANS == (PlanType.STARTER, PlanType.GROWTH, PlanType.PRO)
    assert PLAN_LIMITS[PlanType.STARTER].prices == {
        "razorpay": Price("INR", 149_900),
        "paddle": Price("USD", 1_900),
    }
    assert PLAN_LIMITS[PlanType.GROWTH].prices == {
        "razorpay": Price("INR", 399_900),
        "paddle": Price("USD", 4_900),
    }
    assert PLAN_LIMITS[PlanType.PRO].prices == {
        "razorpay": Price("INR", 1_199_900),
        "paddle": Price("USD", 14_900),
    }
    assert not PLAN_LIMITS[PlanType.TRIAL].prices
    assert not PLAN_LIMITS[PlanType.ENTERPRISE].prices


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        (S.active, BEFORE, OK),
        (S.active, AFTER, Entitlement(False, "trial_ended")),
        (S.cancelled, BEFORE, OK),
        (S.cancelled, AFTER, Entitlement(False, "trial_ended")),
        (S.past_due, AFTER, Entitlement(False, "trial_ended")),
        (S.expired, BEFORE, Entitlement(False, "expired")),
    ],
)
def test_trial(status: SubscriptionStatus, now: datetime, expected: Entitlement) -> None:
    assert entitlement(PlanType.TRIAL, status, END, now) == expected


PAYING = [*PAID_PLANS, PlanType.ENTERPRISE]


@pytest.mark.parametrize("plan", PAYING)
@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        # A lapsed period alone never cuts a paying merchant off: renewal may be late.
        (S.active, BEFORE, OK),
        (S.active, LONG_AFTER, OK),
        (S.cancelled, BEFORE, OK),
        (S.cancelled, END, Entitlement(False, "cancelled")),
        (S.cancelled, AFTER, Entitlement(False, "cancelled")),
        (S.expired, BEFORE, Entitlement(False, "expired")),
        (S.expired, AFTER, Entitlement(False, "expired")),
    ],
)
def test_paid(
    plan: PlanType, status: SubscriptionStatus, now: datetime, expected: Entitlement
) -> None:
    assert entitlement(plan, status, END, now) == expected


@pytest.mark.parametrize("plan", PAYING)
@pytest.mark.parametrize(
    ("since", "now", "grace", "entitled"),
    [
        # Counted from when the renewal failed ...
        (AFTER, AFTER, DEFAULT_GRACE, True),
        (AFTER, AFTER + timedelta(days=7) - timedelta(seconds=1), DEFAULT_GRACE, True),
        (AFTER, AFTER + timedelta(days=7), DEFAULT_GRACE, False),
        (AFTER, AFTER + timedelta(days=2), timedelta(days=1), False),
        (AFTER, AFTER + timedelta(days=20), timedelta(days=30), True),
        # ... or, when that is unknown, from the period's end.
        (None, END + timedelta(days=6), DEFAULT_GRACE, True),
        (None, END + timedelta(days=7), DEFAULT_GRACE, False),
        (None, END + timedelta(hours=1), timedelta(0), False),
    ],
)
def test_past_due_works_until_the_grace_ends(
    plan: PlanType, since: datetime | None, now: datetime, grace: timedelta, entitled: bool
) -> None:
    result = entitlement(plan, S.past_due, END, now, past_due_since=since, grace=grace)
    assert result == (OK if entitled else Entitlement(False, "past_due"))


def test_default_grace_is_a_week() -> None:
    assert timedelta(days=7) == DEFAULT_GRACE


@pytest.mark.parametrize("plan", PAYING)
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (BEFORE, OK),
        (END, Entitlement(False, "cancelled")),
        (AFTER, Entitlement(False, "cancelled")),
    ],
)
def test_set_to_cancel_at_the_period_end_runs_to_it(
    plan: PlanType, now: datetime, expected: Entitlement
) -> None:
    # The gateway still says active until its notice arrives; the paid period is the limit.
    assert entitlement(plan, S.active, END, now, cancel_at_period_end=True) == expected
