"""The billing calendar: its sweep's rules against a real PostgreSQL at chosen moments, the
Schedule on a real dev server, and a failed renewal's grace on the time-skipping server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleDescription, ScheduleOverlapPolicy, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.billing_calendar import BillingCalendarActivities
from deskpilot.processes import temporal_worker
from domain.plans import add_months
from kernel.enums import PlanType, SubscriptionStatus
from kernel.settings import Settings, get_settings
from models import Event, Subscription, UsageRecord
from services.billing_calendar import run_billing_calendar
from services.billing_schedule import ensure_billing_schedule
from services.usage import ensure_subscription, entitlement_of
from tests.factories import make_user
from tests.playbook_support import eventually, finished, skip_time
from worker import worker_dependencies
from workflows.billing_calendar import (
    BILLING_CALENDAR_WORKFLOW,
    BILLING_SCHEDULE_ID,
    BillingCalendarWorkflow,
    CalendarResult,
)
from workflows.contracts import TASK_QUEUE

T0 = datetime(2026, 1, 31, 9, tzinfo=UTC)
GRACE = timedelta(days=7)
NOTHING = CalendarResult()

Sessions = async_sessionmaker[AsyncSession]


async def subscribe(
    sessions: Sessions,
    plan: PlanType = PlanType.STARTER,
    status: SubscriptionStatus = SubscriptionStatus.active,
    start: datetime = T0,
    end: datetime | None = None,
    **metadata: Any,
) -> uuid.UUID:
    """A merchant with a subscription and its current period's usage row (some mail in it)."""
    async with sessions() as session, session.begin():
        user = await make_user(session)
        subscription = Subscription(
            user_id=user.id,
            plan_type=plan,
            status=status,
            current_period_start=start,
            current_period_end=end or add_months(start, 1),
            metadata_=metadata or None,
        )
        session.add(subscription)
        await session.flush()
        session.add(
            UsageRecord(
                subscription_id=subscription.id,
                period_start=subscription.current_period_start,
                period_end=subscription.current_period_end,
                emails_received=7,
                emails_sent=3,
            )
        )
        return subscription.id


async def reload(sessions: Sessions, subscription_id: uuid.UUID) -> Subscription:
    async with sessions() as session:
        found = await session.get(Subscription, subscription_id)
        assert found is not None
        return found


async def periods(sessions: Sessions, subscription_id: uuid.UUID) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                UsageRecord.period_start,
                UsageRecord.period_end,
                UsageRecord.emails_received,
                UsageRecord.emails_sent,
            )
            .where(UsageRecord.subscription_id == subscription_id)
            .order_by(UsageRecord.period_start)
        )
        return [tuple(row) for row in rows]


async def events(sessions: Sessions, subscription_id: uuid.UUID) -> list[tuple[str, Any]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Event.type, Event.payload)
            .where(Event.entity == "subscription", Event.entity_id == str(subscription_id))
            .order_by(Event.created_at)
        )
        return [(kind, payload) for kind, payload in rows]


async def sweep(sessions: Sessions, now: datetime, **options: Any) -> CalendarResult:
    return await run_billing_calendar(sessions, now, grace=GRACE, **options)


# --- the sweep's rules ---------------------------------------------------------------------


async def test_a_lapsed_paid_period_rolls_over_keeping_its_history(own_sessions: Sessions) -> None:
    paid = await subscribe(own_sessions)
    feb = add_months(T0, 1)
    mar = add_months(feb, 1)
    assert await sweep(own_sessions, feb - timedelta(seconds=1)) == NOTHING

    assert await sweep(own_sessions, feb) == CalendarResult(rolled=1)
    rolled = await reload(own_sessions, paid)
    assert (rolled.current_period_start, rolled.current_period_end) == (feb, mar)
    assert rolled.status is SubscriptionStatus.active
    # The old period's row is untouched; the new one starts from nothing.
    assert await periods(own_sessions, paid) == [(T0, feb, 7, 3), (feb, mar, 0, 0)]
    assert [kind for kind, _ in await events(own_sessions, paid)] == ["subscription.period_rolled"]

    # Twice at the same moment, or a little later in the same period: nothing more.
    assert await sweep(own_sessions, feb) == NOTHING
    assert await sweep(own_sessions, feb + timedelta(days=3)) == NOTHING
    assert len(await periods(own_sessions, paid)) == 2
    assert len(await events(own_sessions, paid)) == 1


