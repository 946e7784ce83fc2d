"""Firing playbooks on an event: evaluate them on the facts, open an execution per firing
(keyed by the firing, so a redelivery finds it), and start the idle timers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.message_records import message_of
from activities.playbook_records import idle_trigger, waiting_runs
from domain.playbook_engine import TriggerEvent, Verdict, choose, listening
from domain.playbook_rules import ThreadIdleTrigger
from kernel.errors import DeskpilotError
from models.db import unit_of_work
from models.event import log_event
from models.playbook import PlaybookExecution
from services.playbook_facts import (
    EngineContext,
    merchant_playbooks,
    message_context,
    order_context,
    playbook_view,
)
from workflows.playbook_contracts import (
    FIRE_PLAYBOOKS,
    IDLE_PLAYBOOKS,
    Fired,
    FireInput,
    Firing,
    IdleInput,
    IdlePlaybook,
    IdlePlaybooks,
    playbook_run_id,
)

log = logging.getLogger(__name__)


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


class FiringStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- firing -------------------------------------------------------------------------

    @activity.defn(name=FIRE_PLAYBOOKS)
    async def fire_playbooks(self, data: FireInput) -> Fired:
        """Evaluate the merchant's playbooks on the event and open an execution for each
        that fires (once per firing: a redelivery finds the same executions)."""
        async with unit_of_work(self._sessions) as session:
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
            # The facts cost a dozen queries: read only when a playbook may fire.
            context = await self._context(session, data) if listening(views, data.event) else None
            waiting: list[str] = []
            if data.event == "message.received":
                assert data.message_id is not None
                thread_id = (
                    context.thread_id
                    if context is not None
                    else (await message_of(session, data.user_id, data.message_id)).thread_id
                )
                waiting = await waiting_runs(session, data.user_id, thread_id)
            idle_since = sorted(
                {
                    view.rules.trigger.since
                    for view in listening(views, "thread.idle")
                    if isinstance(view.rules.trigger, ThreadIdleTrigger)
                }
            )
            if context is None or not context.safety.automation_enabled:
                return Fired(waiting_workflow_ids=waiting, idle_since=idle_since)
            names = {p.id: p.name for p in playbooks}
            key = trigger_key(data)
            firings = []
            for verdict in choose(views, context.event, context.facts, context.safety):
                if not verdict.would_run:
                    continue
                firings.append(
                    await self._open(session, context, verdict, key, names[verdict.playbook_id])
                )
            return Fired(firings=firings, waiting_workflow_ids=waiting, idle_since=idle_since)

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
            idle = [
                (playbook, trigger)
                for playbook in await merchant_playbooks(session, data.user_id)
                if playbook.enabled
                and (trigger := idle_trigger(playbook)) is not None
                and trigger.since == data.since
            ]
            if not idle:  # the common case: no facts to read
                return IdlePlaybooks()
            context = await message_context(session, data.user_id, data.message_id)
            if not context.safety.automation_enabled:
                return IdlePlaybooks()
            found = []
            for playbook, trigger in idle:
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
