"""Every sending and suggesting path, with an account that is no longer entitled: its mail
is stored, none of it is suggested, nothing is sent and nothing is done in the store.

Real components: PostgreSQL, the time-skipping Temporal server (playbook waits pass in
seconds), the worker's real activities, the sandbox store, mail sink and LLM over loopback.
The account ends as the billing calendar ends it: its trial's end passes and the sweep runs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.message_reply import ReplyStep
from domain.mail.mime import parse_email
from integrations.llm.openai_suggester import OpenAISuggester
from integrations.sandbox_mailer import SandboxMailer
from kernel.enums import ActionStatus, ActionType, MessageDirection
from kernel.errors import NotEntitled
from models import Action, AISuggestion, Event, Message
from sandbox.llm import Answer, LlmSandbox
from sandbox.server import serve_app
from services import decisions
from services.billing_calendar import run_billing_calendar
from services.ingest import ingest_parsed
from services.usage import ensure_subscription, get_usage_summary
from tests.pipeline import Merchant, running_pipeline, store_message
from tests.playbook_support import (
    act,
    add_playbook,
    awaiting_decision,
    eventually,
    executions,
    finished,
    on_message,
    only_playbooks,
    rule,
    send_message,
    skip_time,
)
from workflows.contracts import ActionRef, MessageState, Stage
from workflows.playbook_contracts import AUTO_APPROVE

KEY = "sk-entitlement"
DAYS = 86_400
DAMAGED_TEXT = "My order #{n} arrived broken. I would like a refund please."


@dataclass
class Desk:
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    merchant: Merchant
    queue: str
    llm: LlmSandbox

    def order(self) -> str:
        return self.merchant.number(
            lambda o: (
                not o["cancelled"] and o["refundable"] > 10 and o["financial_status"] == "PAID"
            )
        )

    async def damaged_item_mail(self) -> WorkflowHandle[Any, Any]:
        """A customer's mail about a damaged item, the model set to answer it with a refund."""
        self.answer()
        number = self.order()
        handle, _ = await send_message(
            self.env.client,
            self.sessions,
            self.merchant,
            self.queue,
            number=number,
            text=DAMAGED_TEXT.format(n=number),
        )
        return handle

    def sent(self) -> list[Any]:
        return list(self.merchant.sandbox.sink.deliveries)

    def answer(self) -> None:
        """The model's next answer: a small refund of a damaged item."""
        self.llm.push(
            Answer(
                {
                    "intent": "damaged_item",
                    "proposed_action": "REFUND",
                    "payload": {
                        "refund_amount": "5.00",
                        "refund_line_items": [],
                        "cancel_reason": None,
                        "new_address": None,
                        "replacements": [],
                    },
                    "reply": "Hi,\n\nSorry about that. We refunded 5.00.\n\nTest Store",
                    "confidence": 0.95,
                    "rationale": "A damaged item; a partial refund fits the policy.",
                    "order_name": None,
                }
            )
        )

    async def expire(self) -> None:
        """The trial's end passes and the billing calendar runs: the account is expired."""
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            subscription = await ensure_subscription(session, self.merchant.user_id)
            subscription.current_period_start = now - timedelta(days=15)
            subscription.current_period_end = now - timedelta(minutes=1)
        swept = await run_billing_calendar(self.sessions, now, grace=timedelta(days=7))
        assert swept.trials_expired == 1
        async with self.sessions() as session:
            summary = await get_usage_summary(session, self.merchant.user_id)
        assert (summary.entitled, summary.entitlement_reason) == (False, "expired")

    async def count(self, model: type[Any], *where: Any) -> int:
        async with self.sessions() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int((await session.execute(query)).scalar_one())


