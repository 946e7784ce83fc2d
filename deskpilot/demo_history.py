"""Demo only: a month of past support mail for the demo merchant, so the playbook backtest
(and the inbox) have a history to work on from the first `deskpilot up`.

About 300 customer messages over the last 30 days about the demo store's own orders, each
with a stored suggestion (action, confidence, signals) and what a person decided on it:
approved as is, edited, rejected, or left to expire. Every row is marked as demo data
(Message-IDs "<demo-history-...>", headers X-Deskpilot-Demo: history, threads tagged
"demo-history"), written once: a restart finds them and adds nothing. Nothing is sent and
no workflow is started for them (they are recorded as already handled).

Made up with a fixed seed: a suggestion's chance of being approved as is grows with its
confidence, a cancellation of a shipped order is refused, and the vaguer requests get
edited replies, as a support desk's month roughly goes.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.action import Action
from models.conversation import Message, Thread
from models.event import Event
from models.order import Order
from models.suggestion import AISuggestion

DEMO_HISTORY_TAG = "demo-history"
MESSAGE_ID_PREFIX = "<demo-history-"
DEMO_HEADERS = {"X-Deskpilot-Demo": "history"}
SEED = 20260301
FALLBACK_ITEMS = [
    {"title": "Ceramic Mug", "unit_price": "14.00"},
    {"title": "Linen Shirt", "unit_price": "49.00"},
    {"title": "Wool Beanie", "unit_price": "19.90"},
    {"title": "Canvas Tote", "unit_price": "24.50"},
]


# kind -> (weight, action type, lowest and highest confidence, subject, body)
KINDS: dict[str, tuple[int, ActionType, float, float, str, str]] = {
    "order_status": (
        34,
        ActionType.NONE,
        0.72,
        0.97,
        "Where is my order {order}?",
        "Hi, I ordered a while ago ({order}) and have not received anything yet. "
        "Can you tell me where it is?",
    ),
    "damaged_item": (
        16,
        ActionType.REFUND,
        0.62,
        0.97,
        "{item} arrived damaged ({order})",
        "Hello, the {item} from order {order} arrived broken. Could I get a refund for it?",
    ),
    "cancel_request": (
        12,
        ActionType.CANCEL,
        0.7,
        0.96,
        "Please cancel {order}",
        "Hi, I changed my mind: please cancel order {order} before it ships.",
    ),
    "address_change": (
        10,
        ActionType.ADDRESS_CHANGE,
        0.65,
        0.95,
        "New address for {order}",
        "Hello, I moved last week. Please send order {order} to 12 Harbour Road, Portland "
        "OR 97205 instead.",
    ),
    "wrong_item": (
        8,
        ActionType.REPLACE_ITEM,
        0.7,
        0.95,
        "Wrong item in {order}",
        "Hi, I ordered the {item} but got something else in {order}. Can you send the right one?",
    ),
    "refund_request": (
        8,
        ActionType.REFUND,
        0.5,
        0.9,
        "Refund for {order}?",
        "Hi, the {item} is not what I expected. Can I have my money back for order {order}?",
    ),
    "other": (
        12,
        ActionType.INFO_REQUEST,
        0.4,
        0.72,
        "A question",
        "Hello, do you ship to Canada, and is the {item} available in another colour?",
    ),
}
REPLIES = {
    ActionType.NONE: "Hi {first}, your order {order} is {status}. We will write as soon as it "
    "moves. Thanks for your patience!",
    ActionType.REFUND: "Hi {first}, we are sorry about the {item}. We have refunded {amount} "
    "{currency} to your original payment method.",
    ActionType.CANCEL: "Hi {first}, order {order} is cancelled and refunded in full.",
    ActionType.ADDRESS_CHANGE: "Hi {first}, we have updated the shipping address of {order}.",
    ActionType.REPLACE_ITEM: "Hi {first}, sorry for the mix-up: the right {item} is on its way.",
    ActionType.INFO_REQUEST: "Hi {first}, thanks for asking. Could you tell us a little more so "
    "we can help?",
}


async def has_demo_history(session: AsyncSession, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.user_id == user_id, Message.message_id.startswith(MESSAGE_ID_PREFIX))
    )
    return bool(found)


async def seed_demo_history(
    session: AsyncSession,
    user_id: uuid.UUID,
    shop_domain: str,
    *,
    now: datetime | None = None,
    days: int = 30,
    count: int = 300,
) -> int:
    """Write the history once (on the demo store's synced orders); how many messages."""
    if await has_demo_history(session, user_id):
        return 0
    orders = list(
        (
            await session.execute(
                select(Order).where(Order.shop_domain == shop_domain).order_by(Order.name)
            )
        ).scalars()
    )
    orders = [o for o in orders if o.email]
    if not orders:
        return 0
    now = now or datetime.now(UTC)
    rng = random.Random(SEED)
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    rows: list[Any] = []
    for i in range(count):
        at = now - timedelta(days=days) + (i + rng.random()) * timedelta(days=days) / count
        kind = rng.choices(kinds, weights)[0]
        rows += _conversation(rng, user_id, i, at, kind, rng.choice(orders))
    session.add_all(rows)
    await session.flush()
    return count


def _conversation(
    rng: random.Random, user_id: uuid.UUID, i: int, at: datetime, kind: str, order: Order
) -> list[Any]:
    _, action_type, low, high, subject, body = KINDS[kind]
    details = order.details or {}
    items = details.get("line_items") or FALLBACK_ITEMS  # a synced summary has none
    item = rng.choice(items)
    address = details.get("shipping_address") or {}
    first = address.get("firstName") or address.get("first_name") or "there"
    shipped = (order.fulfillment_status or "").upper() != "UNFULFILLED"
    words = {"order": order.name, "item": item["title"], "first": first}
    customer = str(order.email).lower()
    thread = Thread(
        id=uuid.uuid4(),
        user_id=user_id,
        customer_email=customer,
        subject=subject.format(**words),
        last_message_at=at,
        tags=[DEMO_HISTORY_TAG],
    )
    message = Message(
        id=uuid.uuid4(),
        user_id=user_id,
        thread_id=thread.id,
        order_id=order.id,
        direction=MessageDirection.INBOUND,
        message_id=f"{MESSAGE_ID_PREFIX}{i:04d}@customer.example>",
        from_address=customer,
        subject=thread.subject,
        body_text=body.format(**words),
        headers=DEMO_HEADERS,
        sent_at=at,
        created_at=at,
        workflow_started_at=at,  # handled back then: the reconciler leaves it alone
    )
    confidence = round(rng.uniform(low, high), 2)
    amount = min(Decimal(str(item.get("unit_price") or "20")), order.total_amount)
    payload: dict[str, Any] = {}
    if action_type is ActionType.REFUND:
        payload = {"amount": str(amount)}
    elif action_type is ActionType.REPLACE_ITEM:
        payload = {"line_items": [{"id": item.get("id"), "quantity": 1}]}
    elif action_type is ActionType.ADDRESS_CHANGE:
        payload = {"address": {"address1": "12 Harbour Road", "city": "Portland", "zip": "97205"}}
    reply = REPLIES[action_type].format(
        **words, status=(order.fulfillment_status or "being prepared").lower(), amount=amount,
        currency=order.currency,
    )  # fmt: skip
    roll = rng.random
    suggestion = AISuggestion(
        id=uuid.uuid4(),
        message_id=message.id,
        reply=reply,
        proposed_action=action_type,
        order_id=order.id,
        confidence=confidence,
        provider="demo-history",
        intent=kind,
        language="en",
        sentiment="angry" if roll() < 0.06 else ("positive" if roll() < 0.2 else "neutral"),
        wants_human=roll() < 0.02,
        legal_threat=roll() < 0.01,
        guardrails=[{"code": "injection", "detail": "demo"}] if roll() < 0.02 else [],
        created_at=at,
    )
    decision = _decision(rng, kind, confidence, shipped)
    decided_at = at + timedelta(minutes=rng.randint(10, 600))
    final = dict(payload, reply=reply)
    if decision == "edited":
        final["reply"] = reply + " Let us know if there is anything else we can do."
    action = Action(
        id=uuid.uuid4(),
        user_id=user_id,
        message_id=message.id,
        suggestion_id=suggestion.id,
        order_id=order.id,
        type=action_type,
        status=ActionStatus.EXECUTED if decision in ("as_is", "edited") else ActionStatus.REJECTED,
        payload=final,
        executed_at=decided_at if decision in ("as_is", "edited") else None,
        created_at=at,
    )

    def event(type_: str, when: datetime, data: dict[str, Any]) -> Event:
        return Event(
            user_id=user_id,
            type=type_,
            entity="action",
            entity_id=str(action.id),
            payload=data,
            created_at=when,
        )

    rows: list[Any] = [
        thread,
        message,
        suggestion,
        action,
        event("action.pending", at, {"type": action_type.value, "message_id": str(message.id)}),
    ]
    if decision == "expired":
        reason = "expired after 3 days, 0:00:00 without a decision"
        rows.append(event("action.rejected", decided_at, {"by": "system", "reason": reason}))
    elif decision == "rejected":
        rows.append(event("action.rejected", decided_at, {"by": "api", "reason": "not this"}))
    else:
        edited = ["reply"]  # the inbox sends the reply back with every approval
        rows.append(
            event("action.approved", decided_at, {"by": "api", "reason": None, "edited": edited})
        )
        rows.append(event("action.executed", decided_at, {}))
        rows.append(
            Message(
                user_id=user_id,
                thread_id=thread.id,
                order_id=order.id,
                direction=MessageDirection.OUTBOUND,
                message_id=f"{MESSAGE_ID_PREFIX}reply-{i:04d}@demo-store.example>",
                from_address="support@demo-store.example",
                to_address=customer,
                subject=f"Re: {thread.subject}",
                body_text=final["reply"],
                headers=DEMO_HEADERS,
                sent_at=decided_at,
                created_at=decided_at,
            )
        )
        thread.last_message_at = decided_at
    return rows


def _decision(rng: random.Random, kind: str, confidence: float, shipped: bool) -> str:
    """as_is, edited, rejected or expired: approvals as is grow likelier with confidence."""
    if rng.random() < 0.04:
        return "expired"
    if kind == "cancel_request" and shipped:
        return "rejected" if rng.random() < 0.85 else "edited"
    as_is = min(0.99, max(0.1, 0.25 + (confidence - 0.5) * 1.6))
    if kind in ("other", "refund_request"):
        as_is *= 0.6
    roll = rng.random()
    if roll < as_is:
        return "as_is"
    return "edited" if roll < as_is + (1 - as_is) * 0.55 else "rejected"
