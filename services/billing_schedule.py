"""The billing calendar's Temporal Schedule: created once, kept at the configured interval.

Called whenever a worker starts (`deskpilot up` and `deskpilot worker`, through
deskpilot/processes.py); the compose bootstrap creates the same Schedule with the
`temporal` CLI. It shows under Schedules in the Web UI."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from kernel.settings import Settings
from workflows.billing_calendar import BILLING_SCHEDULE_ID, BillingCalendarWorkflow
from workflows.contracts import TASK_QUEUE


def calendar_interval(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.billing_calendar_minutes)


def billing_schedule(task_queue: str, every: timedelta) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            BillingCalendarWorkflow.run,
            # Temporal appends each run's scheduled time to this id.
            id=BILLING_SCHEDULE_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A sweep still running when the next is due: the next is skipped, not queued.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_billing_schedule(
    client: Client, task_queue: str = TASK_QUEUE, every: timedelta = timedelta(minutes=15)
) -> ScheduleHandle:
    """Create the Schedule, or bring an existing one to this spec and action (idempotent;
    concurrent callers agree: the one that loses the create updates)."""
    schedule = billing_schedule(task_queue, every)
    try:
        return await client.create_schedule(BILLING_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(BILLING_SCHEDULE_ID)

        def updated(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(updated)
        return handle