@pytest.fixture
async def desk(
    temporal_time_skipping: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    llm = LlmSandbox(api_key=KEY)
    async with serve_app(llm.app()) as url:
        suggester = OpenAISuggester(KEY, "sandbox-model", base_url=f"{url}/v1", timeout_s=5)
        queue = f"entitled-{uuid.uuid4().hex[:8]}"
        try:
            async with running_pipeline(
                temporal_time_skipping.client, own_sessions, queue, suggester=suggester
            ) as merchant:
                await only_playbooks(own_sessions, merchant.user_id)  # only each test's own
                yield Desk(temporal_time_skipping, own_sessions, merchant, queue, llm)
        finally:
            await suggester.aclose()


async def _refund_on_its_own(desk: Desk, *steps: dict[str, Any]) -> uuid.UUID:
    return await add_playbook(
        desk.sessions,
        desk.merchant.user_id,
        "Refund damaged items",
        on_message("damaged_item"),
        list(steps),
        [rule("suggestion.action_type", "eq", "REFUND")],
        requires_approval=False,
        confidence_threshold=0.5,
    )


def _email(desk: Desk, number: str, index: int) -> bytes:
    email = EmailMessage()
    email["From"] = desk.merchant.orders[number]["email"]
    email["To"] = desk.merchant.alias
    email["Subject"] = f"Broken item {index}"
    email["Message-ID"] = make_msgid(domain="customer.test")
    email.set_content(DAMAGED_TEXT.format(n=number))
    return email.as_bytes()


async def test_inbound_mail_is_stored_but_never_suggested_nor_answered(desk: Desk) -> None:
    # A playbook that would refund and answer on its own, were the account entitled.
    playbook_id = await _refund_on_its_own(desk, act("approve_suggestion", action_types=["REFUND"]))
    await desk.expire()
    number = desk.order()
    stored = []
    for index in range(3):
        raw = _email(desk, number, index)
        async with desk.sessions() as session:
            stored.append(
                await ingest_parsed(
                    session,
                    desk.sessions,
                    desk.env.client,
                    desk.merchant.settings,
                    desk.merchant.user_id,
                    raw,
                    parse_email(raw),
                    task_queue=desk.queue,
                )
            )
    for message in stored:
        handle = desk.env.client.get_workflow_handle(message.workflow_id, result_type=MessageState)
        final = await finished(handle, env=desk.env)
        assert (final.stage, final.note) == (Stage.SKIPPED, "not entitled: expired")

    ids = [m.message_id for m in stored]
    inbound = Message.direction == MessageDirection.INBOUND
    assert await desk.count(Message, Message.id.in_(ids), inbound, Message.raw.is_not(None)) == 3
    assert await desk.count(Event, Event.type == "message.not_entitled") == 3
    not_counted = Event.type == "usage.not_entitled", Event.payload["reason"].astext == "expired"
    assert await desk.count(Event, *not_counted) == 3
    assert desk.llm.requests == []
    assert await desk.count(AISuggestion) == 0
    assert await desk.count(Action) == 0
    assert await executions(desk.sessions, playbook_id) == []
    assert desk.sent() == [] and desk.merchant.refunds() == []
    assert await desk.count(Message, Message.direction == MessageDirection.OUTBOUND) == 0


async def test_a_person_cannot_approve_what_was_suggested_before_the_account_ended(
    desk: Desk,
) -> None:
    handle = await desk.damaged_item_mail()
    state = await awaiting_decision(handle)
    assert state.action_id is not None and state.suggestion_id is not None
    await desk.expire()
    for reply in (None, "Edited by a person: we refunded you."):
        async with desk.sessions() as session:
            with pytest.raises(NotEntitled, match="not entitled: expired"):
                await decisions.approve(
                    session, desk.env.client, desk.merchant.user_id, state.action_id, reply=reply
                )
    after = await awaiting_decision(handle)
    assert after.stage == Stage.AWAITING_DECISION
    assert after.action_status == ActionStatus.PENDING
    assert len(desk.llm.requests) == 1  # the one suggestion made while entitled
    assert desk.sent() == [] and desk.merchant.refunds() == []


async def _activity_result(handle: WorkflowHandle[Any, Any], name: str) -> bytes | None:
    """What the run's activity of type `name` returned (its encoded payload), once it has."""
    scheduled: set[int] = set()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == name:
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in scheduled:
                return b"".join(p.data for p in completed.result.payloads)
    return None


async def test_a_playbook_approval_after_the_account_ended_is_refused(desk: Desk) -> None:
    playbook_id = await _refund_on_its_own(
        desk, act("wait", seconds=DAYS), act("approve_suggestion", action_types=["REFUND"])
    )
    handle = await desk.damaged_item_mail()
    state = await awaiting_decision(handle)
    found = await eventually(lambda: executions(desk.sessions, playbook_id), 30, "a run")
    run = desk.env.client.get_workflow_handle(found[0].workflow_id or "")

    async def waiting() -> bool:
        (execution,) = await executions(desk.sessions, playbook_id)
        return bool((execution.result or {}).get("waiting"))

    await eventually(waiting, 30, "the run's wait")
    await desk.expire()
    await skip_time(desk.env, timedelta(days=1, minutes=1))
    verdict = await eventually(
        lambda: _activity_result(run, AUTO_APPROVE), 60, "the automatic approval"
    )
    assert b'"approved":false' in verdict and b"not_entitled" in verdict, verdict

    after = await awaiting_decision(handle)
    assert after.action_status == ActionStatus.PENDING  # left to a person, who cannot either
    assert (
        await desk.count(
            Action, Action.id == state.action_id, Action.status == ActionStatus.PENDING
        )
        == 1
    )
    assert desk.sent() == [] and desk.merchant.refunds() == []
    assert len(desk.llm.requests) == 1


async def test_a_followup_due_after_the_account_ended_is_not_sent(desk: Desk) -> None:
    playbook_id = await _refund_on_its_own(
        desk,
        act("approve_suggestion", action_types=["REFUND"]),
        act("wait", seconds=3 * DAYS),
        act("send_followup", template="Hi {customer_first_name}, is all well with {order_name}?"),
    )
    handle = await desk.damaged_item_mail()
    assert (await finished(handle, env=desk.env)).stage == Stage.EXECUTED
    assert len(desk.sent()) == 1 and len(desk.merchant.refunds()) == 1  # while entitled
    (execution,) = await eventually(lambda: executions(desk.sessions, playbook_id), 30, "a run")
    run = desk.env.client.get_workflow_handle(execution.workflow_id or "")

    await desk.expire()
    await skip_time(desk.env, timedelta(days=3, minutes=1))
    outcome = await finished(run, env=desk.env)
    assert outcome["status"] == "failed", outcome
    assert "not entitled" in str(outcome), outcome
    assert len(desk.sent()) == 1 and len(desk.merchant.refunds()) == 1
    followups = await desk.count(Action, Action.payload["followup"].astext == str(execution.id))
    assert followups == 0


async def test_a_reply_without_a_reservation_is_not_sent(desk: Desk) -> None:
    """The send step reserves an email for an approved action that holds none (approved
    before reservations existed): for an ended account it refuses, and nothing leaves."""
    number = desk.order()
    message_id, _, _ = await store_message(
        desk.sessions,
        desk.merchant,
        sender=desk.merchant.orders[number]["email"],
        subject="Where is it?",
        text="Where is my order?",
        started=True,
    )
    async with desk.sessions() as session, session.begin():
        action = Action(
            user_id=desk.merchant.user_id,
            message_id=message_id,
            type=ActionType.NONE,
            status=ActionStatus.APPROVED,
            payload={"reply": "It left today."},
        )
        session.add(action)
        await session.flush()
        action_id = action.id
    await desk.expire()
    mailer = SandboxMailer(desk.merchant.sandbox_url)
    try:
        step = ReplyStep(desk.sessions, mailer)
        with pytest.raises(NotEntitled):
            await ActivityEnvironment().run(
                step.send_reply, ActionRef(user_id=desk.merchant.user_id, action_id=action_id)
            )
    finally:
        await mailer.aclose()
    assert desk.sent() == []
    assert await desk.count(Message, Message.direction == MessageDirection.OUTBOUND) == 0
