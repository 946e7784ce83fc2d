"""Preparing a message: classify it, match its order, check the plan, draft the suggestion
through the guardrails, and store the PENDING action a person (or a playbook) decides."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.message_records import message_of, shop_of
from activities.suggestion_inputs import guardrail_context, store_domains, thread_history
from domain.guardrails import GuardedSuggestion, GuardrailContext, guard_suggestion
from domain.mail.classify import automated_reason
from domain.order_names import order_names_in
from integrations.ports import ShopifyPort, SuggesterPort
from kernel.enums import ActionStatus, ActionType
from kernel.errors import IntegrationError
from kernel.values import OrderSnapshot, SuggestionDraft, SuggestionRequest
from models.action import Action
from models.action_log import log_action_event
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import log_event
from models.order import Order
from models.order_matching import match_order, message_shop
from models.reply_route import store_name
from models.suggestion import AISuggestion
from models.thread_state import refresh_needs_decision
from services.usage import get_usage_summary, increment_ai_suggestions
from workflows.contracts import PREPARE_MESSAGE, Prepared, PrepareInput

log = logging.getLogger(__name__)

# Attempts at the suggestion step before a provider that keeps failing transiently (429,
# 5xx, timeouts) is given up on and the message waits for a person without a suggestion.
SUGGESTION_ATTEMPTS = 4


class PrepareStep:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        shopify: ShopifyPort,
        suggester: SuggesterPort,
        *,
        policy: str = "",
    ) -> None:
        self._sessions = sessions
        self._shopify = shopify
        self._suggester = suggester
        self._policy = policy

    @activity.defn(name=PREPARE_MESSAGE)
    async def prepare_message(self, data: PrepareInput) -> Prepared:
        """Classify, match the order, check the plan, draft the suggestion, create the Action."""
        async with unit_of_work(self._sessions) as session:
            message = await message_of(session, data.user_id, data.message_id)
            existing = (
                await session.execute(select(Action).where(Action.message_id == message.id))
            ).scalar_one_or_none()
            if existing is not None:  # a retry after the work was committed
                return await _prepared_from(session, message, existing)
            skip = automated_reason(message.headers)
            if skip is not None:
                await log_event(
                    session,
                    "message.skipped",
                    user_id=data.user_id,
                    entity="message",
                    entity_id=message.id,
                    payload={"reason": skip},
                )
                return Prepared(skip_reason=skip)
            usage = await get_usage_summary(session, data.user_id)
            if not usage.entitled:
                # Stored, never suggested nor answered: the plan covers neither. The
                # workflow ends here, so no playbook can act on it either.
                reason = f"not entitled: {usage.entitlement_reason}"
                await log_event(
                    session,
                    "message.not_entitled",
                    user_id=data.user_id,
                    entity="message",
                    entity_id=message.id,
                    payload={"reason": usage.entitlement_reason},
                )
                return Prepared(skip_reason=reason)
            thread = await session.get(Thread, message.thread_id)
            order = await match_order(
                session,
                data.user_id,
                message.from_address,
                order_names_in(f"{message.subject}\n{message.body_text}"),
                shop_domain=await message_shop(session, message.connection_id),
            )
            if order is not None and message.order_id is None:
                message.order_id = order.id
            store = await store_name(session, message)
            # Checked before the model is called: a suggestion the plan cannot count is
            # never asked for (and never paid for).
            allowance = (
                "AI suggestion limit reached for this period"
                if usage.remaining.ai_suggestions == 0
                else None
            )
            fresh = await self._fresh_order(session, order) if order is not None else None
            if order is not None and fresh is not None:
                # Synced orders are summaries; keep what the store said now, items included,
                # for the thread page.
                order.details = {**(order.details or {}), **fresh.model_dump(mode="json")}
            request = SuggestionRequest(
                store_name=store or "our store",
                customer_email=message.from_address,
                subject=message.subject,
                text=message.body_text,
                quoted=message.quoted_text,
                policy=self._policy,
                history=await thread_history(session, message),
                order=fresh,
            )
            context = guardrail_context(
                request,
                order_shop=order.shop_domain if order else None,
                hidden_text=message.hidden_text,
                domains=await store_domains(session, data.user_id),
            )
            order_id = order.id if order else None
            order_name = order.name if order else None
            thread_id = thread.id if thread else message.thread_id

        # The model call runs outside any transaction: it can take seconds.
        draft, unavailable = None, allowance
        if allowance is None:
            draft, unavailable = await self._draft(request)
        # Whatever the provider said, only what passes the guardrails is stored.
        guarded = None
        if draft is not None:
            guarded = await _guarded(draft, context)
            if guarded is None:
                draft, unavailable = None, "no AI suggestion: the message could not be analysed"

        # The message read above is used as read then (its id, thread and time): nothing
        # of it changes in between.
        async with unit_of_work(self._sessions) as session:
            counted = guarded is not None and await increment_ai_suggestions(session, data.user_id)
            suggestion = None
            if counted and guarded is not None:
                final = guarded.draft
                # The guardrails may drop the order (not the sender's): then act on none.
                acted_on = order_id if guarded.order is not None else None
                notes = [note.model_dump() for note in guarded.notes]
                suggestion = AISuggestion(
                    message_id=message.id,
                    reply=final.reply,
                    proposed_action=final.action,
                    order_id=acted_on,
                    confidence=final.confidence,
                    provider=final.provider,
                    intent=final.intent,
                    rationale=final.rationale,
                    prompt_tokens=final.prompt_tokens,
                    completion_tokens=final.completion_tokens,
                    guardrails=notes,
                    language=final.language,
                    sentiment=final.sentiment,
                    wants_human=final.wants_human,
                    legal_threat=final.legal_threat,
                )
                session.add(suggestion)
                await session.flush()
                action = Action(
                    user_id=data.user_id,
                    message_id=message.id,
                    suggestion_id=suggestion.id,
                    order_id=acted_on,
                    type=final.action,
                    payload={
                        **final.payload,
                        "reply": final.reply,
                        "intent": final.intent,
                        "rationale": final.rationale,
                        "provider": final.provider,
                        **({"guardrails": notes} if notes else {}),
                    },
                )
                if notes:
                    await log_event(
                        session,
                        "suggestion.guarded",
                        user_id=data.user_id,
                        entity="message",
                        entity_id=message.id,
                        payload={
                            "codes": [note.code for note in guarded.notes],
                            "proposed": guarded.original.action.value,
                            "kept": final.action.value,
                        },
                    )
            else:
                # No suggestion (the plan's AI limit, or the provider failing): the message
                # still reaches a person, who writes the reply, and the note says why.
                action = Action(
                    user_id=data.user_id,
                    message_id=message.id,
                    order_id=order_id,
                    type=ActionType.NONE,
                    payload={
                        "reply": "",
                        "note": unavailable
                        if draft is None
                        else "AI suggestion limit reached for this period",
                    },
                )
            session.add(action)
            await session.flush()
            await refresh_needs_decision(session, message.thread_id)
            await log_action_event(
                session,
                "action.pending",
                data.user_id,
                action.id,
                {
                    "type": action.type.value,
                    "message_id": str(message.id),
                    "suggested": suggestion is not None,
                },
            )
            prepared = await _prepared_from(session, message, action, order_name=order_name)
            log.info(
                "suggestion ready",
                extra={
                    "message_id": str(message.id),
                    "thread_id": str(thread_id),
                    "action": action.type.value,
                },
            )
            return prepared

    async def _draft(self, request: SuggestionRequest) -> tuple[SuggestionDraft | None, str]:
        """The provider's draft, or None and why not. A transient failure is retried by
        Temporal a few times; after that, or at once for a refusal or an invalid answer,
        the message goes to a person without a suggestion rather than waiting for ever."""
        try:
            return await self._suggester.suggest(request), ""
        except IntegrationError as exc:
            if exc.retryable and activity.info().attempt < SUGGESTION_ATTEMPTS:
                raise
            log.warning("no suggestion: the provider failed", extra={"error": str(exc)})
            return None, f"no AI suggestion: {exc}"
        except Exception as exc:
            # A bug or a message no rule can read: retrying cannot help, a person can.
            log.exception("no suggestion: the message could not be analysed")
            return (
                None,
                f"no AI suggestion: the message could not be analysed ({type(exc).__name__})",
            )

    async def _fresh_order(self, session: AsyncSession, order: Order) -> OrderSnapshot | None:
        """The order as the store has it now; None if the store refuses (the suggestion
        then goes without order details), an exception to retry if it is unreachable."""
        try:
            return await self._shopify.get_order(await shop_of(session, order), order.shopify_id)
        except IntegrationError as exc:
            if exc.retryable:
                raise
            log.warning(
                "order unavailable for the suggestion",
                extra={"order": order.name, "error": str(exc)},
            )
            return None


async def _guarded(draft: SuggestionDraft, context: GuardrailContext) -> GuardedSuggestion | None:
    """The guardrails' verdict with the calibrated confidence, computed off the event loop;
    None if they could not run, and then nothing of the draft may be stored."""
    try:
        return await asyncio.to_thread(guard_suggestion, draft, context)
    except Exception:
        log.exception("the guardrails could not check the draft")
        return None


async def _prepared_from(
    session: AsyncSession, message: Message, action: Action, *, order_name: str | None = None
) -> Prepared:
    """What the workflow needs of the stored action; `order_name` when the caller knows it."""
    older = await session.execute(
        select(Message.workflow_id)
        .join(Action, Action.message_id == Message.id)
        .where(
            Message.thread_id == message.thread_id,
            Message.user_id == message.user_id,
            Message.id != message.id,
            Message.sent_at <= message.sent_at,
            Message.workflow_id.is_not(None),
            Action.status == ActionStatus.PENDING,
        )
    )
    if order_name is None and action.order_id is not None:
        order = await session.get(Order, action.order_id)
        order_name = order.name if order else None
    return Prepared(
        order_name=order_name,
        suggestion_id=action.suggestion_id,
        action_id=action.id,
        action_type=action.type,
        action_status=action.status,
        note=action.payload.get("note"),
        superseded_workflow_ids=[w for w in older.scalars() if w],
    )
