"""50 approvals at once, through the API, for a merchant with 20 emails left this period:
20 are taken and carried out with their reply, 30 are refused with 409 `limit_reached`
and stay PENDING; the plan's limit is never passed and the store never acts for a reply
that cannot be sent.
"""

from __future__ import annotations

import asyncio
import uuid

from domain.plans import PLAN_LIMITS
from kernel.enums import ActionStatus, ActionType, PlanType
from models import Action
from services.usage import get_usage_summary
from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually
from tests.chaos.workload import Request, Tally, mix, replied_actions, requests_for
from tests.factories import set_usage
from workflows.contracts import Stage

PER_ACTION = {
    ActionType.REFUND: 13,
    ActionType.CANCEL: 13,
    ActionType.REPLACE_ITEM: 12,
    ActionType.ADDRESS_CHANGE: 12,
}
TOTAL = sum(PER_ACTION.values())
LIMIT = PLAN_LIMITS[PlanType.TRIAL].emails_sent or 0
LEFT = 20


async def test_approvals_at_the_email_limit_never_pass_it(chaos_report: Report, desk: Desk) -> None:
    requests = requests_for(desk.merchant, PER_ACTION)
    await desk.start_both()
    started = [await desk.start_message(r.sender, r.subject, r.text) for r in requests]
    request_of = {message_id: r for (message_id, _), r in zip(started, requests, strict=True)}
    workflow_of = dict(started)
    pending = await eventually(lambda: desk.pending(TOTAL), 120, "every suggestion")
    async with desk.sessions() as session, session.begin():
        await set_usage(session, desk.merchant.user_id, emails_sent=LIMIT - LEFT)

    async with desk.http(connections=TOTAL) as http:
        answers = await asyncio.gather(
            *(http.post(f"/api/actions/{action_id}/approve") for action_id in pending.values())
        )
    taken = {m for m, answer in zip(pending, answers, strict=True) if answer.status_code == 200}
    refused = [a for a in answers if a.status_code != 200]
    codes = sorted({(a.status_code, a.json()["error"]["code"]) for a in refused})
    results = await desk.results([workflow_of[m].id for m in taken], 180)

    tally = Tally.of(desk.merchant, requests)
    actions = {a.message_id: a for a in await desk.actions()}
    async with desk.sessions() as session:
        usage = await get_usage_summary(session, desk.merchant.user_id)
    replied = replied_actions(tally.sent)
    acted = {order for order, _ in tally.effects}
    unanswered = [o for o in acted if str(_action_on(actions, request_of, o)) not in replied]
    chaos_report(
        f"chaos quota-boundary: {TOTAL} concurrent approvals ({mix(requests)}) with {LEFT} of "
        f"{LIMIT} emails left: {len(taken)} taken, {len(refused)} refused {codes}; emails "
        f"counted {usage.usage.emails_sent}/{LIMIT}, {tally.counts}, effects without a reply "
        f"{len(unanswered)}"
    )
    assert len(taken) == LEFT and codes == [(409, "limit_reached")], [a.text for a in refused]
    assert [r.stage for r in results] == [Stage.EXECUTED] * LEFT, desk.worker.output()
    assert usage.usage.emails_sent == LIMIT
    tally.assert_once(request_of[m] for m in taken)
    assert replied == {str(actions[m].id) for m in taken} and unanswered == []
    assert {actions[m].status for m in request_of if m not in taken} == {ActionStatus.PENDING}


def _action_on(
    actions: dict[uuid.UUID | None, Action], request_of: dict[uuid.UUID, Request], order: str
) -> uuid.UUID:
    """The id of the action asked for on `order`."""
    return next(actions[m].id for m, r in request_of.items() if r.order == order)
