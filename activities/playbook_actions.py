"""A playbook's own actions: tag or close the thread, escalate, template the reply, mark
a wait, and prepare a follow-up, each idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.playbook_records import decided_by_playbook, execution_of, note_on_action
from domain.playbook_engine import render_template
from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.action import Action
from models.action_log import log_action_event
from models.automation import automation_settings
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import log_event
from models.playbook import PlaybookExecution
from services.email_quota import reserve_email
from services.playbook_facts import message_context
from workflows.playbook_contracts import (
    APPLY_PLAYBOOK_ACTION,
    MARK_WAITING,
    PREPARE_FOLLOWUP,
    ApplyInput,
    FollowupInput,
    FollowupPrepared,
    WaitingInput,
)

# Follow-up actions get ids derived from their execution and step: a retry finds the first.
FOLLOWUP_NAMESPACE = uuid.UUID("6f1c1c35-8a53-4c1e-9f43-6a3f0b8f2d10")


class ActionsStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- the other actions --------------------------------------------------------------

    @activity.defn(name=APPLY_PLAYBOOK_ACTION)
    async def apply_playbook_action(self, data: ApplyInput) -> dict[str, Any]:
        """tag_thread, close_thread, escalate, reply_with_template: each idempotent."""
        kind = str(data.action.get("type"))
        async with unit_of_work(self._sessions) as session:
            execution = await execution_of(session, data, lock=True)
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
                await note_on_action(session, execution, f"escalated by a playbook: {reason}")
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
            execution = await execution_of(session, data, lock=True)
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
            execution = await execution_of(session, data, lock=True)
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