async def test_a_period_lapsed_for_months_rolls_to_the_one_containing_now(
    own_sessions: Sessions,
) -> None:
    paid = await subscribe(own_sessions, PlanType.GROWTH, SubscriptionStatus.past_due)
    now = datetime(2026, 5, 10, tzinfo=UTC)
    # Its renewal failed two days ago: within the grace, so it rolls and stays past_due.
    async with own_sessions() as session, session.begin():
        subscription = await session.get(Subscription, paid)
        assert subscription is not None
        subscription.metadata_ = {"past_due_since": (now - timedelta(days=2)).isoformat()}
    assert await sweep(own_sessions, now) == CalendarResult(rolled=1)
    rolled = await reload(own_sessions, paid)
    assert rolled.current_period_start <= now < rolled.current_period_end
    assert rolled.current_period_start == add_months(add_months(T0, 1), 2)
    assert rolled.status is SubscriptionStatus.past_due  # still the gateway's retries
    assert [p[0] for p in await periods(own_sessions, paid)] == [T0, rolled.current_period_start]


async def test_a_trial_expires_at_its_end_and_never_rolls(own_sessions: Sessions) -> None:
    async with own_sessions() as session, session.begin():
        user = await make_user(session)
        trial = (await ensure_subscription(session, user.id, now=T0)).id
    end = T0 + timedelta(days=14)
    assert await sweep(own_sessions, end - timedelta(minutes=1)) == NOTHING
    assert await sweep(own_sessions, end) == CalendarResult(trials_expired=1)
    expired = await reload(own_sessions, trial)
    assert expired.status is SubscriptionStatus.expired
    assert (expired.current_period_start, expired.current_period_end) == (T0, end)
    assert await periods(own_sessions, trial) == []
    assert (await events(own_sessions, trial))[-1] == (
        "subscription.trial_expired",
        {"reason": "trial_ended", "period_end": end.isoformat()},
    )
    assert await sweep(own_sessions, end + timedelta(days=30)) == NOTHING


@pytest.mark.parametrize(
    ("status", "metadata"),
    [
        (SubscriptionStatus.active, {"cancel_at_period_end": True}),
        (SubscriptionStatus.past_due, {"cancel_at_period_end": True}),
        (SubscriptionStatus.cancelled, {}),
    ],
)
async def test_a_cancelled_plan_runs_to_its_period_end_then_expires(
    own_sessions: Sessions, status: SubscriptionStatus, metadata: dict[str, Any]
) -> None:
    feb = add_months(T0, 1)
    cancelling = await subscribe(
        own_sessions, PlanType.PRO, status, past_due_since=feb.isoformat(), **metadata
    )
    before = await reload(own_sessions, cancelling)
    assert entitlement_of(before, feb - timedelta(hours=1), grace=GRACE).entitled
    assert await sweep(own_sessions, feb - timedelta(hours=1)) == NOTHING

    assert await sweep(own_sessions, feb) == CalendarResult(cancelled_expired=1)
    after = await reload(own_sessions, cancelling)
    assert after.status is SubscriptionStatus.expired
    assert after.current_period_end == feb  # no new period, no new usage row
    assert len(await periods(own_sessions, cancelling)) == 1
    assert (await events(own_sessions, cancelling))[-1] == (
        "subscription.expired",
        {"reason": "cancelled", "period_end": feb.isoformat()},
    )
    assert not entitlement_of(after, feb, grace=GRACE).entitled
    assert await sweep(own_sessions, feb) == NOTHING


async def test_past_due_expires_only_once_the_grace_is_over(own_sessions: Sessions) -> None:
    failed_at = T0 + timedelta(days=5)  # mid-period: no rollover in play
    past_due = await subscribe(
        own_sessions,
        status=SubscriptionStatus.past_due,
        end=T0 + timedelta(days=60),
        past_due_since=failed_at.isoformat(),
        gateway_status="past_due",
    )
    for moment in (failed_at, failed_at + GRACE - timedelta(seconds=1)):
        assert await sweep(own_sessions, moment) == NOTHING
        still = await reload(own_sessions, past_due)
        assert still.status is SubscriptionStatus.past_due
        assert entitlement_of(still, moment, grace=GRACE).entitled

    assert await sweep(own_sessions, failed_at + GRACE) == CalendarResult(past_due_expired=1)
    expired = await reload(own_sessions, past_due)
    assert expired.status is SubscriptionStatus.expired
    assert expired.metadata_ == {
        "past_due_since": failed_at.isoformat(),
        "gateway_status": "past_due",
    }  # the gateway's own word is kept
    assert (await events(own_sessions, past_due))[-1][1]["reason"] == "past_due"
    assert await sweep(own_sessions, failed_at + GRACE) == NOTHING


