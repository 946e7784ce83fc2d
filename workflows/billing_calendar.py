"""The billing calendar: one sweep of every subscription whose period, trial or grace has
run out, at the moment the workflow ran. A Temporal Schedule (`billing-calendar`,
services/billing_schedule.py) starts it every few minutes; the sweep itself is an
activity (activities/billing_calendar.py) over services/billing_calendar.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.step_policy import RETRY

BILLING_CALENDAR_WORKFLOW = "BillingCalendarWorkflow"
RUN_BILLING_CALENDAR = "run_billing_calendar"
BILLING_SCHEDULE_ID = "billing-calendar"


class CalendarInput(BaseModel):
    now: datetime  # the workflow's clock: a replay or a retry sweeps at the same moment


class CalendarResult(BaseModel):
    """How many subscriptions one sweep changed, by rule."""

    rolled: int = 0
    trials_expired: int = 0
    past_due_expired: int = 0
    cancelled_expired: int = 0


@workflow.defn(name=BILLING_CALENDAR_WORKFLOW)
class BillingCalendarWorkflow:
    @workflow.run
    async def run(self) -> CalendarResult:
        return await workflow.execute_activity(
            RUN_BILLING_CALENDAR,
            CalendarInput(now=workflow.now()),
            result_type=CalendarResult,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
