"""The worker SIGKILLed while 40 approved actions of all four kinds are being carried out.

The store is slowed down (each write waits a seeded 0.2-3 s before it happens) so that at
the kill some actions are done, some have their write in flight — the store carries it
out, the dead worker never hears of it — and some have not started. After a restart every
effect is in the store exactly once and every reply in the mail sink once, except a
reply the relay had accepted while its record still said "sending" when the worker died:
plain SMTP cannot tell us it arrived, so it is sent again, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from kernel.enums import ActionStatus
from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually
from tests.chaos.workload import (
    STORE_ACTIONS,
    Tally,
    mix,
    replied_actions,
    replies,
    requests_for,
    store_effects,
)
from workflows.contracts import Stage

PER_ACTION = 10
TOTAL = PER_ACTION * len(STORE_ACTIONS)


async def test_a_killed_worker_carries_out_every_action_and_reply_exactly_once(
    chaos_report: Report, desk: Desk
) -> None:
    requests = requests_for(desk.merchant, dict.fromkeys(STORE_ACTIONS, PER_ACTION))
    latency = random.Random(12)
    writes_asked = 0

    async def slow_writes(body: dict[str, Any]) -> None:
        nonlocal writes_asked
        if str(body.get("query", "")).lstrip().startswith("mutation"):
            writes_asked += 1
            await asyncio.sleep(latency.uniform(0.2, 3.0))

    desk.sandbox.shopify.before_graphql = slow_writes
    await desk.start_worker()
    started = [await desk.start_message(r.sender, r.subject, r.text) for r in requests]
    workflows = dict(started)
    pending = await eventually(lambda: desk.pending(TOTAL), 120, "every suggestion")
    proposed = {a.message_id: a.type for a in await desk.actions()}
    assert [proposed[m] for m, _ in started] == [r.action for r in requests]
    await desk.approve_all(workflows, pending)

    async def under_way() -> bool:
        # Some actions done and replied to, others with their store write or reply in flight.
        done = len(store_effects(desk.merchant))
        return done >= TOTAL // 4 and len(replies(desk.sandbox)) >= TOTAL // 8

    await eventually(under_way, 120, "the first effects and replies")
    await desk.worker.kill()
    done_at_kill, sent_at_kill = len(store_effects(desk.merchant)), len(replies(desk.sandbox))
    # Delivered, but not recorded as sent by the dead worker: the only replies a retry may
    # send a second time.
    unrecorded = set(replies(desk.sandbox)) & await desk.replies_in_flight()
    assert done_at_kill < TOTAL, "the kill came after every action was done"
    assert sent_at_kill < TOTAL, "the kill came after every reply was sent"

    await desk.start_worker()
    results = await desk.results([h.id for h in workflows.values()], 240)

    tally = Tally.of(desk.merchant, requests)
    executed = await desk.actions()
    chaos_report(
        f"chaos worker-kill: {TOTAL} actions ({mix(requests)}), killed after {done_at_kill} "
        f"effects, {sent_at_kill} replies ({len(unrecorded)} delivered but unrecorded) and "
        f"{writes_asked} store writes asked; {tally.counts}"
    )
    assert [r.stage for r in results] == [Stage.EXECUTED] * TOTAL, desk.worker.output()
    assert [(a.status, a.error) for a in executed] == [(ActionStatus.EXECUTED, None)] * TOTAL
    tally.assert_once(resent=unrecorded)
    assert replied_actions(tally.sent) == {str(a.id) for a in executed}