async def test_a_longer_grace_keeps_past_due_working(own_sessions: Sessions) -> None:
    failed_at = T0 + timedelta(days=1)
    past_due = await subscribe(
        own_sessions, status=SubscriptionStatus.past_due, past_due_since=failed_at.isoformat()
    )
    later = failed_at + timedelta(days=10)
    long = timedelta(days=14)
    assert await run_billing_calendar(own_sessions, later, grace=long) == NOTHING
    assert await run_billing_calendar(own_sessions, later, grace=GRACE) == CalendarResult(
        past_due_expired=1
    )
    assert (await reload(own_sessions, past_due)).status is SubscriptionStatus.expired


async def test_batches_and_concurrent_sweeps_change_each_subscription_once(
    own_sessions: Sessions,
) -> None:
    due = [await subscribe(own_sessions) for _ in range(7)]
    running = await subscribe(own_sessions, start=add_months(T0, 1))  # not due yet
    feb = add_months(T0, 1)
    results = await asyncio.gather(*(sweep(own_sessions, feb, batch=2) for _ in range(3)))
    assert sum(r.rolled for r in results) == len(due)
    for subscription_id in due:
        assert len(await periods(own_sessions, subscription_id)) == 2
        assert len(await events(own_sessions, subscription_id)) == 1
    assert await periods(own_sessions, running) == [(feb, add_months(feb, 1), 7, 3)]
    assert await sweep(own_sessions, feb, batch=2) == NOTHING


# --- the Schedule on a real dev server -----------------------------------------------------


def calendar_worker(env: WorkflowEnvironment, sessions: Sessions, queue: str) -> Worker:
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[BillingCalendarWorkflow],
        activities=BillingCalendarActivities(sessions, GRACE).all(),
    )


async def test_the_schedule_rolls_a_lapsed_period_over(
    own_sessions: Sessions, temporal_dev: WorkflowEnvironment
) -> None:
    queue = f"billing-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    ended = now - timedelta(hours=1)
    paid = await subscribe(own_sessions, start=add_months(ended, -1), end=ended)

    handle = await ensure_billing_schedule(temporal_dev.client, queue, timedelta(minutes=15))
    try:
        # Twice, and with another interval: one Schedule, at the latest spec.
        await ensure_billing_schedule(temporal_dev.client, queue, timedelta(minutes=15))
        again = await ensure_billing_schedule(temporal_dev.client, queue, timedelta(minutes=20))
        assert again.id == handle.id == BILLING_SCHEDULE_ID
        described = await handle.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=20)]
        assert described.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        action = described.schedule.action
        assert getattr(action, "workflow", None) == BILLING_CALENDAR_WORKFLOW
        assert getattr(action, "task_queue", None) == queue

        async with calendar_worker(temporal_dev, own_sessions, queue):
            await handle.trigger()

            async def new_period() -> list[tuple[Any, ...]] | None:
                rows = await periods(own_sessions, paid)
                return rows if len(rows) == 2 else None

            rows = await eventually(new_period, 60, "the Schedule's run to roll the period")
        assert rows[0][:2] == (add_months(ended, -1), ended) and rows[1][0] == ended
        rolled = await reload(own_sessions, paid)
        assert (rolled.current_period_start, rolled.current_period_end) == (
            ended,
            add_months(ended, 1),
        )
        assert [kind for kind, _ in await events(own_sessions, paid)] == [
            "subscription.period_rolled"
        ]
    finally:
        await handle.delete()


