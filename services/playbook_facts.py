"""What the playbook engine evaluates: the facts of a message or an order, read from the
database, and the safety context (kill switch, caps) of the store it belongs to.

Reading is here; deciding is `domain.playbook_engine`, which does no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.business_hours import within_business_hours
from domain.intents import trigger_intent
from domain.order_rules import refund_amount
from domain.playbook_engine import PlaybookView, Safety, TriggerEvent
from domain.playbook_rules import PlaybookRules
from kernel.enums import ActionType, ConnectionType, MessageDirection
from kernel.errors import NotFound
from models.action import Action
from models.automation import AutomationSettings, automatic_today, automation_settings
from models.connection import Connection
from models.conversation import Message, Thread
from models.order import Order
from models.playbook import Playbook, PlaybookExecution
from models.reply_route import store_name
from models.suggestion import AISuggestion
from services.decisions import last_read_order

CHANNELS = {ConnectionType.GMAIL: "gmail", ConnectionType.CUSTOM_EMAIL: "email"}


@dataclass(frozen=True)
class EngineContext:
    """One evaluation's inputs, and the entities a firing links to."""

    event: TriggerEvent
    facts: dict[str, Any]
    safety: Safety
    user_id: uuid.UUID
    shop_domain: str | None = None
    message_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None


def playbook_view(playbook: Playbook, rules: PlaybookRules | None = None) -> PlaybookView:
    """The playbook as the engine reads it; `rules` replaces its stored ones (a draft)."""
    return PlaybookView(
        id=playbook.id,
        name=playbook.name,
        enabled=playbook.enabled,
        priority=playbook.priority,
        stop_processing=playbook.stop_processing,
        run_once_per_thread=playbook.run_once_per_thread,
        confidence_threshold=playbook.confidence_threshold,
        requires_approval=playbook.requires_approval,
        rules=rules or PlaybookRules.parse(playbook.trigger, playbook.conditions, playbook.actions),
        created_at=playbook.created_at,
    )


async def merchant_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    rows = await session.execute(select(Playbook).where(Playbook.user_id == user_id))
    return list(rows.scalars())


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Midnight today in the store's time zone: when the daily caps start again."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _message_facts_statement() -> Select[Any]:
    """A message with its thread, its first action and that action's suggestion: one
    statement, where reading them one by one took four."""
    owner = bindparam("user_id")
    first_action = (
        select(Action)
        .where(Action.message_id == Message.id, Action.user_id == owner)
        .order_by(Action.created_at, Action.id)
        .limit(1)
        .lateral()
    )
    action = aliased(Action, first_action)
    return (
        select(Message, Thread, action, AISuggestion)
        .outerjoin(Thread, Thread.id == Message.thread_id)
        .outerjoin(first_action, true())
        .outerjoin(AISuggestion, AISuggestion.id == action.suggestion_id)
        .where(Message.id == bindparam("message_id"), Message.user_id == owner)
    )


_MESSAGE_FACTS = _message_facts_statement()


async def message_context(
    session: AsyncSession,
    user_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    event: TriggerEvent | None = None,
    now: datetime | None = None,
) -> EngineContext:
    """The facts of an inbound message, its suggestion, its order and its customer."""
    now = now or datetime.now(UTC)
    found = (
        await session.execute(_MESSAGE_FACTS, {"message_id": message_id, "user_id": user_id})
    ).one_or_none()
    if found is None:
        raise NotFound(f"message {message_id} not found")
    message, thread, action, suggestion = found
    order_id = (action.order_id if action else None) or message.order_id
    order = await session.get(Order, order_id) if order_id else None
    connection = (
        await session.get(Connection, message.connection_id) if message.connection_id else None
    )
    channel = CHANNELS.get(connection.type, "api") if connection else "api"
    language = suggestion.language if suggestion else ""
    facts: dict[str, Any] = {
        "message.text": message.body_text,
        "message.channel": channel,
        "message.language": language or None,
        "message.sentiment": suggestion.sentiment if suggestion else None,
        "message.wants_human": suggestion.wants_human if suggestion else None,
        "message.legal_threat": suggestion.legal_threat if suggestion else None,
        "customer.email": message.from_address.lower(),
        "store.name": await store_name(session, message) or "our store",
        **await _thread_facts(session, thread),
        **(await _order_facts(session, user_id, order, now) if order else {}),
        **_suggestion_facts(action, suggestion, order),
    }
    facts.setdefault("customer.name", "there")
    facts.setdefault("customer.first_name", "there")
    settings = await automation_settings(session, user_id)
    facts["time.business_hours"] = within_business_hours(
        now,
        settings.timezone,
        settings.business_hours_start,
        settings.business_hours_end,
        settings.business_days,
    )
    shop = order.shop_domain if order else None
    return EngineContext(
        event=event
        or TriggerEvent(
            event="message.received",
            intent=trigger_intent(suggestion.intent).value if suggestion else None,
            channel=channel,
            language=language or None,
        ),
        facts=facts,
        safety=await safety_for(
            session,
            user_id,
            settings,
            shop,
            now,
            thread_id=message.thread_id,
            guardrail_notes=[
                str(n.get("code")) for n in (suggestion.guardrails if suggestion else [])
            ],
        ),
        user_id=user_id,
        shop_domain=shop,
        message_id=message.id,
        thread_id=message.thread_id,
        action_id=action.id if action else None,
        order_id=order.id if order else None,
    )


