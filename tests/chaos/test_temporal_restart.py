"""The Temporal dev server SIGKILLed while approved actions are being carried out, then
started again on the same SQLite file and ports: every workflow completes, and the store
and the mail sink hold each effect and reply once.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually
from tests.chaos.workload import STORE_ACTIONS, Tally, mix, requests_for, store_effects
from workflows.contracts import Stage

PER_ACTION = 6
TOTAL = PER_ACTION * len(STORE_ACTIONS)
OUTAGE_S = 3.0  # how long Temporal stays away


async def test_workflows_complete_across_a_temporal_restart(
    chaos_report: Report, desk: Desk
) -> None:
    requests = requests_for(desk.merchant, dict.fromkeys(STORE_ACTIONS, PER_ACTION))
    latency = random.Random(21)

    async def slow_writes(body: dict[str, Any]) -> None:
        if str(body.get("query", "")).lstrip().startswith("mutation"):
            await asyncio.sleep(latency.uniform(0.2, 2.0))

    desk.sandbox.shopify.before_graphql = slow_writes
    await desk.start_worker()
    workflows = dict([await desk.start_message(r.sender, r.subject, r.text) for r in requests])
    pending = await eventually(lambda: desk.pending(TOTAL), 120, "every suggestion")
    await desk.approve_all(workflows, pending)

    async def under_way() -> bool:
        return len(store_effects(desk.merchant)) >= TOTAL // 4

    await eventually(under_way, 120, "the first store effects")
    await desk.kill_temporal()
    killed = time.monotonic()
    done_at_kill = len(store_effects(desk.merchant))
    await asyncio.sleep(OUTAGE_S)
    await desk.start_temporal()
    down = time.monotonic() - killed
    results = await desk.results([h.id for h in workflows.values()], 240)

    completed = await desk.workflows_listed("ExecutionStatus='Completed'", TOTAL)
    tally = Tally.of(desk.merchant, requests)
    chaos_report(
        f"chaos temporal-restart: {TOTAL} workflows ({mix(requests)}), Temporal killed after "
        f"{done_at_kill} effects and down {down:.1f} s; completed {completed}, executed "
        f"{sum(r.stage == Stage.EXECUTED for r in results)}, {tally.counts}"
    )
    assert done_at_kill < TOTAL, "Temporal was killed after every action was done"
    assert desk.worker.running(), "the worker did not outlive Temporal's restart"
    assert [r.stage for r in results] == [Stage.EXECUTED] * TOTAL, desk.worker.output()
    assert completed == TOTAL
    tally.assert_once()
