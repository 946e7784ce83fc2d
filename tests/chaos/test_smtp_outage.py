"""The mail relay (the sandbox's SMTP sink) down for 30 s while approved replies go out, then
back on the same port: once it returns every reply is delivered, and exactly once.

Every reply step meets the closed port and is retried with the workflow's backoff (1, 2,
4, 8, 16 s...); the outage ends between two retries.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.client import WorkflowHandle

from kernel.enums import ActionStatus
from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually
from tests.chaos.workload import STORE_ACTIONS, Tally, mix, requests_for
from workflows.contracts import SEND_REPLY, MessageState, Stage

PER_ACTION = 5
TOTAL = PER_ACTION * len(STORE_ACTIONS)
OUTAGE_S = 30.0


async def _failed_sends(handle: WorkflowHandle[Any, MessageState]) -> int:
    """Attempts of the reply step that failed so far, while it is still being retried."""
    described = await handle.describe()
    return sum(
        p.attempt - 1
        for p in described.raw_description.pending_activities
        if p.activity_type.name == SEND_REPLY and p.HasField("last_failure")
    )


async def _send_attempts(handle: WorkflowHandle[Any, MessageState]) -> int:
    """The attempt the reply step succeeded on, from the finished workflow's history."""
    scheduled: set[int] = set()
    attempt = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == SEND_REPLY:
                scheduled.add(event.event_id)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in scheduled:
                attempt = started.attempt
    return attempt


async def test_replies_go_out_once_when_the_relay_returns(chaos_report: Report, desk: Desk) -> None:
    requests = requests_for(desk.merchant, dict.fromkeys(STORE_ACTIONS, PER_ACTION))
    await desk.start_worker()
    workflows = dict([await desk.start_message(r.sender, r.subject, r.text) for r in requests])
    pending = await eventually(lambda: desk.pending(TOTAL), 120, "every suggestion")

    await desk.smtp.stop()
    down_since = time.monotonic()
    await desk.approve_all(workflows, pending)
    failures: list[int] = []

    async def every_send_failing() -> bool:
        failures[:] = [await _failed_sends(h) for h in workflows.values()]
        return all(failures)

    await eventually(every_send_failing, OUTAGE_S, "every reply to fail against the relay")
    await asyncio.sleep(OUTAGE_S - (time.monotonic() - down_since))  # the rest of the outage
    await desk.smtp.start()
    back_at, back = datetime.now(UTC), time.monotonic()
    results = await desk.results([h.id for h in workflows.values()], 180)
    settled = time.monotonic() - back
    attempts = [await _send_attempts(h) for h in workflows.values()]

    tally = Tally.of(desk.merchant, requests)
    actions = await desk.actions()
    chaos_report(
        f"chaos smtp-outage: {TOTAL} replies ({mix(requests)}), relay down {OUTAGE_S:.0f} s, "
        f"{sum(attempts) - TOTAL} failed sends; all sent {settled:.1f} s after it returned; "
        f"{tally.counts}"
    )
    assert [r.stage for r in results] == [Stage.EXECUTED] * TOTAL, desk.worker.output()
    assert min(attempts) >= 2, attempts
    assert [(a.status, a.error) for a in actions] == [(ActionStatus.EXECUTED, None)] * TOTAL
    tally.assert_once()
    assert all(d.received_at >= back_at for d in desk.sandbox.sink.deliveries)
