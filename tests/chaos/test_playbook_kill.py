"""The worker SIGKILLed while the "Refund damaged items" playbook approves refunds on its
own: no person decides anything.

Every paid order the default playbook accepts (refundable, at most its 100) gets a
broken-item email; the playbook approves without a person (`requires_approval` off, a
threshold the offline suggester reaches, daily caps raised out of the way). The store is
slowed down as in the worker-kill case, so at the kill some refunds are done, some in
flight and some not yet approved. After a restart each refund is in the store exactly
once, each message's execution is `executed` once and automatic, the playbook counted
each once, and each reply was delivered once (but for one the relay had accepted while
its record still said "sending").
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from kernel.enums import ActionStatus, ActionType, PlaybookExecutionStatus
from models.playbook import PlaybookExecution
from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually
from tests.chaos.workload import Facts, Tally, refund_requests, replied_actions, replies
from tests.playbook_support import (
    DAMAGED,
    executions,
    only_playbooks,
    playbook,
    set_automation,
    set_playbook,
)
from workflows.contracts import Stage
from workflows.playbook_contracts import PLAYBOOK_RUN_WORKFLOW

AT_MOST = 20
PLAYBOOK_LIMIT = Decimal("100")  # the default playbook's refund condition and cap
LATER_HEAD_START = 1.5  # seconds the later half runs before the kill
FINAL = {PlaybookExecutionStatus.executed, PlaybookExecutionStatus.failed}


def _accepted(order: Facts) -> bool:
    """An order whose whole refundable rest the default damaged-item playbook refunds."""
    return (
        not order["cancelled"]
        and order["financial_status"] in ("PAID", "PARTIALLY_REFUNDED")
        and 0 < order["refundable"] <= PLAYBOOK_LIMIT
    )


async def test_a_killed_worker_refunds_each_automatically_approved_order_once(
    chaos_report: Report, desk: Desk
) -> None:
    requests = refund_requests(desk.merchant, _accepted, AT_MOST)
    total = len(requests)
    assert total >= 12, f"only {total} orders the playbook accepts"
    user_id = desk.merchant.user_id
    await only_playbooks(desk.sessions, user_id, DAMAGED)
    playbook_id = await set_playbook(
        desk.sessions, user_id, DAMAGED, requires_approval=False, confidence_threshold=0.5
    )
    await set_automation(
        desk.sessions, user_id, daily_refund_cap=Decimal("100000"), daily_execution_cap=10_000
    )
    latency = random.Random(13)
    writes_asked = 0

    async def slow_writes(body: dict[str, Any]) -> None:
        nonlocal writes_asked
        if str(body.get("query", "")).lstrip().startswith("mutation"):
            writes_asked += 1
            await asyncio.sleep(latency.uniform(0.2, 3.0))

    desk.sandbox.shopify.before_graphql = slow_writes
    await desk.start_worker()
    # Half first; the rest once refunds are under way, so that at the kill some messages
    # are being read, suggested or approved while others' refunds are in the store's hands.
    first = [await desk.start_message(r.sender, r.subject, r.text) for r in requests[::2]]

    async def under_way() -> bool:
        return len(desk.merchant.refunds()) >= total // 4

    await eventually(under_way, 180, "the first automatic refunds")
    later = [await desk.start_message(r.sender, r.subject, r.text) for r in requests[1::2]]
    await asyncio.sleep(LATER_HEAD_START)
    await desk.worker.kill()
    workflows = dict(first + later)
    refunds_at_kill, sent_at_kill = len(desk.merchant.refunds()), len(replies(desk.sandbox))
    unrecorded = set(replies(desk.sandbox)) & await desk.replies_in_flight()
    at_kill = Counter(e.status.value for e in await executions(desk.sessions, playbook_id))
    assert refunds_at_kill < total, "the kill came after every refund was done"

    await desk.start_worker()
    results = await desk.results([h.id for h in workflows.values()], 240)

    async def settled() -> list[PlaybookExecution] | None:
        found = await executions(desk.sessions, playbook_id)
        return found if len(found) >= total and all(e.status in FINAL for e in found) else None

    done = await eventually(settled, 120, "every execution to finish")

    async def closed() -> dict[str, str] | None:
        found = await _runs(desk)
        return found if len(found) >= total and "RUNNING" not in found.values() else None

    runs = await eventually(closed, 60, "every playbook run to close")
    counted = await playbook(desk.sessions, playbook_id)
    actions = await desk.actions()
    tally = Tally.of(desk.merchant, requests)
    chaos_report(
        f"chaos playbook-kill: {total} automatic refunds, killed after {refunds_at_kill} "
        f"refunds and {sent_at_kill} replies ({len(unrecorded)} delivered but unrecorded), "
        f"executions then {dict(sorted(at_kill.items()))}, {writes_asked} store writes "
        f"asked; executions {dict(Counter(e.status.value for e in done))} "
        f"({sum(e.automatic for e in done)} automatic), execution_count "
        f"{counted.execution_count}, runs {dict(Counter(runs.values()))}; {tally.counts}"
    )
    assert [r.stage for r in results] == [Stage.EXECUTED] * total, desk.worker.output()
    assert (
        sorted((a.type, a.status, a.error) for a in actions)
        == [(ActionType.REFUND, ActionStatus.EXECUTED, None)] * total
    )
    tally.assert_once(resent=unrecorded)
    assert replied_actions(tally.sent) == {str(a.id) for a in actions}
    per_message = Counter(e.message_id for e in done)
    assert per_message == Counter(set(workflows)), f"executions per message: {per_message}"
    assert [(e.status, e.automatic, e.decided_by, e.error) for e in done] == [
        (PlaybookExecutionStatus.executed, True, f"playbook:{playbook_id}", None)
    ] * total
    assert {e.action_id for e in done} == {a.id for a in actions}
    assert counted.execution_count == total and counted.consecutive_failures == 0
    assert runs == dict.fromkeys(runs, WorkflowExecutionStatus.COMPLETED.name), runs
    assert len(runs) == total


async def _runs(desk: Desk) -> dict[str, str]:
    """PlaybookRunWorkflow id → its status, as Temporal lists them (this desk's own)."""
    found = {}
    async for run in desk.client.list_workflows(f"WorkflowType='{PLAYBOOK_RUN_WORKFLOW}'"):
        found[run.id] = run.status.name if run.status else "UNKNOWN"
    return found
