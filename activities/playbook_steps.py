"""The PlaybookRunWorkflow's activities: fire playbooks on an event, approve on their own
within the caps, carry out their thread actions and follow-ups, and record each execution.

Deciding is `domain.playbook_engine` (pure); the facts come from `services.playbook_facts`.
Every step is safe to retry: executions are keyed by their firing, follow-ups by their
execution and step, and the counters move in the transaction that ends an execution.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from domain.playbook_engine import TriggerEvent, Verdict, choose, evaluate, render_template
from kernel.enums import ActionStatus, ActionType, MessageDirection, PlaybookExecutionStatus
from kernel.errors import DeskpilotError, NotFound, Transient
from models.action import Action
from models.action_log import log_action_event
from models.automation import automation_settings
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import log_event
from models.playbook import Playbook, PlaybookExecution
from models.thread_state import refresh_needs_decision
from services import decisions
from services.email_quota import reserve_email
from services.playbook_facts import (
    EngineContext,
    merchant_playbooks,
    message_context,
    order_context,
    playbook_view,
)
from workflows.playbook_contracts import (
    APPLY_PLAYBOOK_ACTION,
    AUTO_APPROVE,
    FINISH_EXECUTION,
    FIRE_PLAYBOOKS,
    IDLE_PLAYBOOKS,
    MARK_WAITING,
    PREPARE_FOLLOWUP,
    RECORD_DECISION_OUTCOME,
    ApplyInput,
    AutoApproved,
    DecisionOutcomeInput,
    ExecutionRef,
    FinishExecutionInput,
    Fired,
    FireInput,
    Firing,
    FollowupInput,
    FollowupPrepared,
    IdleInput,
    IdlePlaybook,
    IdlePlaybooks,
    WaitingInput,
    playbook_run_id,
)

log = logging.getLogger(__name__)

FINAL = (
    PlaybookExecutionStatus.executed,
    PlaybookExecutionStatus.failed,
    PlaybookExecutionStatus.rejected,
)
# Follow-up actions get ids derived from their execution and step: a retry finds the first.
FOLLOWUP_NAMESPACE = uuid.UUID("6f1c1c35-8a53-4c1e-9f43-6a3f0b8f2d10")


def decided_by_playbook(playbook_id: uuid.UUID) -> str:
    return f"playbook:{playbook_id}"


def trigger_key(data: FireInput) -> str:
    if data.trigger_key:
        return data.trigger_key
    if data.event == "message.received":
        return f"message:{data.message_id}"
    if data.event == "order.event":
        return f"order:{data.order_id}:{data.topic}"
    return f"idle:{data.since}:{data.action_id or data.message_id}"


def _trigger_data(context: EngineContext, verdict: Verdict) -> dict[str, Any]:
    """Why it fired, as the executions page shows it: the event, each condition with the
    value it saw, and what kept it from approving on its own."""
    return {
        "event": context.event.model_dump(mode="json", exclude_none=True),
        "conditions": [c.model_dump(mode="json") for c in verdict.conditions],
        "blocked_by": [b.model_dump(mode="json") for b in verdict.blocked_by],
    }


class PlaybookSteps:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], temporal: Client) -> None:
        self._sessions = sessions
        self._temporal = temporal

    def all(self) -> list[Any]:
        return [
            self.fire_playbooks,
            self.idle_playbooks,
            self.auto_approve,
            self.apply_playbook_action,
            self.mark_waiting,
            self.prepare_followup,
            self.record_decision_outcome,
            self.finish_execution,
        ]

    # --- firing -------------------------------------------------------------------------

    @activity.defn(name=FIRE_PLAYBOOKS)
    async def fire_playbooks(self, data: FireInput) -> Fired:
        """Evaluate the merchant's playbooks on the event and open an execution for each
        that fires (once per firing: a redelivery finds the same executions)."""
        async with unit_of_work(self._sessions) as session:
            context = await self._context(session, data)
            waiting = (
                await _waiting_runs(session, data.user_id, context.thread_id)
                if data.event == "message.received"
                else []
            )
            if not context.safety.automation_enabled:
                return Fired(waiting_workflow_ids=waiting)
            playbooks = [
                p
                for p in await merchant_playbooks(session, data.user_id)
                if data.only_playbook_id is None or p.id == data.only_playbook_id
            ]
            views = []
            for playbook in playbooks:
                try:
                    views.append(playbook_view(playbook))
                except DeskpilotError:  # stored before a stricter rule: skipped, said why
                    log.warning("playbook rules unreadable", extra={"playbook": str(playbook.id)})
            names = {p.id: p.name for p in playbooks}
            key = trigger_key(data)
            firings = []
            for verdict in choose(views, context.event, context.facts, context.safety):
                if not verdict.would_run:
                    continue
                firings.append(
                    await self._open(session, context, verdict, key, names[verdict.playbook_id])
                )
            return Fired(firings=firings, waiting_workflow_ids=waiting)

    async def _context(self, session: AsyncSession, data: FireInput) -> EngineContext:
        if data.event == "order.event":
            assert data.order_id is not None and data.topic is not None
            return await order_context(session, data.user_id, data.order_id, data.topic)
        assert data.message_id is not None
        event = None
        if data.event == "thread.idle":
            base = await message_context(session, data.user_id, data.message_id)
            event = TriggerEvent(
                event="thread.idle",
                since=data.since,
                idle_seconds=data.idle_seconds,
                intent=base.event.intent,
                channel=base.event.channel,
                language=base.event.language,
            )
        return await message_context(session, data.user_id, data.message_id, event=event)

    async def _open(
        self,
        session: AsyncSession,
        context: EngineContext,
        verdict: Verdict,
        key: str,
        name: str,
    ) -> Firing:
        workflow_id = playbook_run_id(verdict.playbook_id, key)
        confidence = context.facts.get("suggestion.confidence")
        inserted = await session.execute(
            insert(PlaybookExecution)
            .values(
                playbook_id=verdict.playbook_id,
                user_id=context.user_id,
                trigger_key=key,
                workflow_id=workflow_id,
                message_id=context.message_id,
                thread_id=context.thread_id,
                action_id=context.action_id,
                shop_domain=context.shop_domain,
                confidence=float(confidence) if confidence is not None else None,
                trigger_data=_trigger_data(context, verdict),
            )
            .on_conflict_do_nothing(
                index_elements=[PlaybookExecution.playbook_id, PlaybookExecution.trigger_key]
            )
            .returning(PlaybookExecution.id)
        )
        execution_id = inserted.scalar_one_or_none()
        new = execution_id is not None
        if execution_id is None:
            # A redelivery, or an idle timer that ran out: the execution is already open;
            # it keeps the newest explanation of why it fires.
            execution_id = (
                await session.execute(
                    update(PlaybookExecution)
                    .where(
                        PlaybookExecution.playbook_id == verdict.playbook_id,
                        PlaybookExecution.trigger_key == key,
                    )
                    .values(trigger_data=_trigger_data(context, verdict))
                    .returning(PlaybookExecution.id)
                )
            ).scalar_one()
        else:
            await log_event(
                session,
                "playbook.fired",
                user_id=context.user_id,
                entity="playbook",
                entity_id=verdict.playbook_id,
                payload={"execution_id": str(execution_id), "event": context.event.event},
            )
        return Firing(
            execution_id=execution_id,
            playbook_id=verdict.playbook_id,
            playbook_name=name,
            workflow_id=workflow_id,
            trigger_key=key,
            actions=verdict.actions,
            auto_approve=verdict.auto_approve,
            blocked_by=[b.model_dump(mode="json") for b in verdict.blocked_by],
            confidence=float(confidence) if confidence is not None else None,
            message_id=context.message_id,
            thread_id=context.thread_id,
            action_id=context.action_id,
            new=new,
        )

    @activity.defn(name=IDLE_PLAYBOOKS)
    async def idle_playbooks(self, data: IdleInput) -> IdlePlaybooks:
        """Start the idle timers: one open execution per enabled thread.idle playbook
        that counts from this moment (`since` our reply, or a pending suggestion)."""
        async with unit_of_work(self._sessions) as session:
            context = await message_context(session, data.user_id, data.message_id)
            if not context.safety.automation_enabled:
                return IdlePlaybooks()
            found = []
            for playbook in await merchant_playbooks(session, data.user_id):
                trigger = _idle_trigger(playbook)
                if not playbook.enabled or trigger is None or trigger.since != data.since:
                    continue
                key = f"idle:{data.since}:{data.action_id}"
                workflow_id = playbook_run_id(playbook.id, key)
                until = datetime.now(UTC) + timedelta(seconds=trigger.after_seconds)
                await session.execute(
                    insert(PlaybookExecution)
                    .values(
                        playbook_id=playbook.id,
                        user_id=data.user_id,
                        trigger_key=key,
                        workflow_id=workflow_id,
                        message_id=context.message_id,
                        thread_id=context.thread_id,
                        action_id=context.action_id,
                        shop_domain=context.shop_domain,
                        trigger_data={"event": {"event": "thread.idle", "since": data.since}},
                        result={
                            "waiting": {
                                "until": until.isoformat(),
                                "cancel_on_reply": data.since == "our_reply",
                            }
                        },
                    )
                    .on_conflict_do_nothing(
                        index_elements=[
                            PlaybookExecution.playbook_id,
                            PlaybookExecution.trigger_key,
                        ]
                    )
                )
                execution_id = (
                    await session.execute(
                        select(PlaybookExecution.id).where(
                            PlaybookExecution.playbook_id == playbook.id,
                            PlaybookExecution.trigger_key == key,
                        )
                    )
                ).scalar_one()
                found.append(
                    IdlePlaybook(
                        playbook_id=playbook.id,
                        after_seconds=trigger.after_seconds,
                        execution_id=execution_id,
                        workflow_id=workflow_id,
                        trigger_key=key,
                    )
                )
            return IdlePlaybooks(playbooks=found)

    # --- approving ----------------------------------------------------------------------

    @activity.defn(name=AUTO_APPROVE)
    async def auto_approve(self, data: ExecutionRef) -> AutoApproved:
        """Approve the suggestion without a person if every check still allows it now.

        The merchant's settings row is locked while the caps are counted and this
        execution is marked approved, so concurrent runs cannot both pass a cap."""
        async with unit_of_work(self._sessions) as session:
            execution = await _execution(session, data, lock=True)
            action = await session.get(Action, execution.action_id) if execution.action_id else None
            if action is None or execution.message_id is None:
                return AutoApproved(
                    approved=False, blocked_by=[_blocker("no_suggestion", "no action to approve")]
                )
            ours = execution.automatic and execution.status is PlaybookExecutionStatus.approved
            if ours and action.status is not ActionStatus.PENDING:
                return AutoApproved(approved=True)  # approved by an earlier attempt
            if action.status is not ActionStatus.PENDING:
                return AutoApproved(
                    approved=False,
                    blocked_by=[_blocker("decided", f"already {action.status.value.lower()}")],
                )
            if not ours:
                # An attempt that got past this point passed the checks and counts in the
                # caps already; checking again would count it twice.
                blocked = await self._take_caps(session, data, execution, action)
                if blocked:
                    return AutoApproved(approved=False, blocked_by=blocked)
            action_id, playbook_id = action.id, execution.playbook_id
        try:
            async with self._sessions() as session:
                await decisions.approve(
                    session,
                    self._temporal,
                    data.user_id,
                    action_id,
                    decided_by=decided_by_playbook(playbook_id),
                )
        except Transient:
            raise
        except DeskpilotError as exc:
            # Refused by the same checks a person's approval meets (a plan limit, an
            # order that changed, a person who decided first): a person decides.
            async with unit_of_work(self._sessions) as session:
                execution = await _execution(session, data, lock=True)
                if execution.status is PlaybookExecutionStatus.approved and execution.automatic:
                    execution.status = PlaybookExecutionStatus.pending
                    execution.automatic = False
                    execution.decided_by = None
                    execution.refund_amount = None
            return AutoApproved(approved=False, blocked_by=[_blocker(exc.code, str(exc))])
        return AutoApproved(approved=True)

    async def _take_caps(
        self,
        session: AsyncSession,
        data: ExecutionRef,
        execution: PlaybookExecution,
        action: Action,
    ) -> list[dict[str, str]]:
        """Check everything again now; if it still allows an automatic approval, mark the
        execution approved (so it counts in the caps) under the merchant's settings lock."""
        assert execution.message_id is not None
        playbook = await session.get(Playbook, execution.playbook_id)
        assert playbook is not None
        await automation_settings(session, data.user_id, lock=True)
        context = await message_context(session, data.user_id, execution.message_id)
        verdict = evaluate(playbook_view(playbook), context.event, context.facts, context.safety)
        if not verdict.auto_approve:
            return [b.model_dump(mode="json") for b in verdict.blocked_by]
        amount = context.facts.get("suggestion.refund_amount")
        execution.status = PlaybookExecutionStatus.approved
        execution.automatic = True
        execution.decided_by = decided_by_playbook(playbook.id)
        execution.refund_amount = amount if action.type is ActionType.REFUND else None
        return []

    @activity.defn(name=RECORD_DECISION_OUTCOME)
    async def record_decision_outcome(self, data: DecisionOutcomeInput) -> None:
        """What became of the suggestion: approved (by this playbook or a person) or
        rejected."""
        async with unit_of_work(self._sessions) as session:
            execution = await _execution(session, data, lock=True)
            if execution.status in FINAL:
                return
            ours = data.decided_by == decided_by_playbook(execution.playbook_id)
            if data.status == ActionStatus.APPROVED.value:
                execution.status = PlaybookExecutionStatus.approved
                if not ours:
                    execution.automatic = False
                    execution.refund_amount = None
            execution.decided_by = data.decided_by if ours else "person"

    # --- the other actions --------------------------------------------------------------

    @activity.defn(name=APPLY_PLAYBOOK_ACTION)
    async def apply_playbook_action(self, data: ApplyInput) -> dict[str, Any]:
        """tag_thread, close_thread, escalate, reply_with_template: each idempotent."""
        kind = str(data.action.get("type"))
        async with unit_of_work(self._sessions) as session:
            execution = await _execution(session, data, lock=True)
            settings = await automation_settings(session, data.user_id)
            if not settings.enabled:
                return {"type": kind, "stopped": "automation is switched off"}
            thread = await session.get(Thread, execution.thread_id) if execution.thread_id else None
            if kind == "tag_thread":
                if thread is None:
                    return {"type": kind, "skipped": "no thread"}
                tags = [str(t) for t in data.action.get("tags", [])]
                thread.tags = sorted({*(thread.tags or []), *tags})
                return {"type": kind, "tags": tags}
            if kind == "close_thread":
                if thread is None:
                    return {"type": kind, "skipped": "no thread"}
                thread.closed_at = thread.closed_at or datetime.now(UTC)
                return {"type": kind}
            if kind == "escalate":
                reason = str(data.action.get("reason", ""))
                await _note_on_action(session, execution, f"escalated by a playbook: {reason}")
                await log_event(
                    session,
                    "playbook.escalated",
                    user_id=data.user_id,
                    entity="playbook",
                    entity_id=execution.playbook_id,
                    payload={"execution_id": str(execution.id), "reason": reason},
                )
                return {"type": kind, "reason": reason}
            if kind == "reply_with_template":
                return await self._template_draft(session, execution, data)
            return {"type": kind, "skipped": "not a thread action"}

    async def _template_draft(
        self, session: AsyncSession, execution: PlaybookExecution, data: ApplyInput
    ) -> dict[str, Any]:
        """The merchant's wording replaces the drafted reply of the pending suggestion."""
        action = await session.get(Action, execution.action_id) if execution.action_id else None
        if action is None or execution.message_id is None:
            return {"type": "reply_with_template", "skipped": "no suggestion to reply to"}
        if action.status is not ActionStatus.PENDING:
            return {"type": "reply_with_template", "skipped": "already decided"}
        context = await message_context(session, data.user_id, execution.message_id)
        reply = render_template(str(data.action.get("template", "")), context.facts)
        if action.payload.get("reply") != reply:
            action.payload = {**action.payload, "reply": reply, "reply_from": "template"}
            await log_action_event(
                session,
                "action.reply_templated",
                data.user_id,
                action.id,
                {"playbook_id": str(execution.playbook_id)},
            )
        return {"type": "reply_with_template"}

    @activity.defn(name=MARK_WAITING)
    async def mark_waiting(self, data: WaitingInput) -> None:
        """Record that the run waits (so a customer's reply can find it), or no longer."""
        async with unit_of_work(self._sessions) as session:
            execution = await _execution(session, data, lock=True)
            result = dict(execution.result or {})
            if data.until is None:
                result.pop("waiting", None)
            else:
                result["waiting"] = {"until": data.until, "cancel_on_reply": data.cancel_on_reply}
            execution.result = result

    @activity.defn(name=PREPARE_FOLLOWUP)
    async def prepare_followup(self, data: FollowupInput) -> FollowupPrepared:
        """An approved reply-only action for the follow-up, keyed by execution and step,
        with its email reserved; the run then sends it through the usual reply step."""
        action_id = uuid.uuid5(FOLLOWUP_NAMESPACE, f"{data.execution_id}:{data.index}")
        async with unit_of_work(self._sessions) as session:
            if await session.get(Action, action_id) is not None:
                return FollowupPrepared(action_id=action_id)
            execution = await _execution(session, data, lock=True)
            settings = await automation_settings(session, data.user_id)
            if not settings.enabled:
                return FollowupPrepared(note="automation is switched off")
            if execution.thread_id is None:
                return FollowupPrepared(note="no conversation with the customer to follow up")
            latest = (
                await session.execute(
                    select(Message)
                    .where(
                        Message.user_id == data.user_id,
                        Message.thread_id == execution.thread_id,
                        Message.direction == MessageDirection.INBOUND,
                    )
                    .order_by(Message.sent_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if latest is None:
                return FollowupPrepared(note="no message from the customer to follow up")
            context = await message_context(session, data.user_id, latest.id)
            reply = render_template(data.template, context.facts)
            action = Action(
                id=action_id,
                user_id=data.user_id,
                order_id=latest.order_id,
                type=ActionType.NONE,
                status=ActionStatus.APPROVED,
                payload={
                    "reply": reply,
                    "reply_to": str(latest.id),
                    "followup": str(execution.id),
                    "playbook_id": str(execution.playbook_id),
                },
            )
            session.add(action)
            await session.flush()
            await reserve_email(session, data.user_id, action.id)
            await log_action_event(
                session,
                "action.approved",
                data.user_id,
                action.id,
                {"by": decided_by_playbook(execution.playbook_id), "followup": True},
            )
            return FollowupPrepared(action_id=action_id)

    # --- ending -------------------------------------------------------------------------

    @activity.defn(name=FINISH_EXECUTION)
    async def finish_execution(self, data: FinishExecutionInput) -> None:
        """The execution's end, with the playbook's counters in the same transaction: a
        retry changes nothing twice. Failures in a row pause the playbook."""
        async with unit_of_work(self._sessions) as session:
            execution = await _execution(session, data, lock=True)
            if execution.status in FINAL:
                return
            status = PlaybookExecutionStatus(data.status)
            now = datetime.now(UTC)
            execution.status = status
            execution.error = data.error
            result = {k: v for k, v in (execution.result or {}).items() if k != "waiting"}
            execution.result = {**result, **data.result}
            if status is not PlaybookExecutionStatus.approved and not execution.automatic:
                execution.refund_amount = None
            if status is PlaybookExecutionStatus.executed:
                execution.executed_at = now
                await session.execute(
                    update(Playbook)
                    .where(Playbook.id == execution.playbook_id)
                    .values(
                        execution_count=Playbook.execution_count + 1,
                        last_executed_at=now,
                        consecutive_failures=0,
                    )
                )
            elif status is PlaybookExecutionStatus.failed:
                await self._count_failure(session, execution, data.error or "failed")
            await log_event(
                session,
                f"playbook.{status.value}",
                user_id=data.user_id,
                entity="playbook",
                entity_id=execution.playbook_id,
                payload={"execution_id": str(execution.id), "error": data.error},
            )

    async def _count_failure(
        self, session: AsyncSession, execution: PlaybookExecution, error: str
    ) -> None:
        failures = (
            await session.execute(
                update(Playbook)
                .where(Playbook.id == execution.playbook_id)
                .values(consecutive_failures=Playbook.consecutive_failures + 1)
                .returning(Playbook.consecutive_failures)
            )
        ).scalar_one()
        settings = await automation_settings(session, execution.user_id)
        playbook = await session.get(Playbook, execution.playbook_id, with_for_update=True)
        assert playbook is not None
        if failures >= settings.pause_after_failures and playbook.enabled:
            playbook.enabled = False
            playbook.disabled_reason = (
                f"paused after {failures} failed executions in a row; the last: {error}"
            )
            await log_event(
                session,
                "playbook.paused",
                user_id=execution.user_id,
                entity="playbook",
                entity_id=playbook.id,
                payload={"failures": failures, "error": error},
            )


def _idle_trigger(playbook: Playbook) -> Any:
    try:
        trigger = playbook_view(playbook).rules.trigger
    except DeskpilotError:
        return None
    return trigger if getattr(trigger, "event", None) == "thread.idle" else None


async def _execution(
    session: AsyncSession, ref: ExecutionRef, *, lock: bool = False
) -> PlaybookExecution:
    query = select(PlaybookExecution).where(
        PlaybookExecution.id == ref.execution_id, PlaybookExecution.user_id == ref.user_id
    )
    if lock:
        query = query.with_for_update()
    execution = (await session.execute(query)).scalar_one_or_none()
    if execution is None:
        raise NotFound(f"playbook execution {ref.execution_id} not found")
    return execution


async def _waiting_runs(
    session: AsyncSession, user_id: uuid.UUID, thread_id: uuid.UUID | None
) -> list[str]:
    """Runs in this thread waiting on the customer: a reply from them ends those waits."""
    if thread_id is None:
        return []
    rows = await session.execute(
        select(PlaybookExecution.workflow_id).where(
            PlaybookExecution.user_id == user_id,
            PlaybookExecution.thread_id == thread_id,
            PlaybookExecution.status.not_in(FINAL),
            PlaybookExecution.result["waiting"].is_not(None),
        )
    )
    return [w for w in rows.scalars() if w]


async def _note_on_action(session: AsyncSession, execution: PlaybookExecution, note: str) -> None:
    action = await session.get(Action, execution.action_id) if execution.action_id else None
    if action is not None and action.status is ActionStatus.PENDING:
        action.payload = {**action.payload, "note": note}
    if execution.thread_id is not None:
        await refresh_needs_decision(session, execution.thread_id)


def _blocker(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}
