"""Plan arithmetic, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.plans import PLAN_LIMITS, add_months, period_containing, remaining
from kernel.enums import PlanType

T0 = datetime(2026, 1, 31, 12, tzinfo=UTC)


def test_every_plan_has_limits_and_they_grow_with_the_plan() -> None:
    assert set(PLAN_LIMITS) == set(PlanType)
    order = [PlanType.TRIAL, PlanType.STARTER, PlanType.GROWTH, PlanType.PRO]
    sent = [PLAN_LIMITS[p].emails_sent for p in order]
    assert sent == sorted(sent) and len(set(sent)) == len(sent)
    assert PLAN_LIMITS[PlanType.ENTERPRISE].emails_sent is None


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (2, datetime(2026, 3, 31, 12, tzinfo=UTC)),
        (12, datetime(2027, 1, 31, 12, tzinfo=UTC)),
        (13, datetime(2027, 2, 28, 12, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_month_end(months: int, expected: datetime) -> None:
    assert add_months(T0, months) == expected


def test_current_period_is_used_while_it_runs() -> None:
    end = add_months(T0, 1)
    assert period_containing(PlanType.STARTER, T0, end, T0 + timedelta(days=3)) == (T0, end)


def test_lapsed_paid_period_rolls_forward_monthly() -> None:
    end = add_months(T0, 1)
    now = datetime(2026, 4, 15, tzinfo=UTC)
    start, stop = period_containing(PlanType.GROWTH, T0, end, now)
    assert start <= now < stop
    # In steps from the stored end (Feb 28), so each period starts where the last ended.
    assert (start, stop) == (add_months(end, 1), add_months(end, 2))
    assert period_containing(PlanType.GROWTH, T0, end, end) == (end, add_months(end, 1))


def test_periods_after_a_month_end_clamp_never_overlap() -> None:
    start, end = add_months(T0, 1), add_months(T0, 2)  # Feb 28 → Mar 31
    following = period_containing(PlanType.PRO, start, end, end + timedelta(days=1))
    assert following == (end, datetime(2026, 4, 30, 12, tzinfo=UTC))


def test_trial_never_rolls_over() -> None:
    end = T0 + timedelta(days=14)
    assert period_containing(PlanType.TRIAL, T0, end, T0 + timedelta(days=40)) == (T0, end)


def test_remaining_never_negative_and_none_is_unlimited() -> None:
    assert remaining(10, 3) == 7
    assert remaining(10, 12) == 0
    assert remaining(None, 10**9) is None