async def test_every_worker_start_creates_the_schedule_at_the_configured_interval(
    own_sessions: Sessions, temporal_dev: WorkflowEnvironment
) -> None:
    """`deskpilot up` and `deskpilot worker` both start their worker through here."""
    settings = Settings().model_copy(update={"billing_calendar_minutes": 5})
    handle = temporal_dev.client.get_schedule_handle(BILLING_SCHEDULE_ID)
    try:
        async with (
            worker_dependencies(settings, own_sessions) as deps,
            temporal_worker(temporal_dev.client, deps),
        ):

            async def at_five_minutes() -> ScheduleDescription | None:
                with contextlib.suppress(RPCError):
                    found = await handle.describe()
                    if [i.every for i in found.schedule.spec.intervals] == [timedelta(minutes=5)]:
                        return found
                return None

            described = await eventually(at_five_minutes, 60, "the worker's Schedule")
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=5)]
        assert getattr(described.schedule.action, "task_queue", None) == TASK_QUEUE
    finally:
        await handle.delete()


def test_compose_bootstrap_creates_the_same_schedule(repo_root: Any) -> None:
    compose = (repo_root / "docker-compose.yml").read_text()
    for part in (
        f"--schedule-id {BILLING_SCHEDULE_ID}",
        f"--type {BILLING_CALENDAR_WORKFLOW}",
        "--task-queue deskpilot-messages",
        "--overlap-policy Skip",
        "DESKPILOT_BILLING_CALENDAR_MINUTES",
    ):
        assert part in compose


# --- a failed renewal's grace, on the time-skipping server ---------------------------------


async def test_failed_renewal_is_past_due_then_expired_after_the_grace(
    own_sessions: Sessions, temporal_time_skipping: WorkflowEnvironment
) -> None:
    env = temporal_time_skipping
    queue = f"billing-{uuid.uuid4().hex[:8]}"
    failed_at = await env.get_current_time()
    # As the gateway's renewal failure leaves it (services/billing_apply.py): past_due,
    # and when, mid-period so only the grace is in play.
    past_due = await subscribe(
        own_sessions,
        status=SubscriptionStatus.past_due,
        start=failed_at - timedelta(days=1),
        end=failed_at + timedelta(days=29),
        past_due_since=failed_at.isoformat(),
        gateway_status="past_due",
    )

    handles: list[WorkflowHandle[Any, CalendarResult]] = []

    async def run_calendar() -> CalendarResult:
        handle = await env.client.start_workflow(
            BillingCalendarWorkflow.run, id=f"calendar-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        handles.append(handle)
        return await finished(handle, env=env)

    async with calendar_worker(env, own_sessions, queue):
        assert await run_calendar() == NOTHING
        still = await reload(own_sessions, past_due)
        assert still.status is SubscriptionStatus.past_due
        assert entitlement_of(still, await env.get_current_time(), grace=GRACE).entitled

        await skip_time(env, timedelta(days=8))
        assert await run_calendar() == CalendarResult(past_due_expired=1)
    expired = await reload(own_sessions, past_due)
    assert expired.status is SubscriptionStatus.expired
    verdict = entitlement_of(expired, await env.get_current_time(), grace=GRACE)
    assert (verdict.entitled, verdict.reason) == (False, "expired")
    # Deterministic: both runs replay against today's workflow code.
    replayer = Replayer(workflows=[BillingCalendarWorkflow], data_converter=pydantic_data_converter)
    for handle in handles:
        await replayer.replay_workflow(await handle.fetch_history())


def test_callers_without_a_grace_use_the_configured_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The activities and the API pass no grace: they meet the one the calendar uses."""
    failed_at = T0 + timedelta(days=1)
    subscription = Subscription(
        plan_type=PlanType.GROWTH,
        status=SubscriptionStatus.past_due,
        current_period_start=T0,
        current_period_end=add_months(T0, 1),
        metadata_={"past_due_since": failed_at.isoformat()},
    )
    three_days_on = failed_at + timedelta(days=3)
    get_settings.cache_clear()
    try:
        assert entitlement_of(subscription, three_days_on).entitled  # the default week
        monkeypatch.setenv("DESKPILOT_BILLING_GRACE_DAYS", "2")
        get_settings.cache_clear()
        verdict = entitlement_of(subscription, three_days_on)
        assert (verdict.entitled, verdict.reason) == (False, "past_due")
    finally:
        monkeypatch.delenv("DESKPILOT_BILLING_GRACE_DAYS", raising=False)
        get_settings.cache_clear()
