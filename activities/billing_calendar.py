"""The billing calendar's one activity: the sweep at the workflow's `now`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from services.billing_calendar import run_billing_calendar
from workflows.billing_calendar import RUN_BILLING_CALENDAR, CalendarInput, CalendarResult


class BillingCalendarActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], grace: timedelta) -> None:
        self._sessions = sessions
        self._grace = grace

    @activity.defn(name=RUN_BILLING_CALENDAR)
    async def run_billing_calendar(self, data: CalendarInput) -> CalendarResult:
        # A retry sweeps at the same `now`: what the first attempt committed is not due.
        return await run_billing_calendar(
            self._sessions, data.now, grace=self._grace, on_batch=activity.heartbeat
        )

    def all(self) -> list[Any]:
        return [self.run_billing_calendar]