async def order_context(
    session: AsyncSession,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    topic: str,
    *,
    now: datetime | None = None,
) -> EngineContext:
    """The facts of an order that changed in the store (a Shopify webhook)."""
    now = now or datetime.now(UTC)
    order = (
        await session.execute(
            select(Order)
            .join(Connection, Connection.id == Order.connection_id)
            .where(Order.id == order_id, Connection.user_id == user_id)
        )
    ).scalar_one_or_none()
    if order is None:
        raise NotFound(f"order {order_id} not found")
    # The customer's newest conversation about this order, if any: where a follow-up goes.
    message = (
        await session.execute(
            select(Message)
            .where(Message.user_id == user_id, Message.order_id == order.id)
            .where(Message.direction == MessageDirection.INBOUND)
            .order_by(Message.sent_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    thread = await session.get(Thread, message.thread_id) if message else None
    settings = await automation_settings(session, user_id)
    facts: dict[str, Any] = {
        "customer.email": (order.email or "").lower() or None,
        **await _thread_facts(session, thread),
        **await _order_facts(session, user_id, order, now),
        "time.business_hours": within_business_hours(
            now,
            settings.timezone,
            settings.business_hours_start,
            settings.business_hours_end,
            settings.business_days,
        ),
    }
    facts.setdefault("customer.name", "there")
    facts.setdefault("customer.first_name", "there")
    if message is not None:
        facts["store.name"] = await store_name(session, message) or "our store"
    return EngineContext(
        event=TriggerEvent(event="order.event", topic=topic),
        facts=facts,
        safety=await safety_for(
            session,
            user_id,
            settings,
            order.shop_domain,
            now,
            thread_id=thread.id if thread else None,
        ),
        user_id=user_id,
        shop_domain=order.shop_domain,
        message_id=message.id if message else None,
        thread_id=thread.id if thread else None,
        order_id=order.id,
    )


async def safety_for(
    session: AsyncSession,
    user_id: uuid.UUID,
    settings: AutomationSettings,
    shop_domain: str | None,
    now: datetime,
    *,
    thread_id: uuid.UUID | None,
    guardrail_notes: list[str] | None = None,
) -> Safety:
    refunded, executions = await automatic_today(
        session, user_id, shop_domain, start_of_day(now, settings.timezone)
    )
    ran: frozenset[uuid.UUID] = frozenset()
    if thread_id is not None:
        rows = await session.execute(
            select(PlaybookExecution.playbook_id)
            .where(PlaybookExecution.user_id == user_id, PlaybookExecution.thread_id == thread_id)
            .distinct()
        )
        ran = frozenset(rows.scalars())
    return Safety(
        automation_enabled=settings.enabled,
        guardrail_notes=guardrail_notes or [],
        refunded_today=refunded,
        daily_refund_cap=settings.daily_refund_cap,
        executions_today=executions,
        daily_execution_cap=settings.daily_execution_cap,
        ran_in_thread=ran,
    )


async def _thread_facts(session: AsyncSession, thread: Thread | None) -> dict[str, Any]:
    if thread is None:
        return {}
    count = (
        await session.execute(
            select(func.count()).select_from(Message).where(Message.thread_id == thread.id)
        )
    ).scalar_one()
    return {"thread.message_count": count, "thread.tags": list(thread.tags or [])}


async def _order_facts(
    session: AsyncSession, user_id: uuid.UUID, order: Order, now: datetime
) -> dict[str, Any]:
    details = order.details or {}
    address = details.get("shipping_address") or {}
    country = (
        address.get("countryCodeV2") or address.get("countryCode") or address.get("country_code")
    )
    first = address.get("firstName") or address.get("first_name") or ""
    last = address.get("lastName") or address.get("last_name") or ""
    placed = _placed_at(details) or order.created_at
    facts: dict[str, Any] = {
        "order.name": order.name,
        "order.total_amount": order.total_amount,
        "order.total_text": f"{order.total_amount:.2f} {order.currency}",
        "order.financial_status": order.financial_status,
        "order.fulfillment_status": order.fulfillment_status,
        "order.cancelled": order.status == "cancelled" or bool(details.get("cancelled")),
        "order.age_days": Decimal((now - placed) / timedelta(days=1)).quantize(Decimal("0.01")),
        "order.shipping_country": country.upper() if isinstance(country, str) else None,
        "order.status_text": _status_text(order),
        "order.tracking_url": details.get("tracking_url") or "",
    }
    if first or last:
        facts["customer.name"] = f"{first} {last}".strip()
        facts["customer.first_name"] = first or last
    if order.email:
        count, spent = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(Order.total_amount), 0))
                .select_from(Order)
                .join(Connection, Connection.id == Order.connection_id)
                .where(
                    Connection.user_id == user_id,
                    func.lower(Order.email) == order.email.lower(),
                    Order.status != "cancelled",
                )
            )
        ).one()
        facts["customer.order_count"] = int(count)
        facts["customer.total_spent"] = Decimal(spent)
    return facts


def _placed_at(details: dict[str, Any]) -> datetime | None:
    for key in ("created_at", "createdAt", "processed_at"):
        value = details.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def _status_text(order: Order) -> str:
    if order.status == "cancelled":
        return "cancelled"
    fulfilment = (order.fulfillment_status or "").lower().replace("_", " ")
    return fulfilment or "being prepared"


def _suggestion_facts(
    action: Action | None, suggestion: AISuggestion | None, order: Order | None
) -> dict[str, Any]:
    if action is None:
        return {}
    facts: dict[str, Any] = {"suggestion.action_type": action.type.value}
    if suggestion is not None:
        facts["suggestion.confidence"] = Decimal(str(suggestion.confidence))
    if action.type is ActionType.REFUND:
        snapshot = last_read_order(order)
        try:
            if snapshot is not None:
                facts["suggestion.refund_amount"] = refund_amount(action.payload, snapshot)
            elif action.payload.get("amount") is not None:
                facts["suggestion.refund_amount"] = Decimal(str(action.payload["amount"]))
        except (ValueError, ArithmeticError):
            pass  # no amount: the refund cap cannot pass, so no automatic approval
    return facts
