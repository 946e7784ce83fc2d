"""The MessageWorkflow's activities: thin steps that read and write the database and
call the ports. Each owns its transaction and is safe to retry."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gmail_access import GmailAccess
from activities.suggestion_inputs import guardrail_context, store_domains, thread_history
from domain.guardrails import apply_guardrails
from domain.mail.classify import automated_reason
from domain.order_names import order_names_in
from domain.order_rules import why_not_allowed
from integrations.gmail.client import SentMessage
from integrations.ports import MailPort, ShopifyPort, SuggesterPort
from kernel.enums import ActionStatus, ActionType, MessageDirection
from kernel.errors import IntegrationError
from kernel.values import (
    OrderSnapshot,
    OutboundEmail,
    ShopTarget,
    SuggestionDraft,
    SuggestionRequest,
)
from models.action import Action
from models.connection import Connection
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import log_event
from models.order import Order
from models.order_matching import match_order
from models.reply_route import ReplyRoute, reply_route, store_name
from models.suggestion import AISuggestion
from models.thread_state import refresh_for_action, refresh_needs_decision
from services.usage import (
    can_send_email,
    get_usage_summary,
    increment_ai_suggestions,
    increment_email_sent,
)

log = logging.getLogger(__name__)

# Actions that change nothing in the store: approving them only sends the reply.
REPLY_ONLY = frozenset({ActionType.NONE, ActionType.INFO_REQUEST})
# Attempts at the suggestion step before a provider that keeps failing transiently (429,
# 5xx, timeouts) is given up on and the message waits for a person without a suggestion.
SUGGESTION_ATTEMPTS = 4
# Payload keys the execution writes for itself; an edited payload cannot set them
# (it would skip the order check or pretend the store already acted).
EXECUTION_KEYS = frozenset({"outcome", "performing_since", "prepared"})


class ErrorType:
    """ApplicationError types the workflow treats as final (never retried)."""

    NOT_FOUND = "NotFound"
    ALREADY_DECIDED = "AlreadyDecided"
    NO_LONGER_VALID = "ActionNoLongerValid"
    SHOPIFY_REFUSED = "ShopifyRefused"
    MAIL_REFUSED = "MailRefused"
    EMAIL_LIMIT = "EmailLimitReached"
    NOT_APPROVED = "NotApproved"

    FINAL = (
        NOT_FOUND,
        ALREADY_DECIDED,
        NO_LONGER_VALID,
        SHOPIFY_REFUSED,
        MAIL_REFUSED,
        EMAIL_LIMIT,
        NOT_APPROVED,
    )


class PrepareInput(BaseModel):
    user_id: uuid.UUID
    message_id: uuid.UUID


class Prepared(BaseModel):
    skip_reason: str | None = None
    order_name: str | None = None
    suggestion_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    action_type: ActionType | None = None
    action_status: ActionStatus | None = None
    note: str | None = None
    # Workflows of older messages in the thread still waiting for a decision.
    superseded_workflow_ids: list[str] = []


class DecisionInput(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID
    decision: Literal["approve", "reject"]
    decided_by: str
    reply: str | None = None
    payload: dict[str, Any] | None = None
    reason: str | None = None


class ActionRef(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID


class FinishInput(ActionRef):
    reply_error: str | None = None  # the store acted but the reply could not be sent


class FailInput(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID
    error: str


def idempotency_key(action_id: uuid.UUID) -> str:
    """Shopify returns the first result for a repeated key: a retried refund refunds once."""
    return f"deskpilot-action-{action_id}"


def reply_message_id(action_id: uuid.UUID, domain: str) -> str:
    """The reply's Message-ID is fixed by the action, so a resend is recognisable."""
    return f"<reply-{action_id}@{domain}>"


def _final(message: str, type_: str) -> ApplicationError:
    return ApplicationError(message, type=type_, non_retryable=True)


class MessageActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        shopify: ShopifyPort,
        mailer: MailPort,
        suggester: SuggesterPort,
        gmail: GmailAccess | None = None,
        *,
        policy: str = "",
    ) -> None:
        self._sessions = sessions
        self._shopify = shopify
        self._mailer = mailer
        self._suggester = suggester
        self._gmail = gmail
        self._policy = policy

    def all(self) -> list[Any]:
        return [
            self.prepare_message,
            self.record_decision,
            self.remind,
            self.execute_action,
            self.send_reply,
            self.finish,
            self.mark_failed,
        ]

    # --- helpers ------------------------------------------------------------------------

    async def _message(
        self, session: AsyncSession, user_id: uuid.UUID, message_id: uuid.UUID
    ) -> Message:
        message = (
            await session.execute(
                select(Message).where(Message.id == message_id, Message.user_id == user_id)
            )
        ).scalar_one_or_none()
        if message is None:
            raise _final(f"message {message_id} not found for this merchant", ErrorType.NOT_FOUND)
        return message

    async def _action(
        self, session: AsyncSession, user_id: uuid.UUID, action_id: uuid.UUID, *, lock: bool = False
    ) -> Action:
        query = select(Action).where(Action.id == action_id, Action.user_id == user_id)
        if lock:
            query = query.with_for_update()
        action = (await session.execute(query)).scalar_one_or_none()
        if action is None:
            raise _final(f"action {action_id} not found for this merchant", ErrorType.NOT_FOUND)
        return action

    async def _shop(self, session: AsyncSession, order: Order) -> ShopTarget:
        connection = await session.get(Connection, order.connection_id)
        if connection is None:
            raise _final(
                f"the store of order {order.name} is no longer connected", ErrorType.NOT_FOUND
            )
        api_base = (connection.metadata_ or {}).get("apiBase")
        return ShopTarget(
            shop_domain=order.shop_domain, access_token=connection.access_token, api_base=api_base
        )

    async def _fresh_order(self, session: AsyncSession, order: Order) -> OrderSnapshot | None:
        """The order as the store has it now; None if the store refuses (the suggestion
        then goes without order details), an exception to retry if it is unreachable."""
        try:
            return await self._shopify.get_order(await self._shop(session, order), order.shopify_id)
        except IntegrationError as exc:
            if exc.retryable:
                raise
            log.warning(
                "order unavailable for the suggestion",
                extra={"order": order.name, "error": str(exc)},
            )
            return None

    # --- steps --------------------------------------------------------------------------

    @activity.defn(name="prepare_message")
    async def prepare_message(self, data: PrepareInput) -> Prepared:
        """Classify, match the order, check the plan, draft the suggestion, create the Action."""
        async with unit_of_work(self._sessions) as session:
            message = await self._message(session, data.user_id, data.message_id)
            existing = (
                await session.execute(select(Action).where(Action.message_id == message.id))
            ).scalar_one_or_none()
            if existing is not None:  # a retry after the work was committed
                return await self._prepared_from(session, message, existing)
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
            thread = await session.get(Thread, message.thread_id)
            order = await match_order(
                session,
                data.user_id,
                message.from_address,
                order_names_in(f"{message.subject}\n{message.body_text}"),
            )
            if order is not None and message.order_id is None:
                message.order_id = order.id
            store = await store_name(session, message)
            quota = (await get_usage_summary(session, data.user_id)).remaining.ai_suggestions
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
                domains=await store_domains(session, data.user_id),
            )
            order_id = order.id if order else None
            order_name = order.name if order else None
            thread_id = thread.id if thread else message.thread_id

        # The model call runs outside any transaction: it can take seconds.
        draft, unavailable = None, "AI suggestion limit reached for this period"
        if quota != 0:
            draft, unavailable = await self._draft(request)
        # Whatever the provider said, only what passes the guardrails is stored.
        guarded = apply_guardrails(draft, context) if draft is not None else None

        async with unit_of_work(self._sessions) as session:
            message = await self._message(session, data.user_id, data.message_id)
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
            await log_event(
                session,
                "action.pending",
                user_id=data.user_id,
                entity="action",
                entity_id=action.id,
                payload={
                    "type": action.type.value,
                    "message_id": str(message.id),
                    "suggested": suggestion is not None,
                },
            )
            prepared = await self._prepared_from(session, message, action)
            prepared.order_name = order_name
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

    async def _prepared_from(
        self, session: AsyncSession, message: Message, action: Action
    ) -> Prepared:
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
        order = await session.get(Order, action.order_id) if action.order_id else None
        return Prepared(
            order_name=order.name if order else None,
            suggestion_id=action.suggestion_id,
            action_id=action.id,
            action_type=action.type,
            action_status=action.status,
            note=action.payload.get("note"),
            superseded_workflow_ids=[w for w in older.scalars() if w],
        )

    @activity.defn(name="record_decision")
    async def record_decision(self, data: DecisionInput) -> ActionStatus:
        """PENDING → APPROVED or REJECTED, once. Repeating the same decision is a no-op."""
        target = ActionStatus.APPROVED if data.decision == "approve" else ActionStatus.REJECTED
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id, lock=True)
            if action.status == target:
                return target
            if action.status != ActionStatus.PENDING:
                raise _final(f"action is already {action.status.value}", ErrorType.ALREADY_DECIDED)
            action.status = target
            changes: dict[str, Any] = {}
            if data.payload is not None:
                changes.update({k: v for k, v in data.payload.items() if k not in EXECUTION_KEYS})
            if data.reply is not None:
                changes["reply"] = data.reply
            if changes:
                action.payload = {**action.payload, **changes}
            await refresh_for_action(session, action.id)
            await log_event(
                session,
                f"action.{target.value.lower()}",
                user_id=data.user_id,
                entity="action",
                entity_id=action.id,
                payload={"by": data.decided_by, "reason": data.reason, "edited": sorted(changes)},
            )
            return target

    @activity.defn(name="remind")
    async def remind(self, data: ActionRef) -> None:
        async with unit_of_work(self._sessions) as session:
            await log_event(
                session,
                "action.reminder",
                user_id=data.user_id,
                entity="action",
                entity_id=data.action_id,
                payload={"message": "a suggestion has been waiting for a decision"},
            )

    @activity.defn(name="execute_action")
    async def execute_action(self, data: ActionRef) -> dict[str, Any]:
        """Re-read the order, check the action still holds, perform it once in the store."""
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id)
            if action.status != ActionStatus.APPROVED:
                raise _final(
                    f"action is {action.status.value}, not APPROVED", ErrorType.NOT_APPROVED
                )
            if action.type in REPLY_ONLY:
                return {}
            if "outcome" in action.payload:  # performed and recorded by an earlier attempt
                return action.payload["outcome"]
            order = await session.get(Order, action.order_id) if action.order_id else None
            if order is None:
                raise _final("the action has no order to act on", ErrorType.NO_LONGER_VALID)
            shop = await self._shop(session, order)
            action_type, payload, order_gid = action.type, dict(action.payload), order.shopify_id

        prepared = payload.get("prepared")
        if prepared is None:
            snapshot = await self._fresh_order_by_gid(shop, order_gid)
            problem = why_not_allowed(action_type, payload, snapshot)
            if problem is not None:
                raise _final(problem, ErrorType.NO_LONGER_VALID)
            try:
                prepared = await self._shopify.prepare(shop, order_gid, action_type, payload)
            except IntegrationError as exc:
                if exc.retryable:
                    raise
                raise _final(str(exc), ErrorType.SHOPIFY_REFUSED) from exc
            # Committed before the store is called: a retry after a crash must neither
            # re-check the order nor re-plan the request, since our own first call may
            # already have changed the order (a refunded order has nothing left to
            # refund). It sends this same request under the same idempotency key, and
            # Shopify returns the first result instead of acting twice.
            async with unit_of_work(self._sessions) as session:
                action = await self._action(session, data.user_id, data.action_id, lock=True)
                action.payload = {
                    **action.payload,
                    "prepared": prepared,
                    "performing_since": datetime.now(UTC).isoformat(),
                }
        try:
            outcome = await self._shopify.perform(
                shop, order_gid, action_type, prepared, idempotency_key(data.action_id)
            )
        except IntegrationError as exc:
            if exc.retryable:
                raise
            raise _final(str(exc), ErrorType.SHOPIFY_REFUSED) from exc

        result = outcome.model_dump(mode="json")
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id, lock=True)
            action.payload = {**action.payload, "outcome": result}
            await log_event(
                session,
                "action.performed",
                user_id=data.user_id,
                entity="action",
                entity_id=action.id,
                payload={"type": action_type.value, "reference": outcome.reference},
            )
        return result

    async def _fresh_order_by_gid(self, shop: ShopTarget, order_gid: str) -> OrderSnapshot:
        try:
            return await self._shopify.get_order(shop, order_gid)
        except IntegrationError as exc:
            if exc.retryable:
                raise
            raise _final(str(exc), ErrorType.NO_LONGER_VALID) from exc

    @activity.defn(name="send_reply")
    async def send_reply(self, data: ActionRef) -> str:
        """Send the approved reply from the store's address; a retry never sends it twice
        once the first send was recorded. Returns the reply's Message-ID."""
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id)
            message = (
                await self._message(session, data.user_id, action.message_id)
                if action.message_id
                else None
            )
            if message is None:
                raise _final("the action has no message to reply to", ErrorType.NOT_FOUND)
            route = await reply_route(session, message)
            if route is not None and route.disabled:
                raise _final(
                    "the store's email connection is disabled: no reply is sent",
                    ErrorType.MAIL_REFUSED,
                )
            if route is not None and route.via == "gmail" and self._gmail is None:
                raise _final("this worker has no Gmail access configured", ErrorType.MAIL_REFUSED)
            sender_address = (
                route.sender_address if route else f"support@{message.to_address or 'localhost'}"
            )
            domain = sender_address.rsplit("@", 1)[-1]
            outbound_id = reply_message_id(action.id, domain)
            sent = (
                await session.execute(
                    select(Message).where(
                        Message.user_id == data.user_id, Message.message_id == outbound_id
                    )
                )
            ).scalar_one_or_none()
            if sent is not None and sent.headers.get("X-Deskpilot-Delivery") == "sent":
                return outbound_id
            if not await can_send_email(session, data.user_id):
                raise _final(
                    "the plan's email limit for this period is reached", ErrorType.EMAIL_LIMIT
                )
            email = _reply_email(message, action, route, sender_address, outbound_id)
            # A row still marked "sending" means an earlier attempt may have sent it.
            retry = sent is not None
            if sent is None:
                # Recorded before sending: the inbox shows the reply even if the send is retried.
                sent = Message(
                    user_id=data.user_id,
                    thread_id=message.thread_id,
                    order_id=message.order_id,
                    connection_id=route.connection_id if route else None,
                    direction=MessageDirection.OUTBOUND,
                    message_id=outbound_id,
                    from_address=sender_address,
                    to_address=message.from_address,
                    subject=str(email["Subject"]),
                    body_text=str(action.payload.get("reply", "")),
                    headers={
                        **{k: str(v) for k, v in email.items()},
                        "X-Deskpilot-Delivery": "sending",
                    },
                    raw=email.as_bytes(),
                    sent_at=datetime.now(UTC),
                )
                session.add(sent)
            raw, recipient = bytes(sent.raw or email.as_bytes()), message.from_address

        gmail_sent: SentMessage | None = None
        try:
            if self._gmail is not None and route is not None and route.via == "gmail":
                # Gmail reads the recipients from the headers; the threadId keeps the reply
                # in the customer's Gmail thread.
                gmail_sent = await self._gmail.send(
                    route.connection_id,
                    raw,
                    route.thread_id,
                    rfc_message_id=outbound_id,
                    retry=retry,
                )
            else:
                await self._mailer.send(
                    OutboundEmail(
                        message_id=outbound_id,
                        sender=sender_address,
                        recipients=[recipient],
                        raw=raw,
                    )
                )
        except IntegrationError as exc:
            if exc.retryable:
                raise
            raise _final(str(exc), ErrorType.MAIL_REFUSED) from exc

        async with unit_of_work(self._sessions) as session:
            sent = (
                await session.execute(
                    select(Message).where(
                        Message.user_id == data.user_id, Message.message_id == outbound_id
                    )
                )
            ).scalar_one()
            sent.headers = {**sent.headers, "X-Deskpilot-Delivery": "sent"}
            if gmail_sent is not None:
                sent.channel_message_id = gmail_sent.id
                sent.channel_thread_id = gmail_sent.thread_id
            thread = await session.get(Thread, sent.thread_id)
            if thread is not None:
                thread.last_message_at = sent.sent_at
            await increment_email_sent(session, data.user_id)
            await log_event(
                session,
                "reply.sent",
                user_id=data.user_id,
                entity="action",
                entity_id=data.action_id,
                payload={"message_id": outbound_id},
            )
        return outbound_id

    @activity.defn(name="finish")
    async def finish(self, data: FinishInput) -> ActionStatus:
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id, lock=True)
            if action.status != ActionStatus.EXECUTED:
                if data.reply_error:
                    action.error = f"reply not sent: {data.reply_error}"
                    await log_event(
                        session,
                        "reply.failed",
                        user_id=data.user_id,
                        entity="action",
                        entity_id=action.id,
                        payload={"error": data.reply_error},
                    )
                action.status = ActionStatus.EXECUTED
                action.executed_at = datetime.now(UTC)
                await log_event(
                    session,
                    "action.executed",
                    user_id=data.user_id,
                    entity="action",
                    entity_id=action.id,
                    payload={"type": action.type.value},
                )
            return action.status

    @activity.defn(name="mark_failed")
    async def mark_failed(self, data: FailInput) -> ActionStatus:
        async with unit_of_work(self._sessions) as session:
            action = await self._action(session, data.user_id, data.action_id, lock=True)
            if action.status not in (ActionStatus.EXECUTED, ActionStatus.FAILED):
                action.status = ActionStatus.FAILED
                action.error = data.error
                await refresh_for_action(session, action.id)
                await log_event(
                    session,
                    "action.failed",
                    user_id=data.user_id,
                    entity="action",
                    entity_id=action.id,
                    payload={"error": data.error},
                )
            return action.status


def _reply_email(
    message: Message,
    action: Action,
    route: ReplyRoute | None,
    sender_address: str,
    outbound_id: str,
) -> EmailMessage:
    """The reply as the customer's mail client should see it: threaded, marked automatic."""
    email = EmailMessage()
    store = route.store_name if route else None
    email["From"] = formataddr((store, sender_address)) if store else sender_address
    email["To"] = message.from_address
    if route and route.support_email and route.support_email != sender_address:
        email["Reply-To"] = route.support_email
    subject = message.subject or ""
    email["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = outbound_id
    email["In-Reply-To"] = message.message_id
    # A repeated References header is kept as a list in `headers`; join before splitting.
    stored = message.headers.get("References") or ""
    references = (" ".join(stored) if isinstance(stored, list) else str(stored)).split()
    email["References"] = " ".join([*references, message.message_id])
    email["Auto-Submitted"] = "auto-replied"
    email.set_content(str(action.payload.get("reply", "")))
    return email
