"""A history of decided suggestions for tests, written through the real models in bulk:
one inbound message, its suggestion, its action and the decision's Event per entry, with
the decision times given (in one transaction now() would be the same for all)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ActionStatus, ActionType, MessageDirection
from models.action import Action
from models.conversation import Message, Thread
from models.event import Event
from models.suggestion import AISuggestion

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    action_type: ActionType
    confidence: float
    approved: bool = True
    edited: tuple[str, ...] = ()
    by: str = "api"  # a person; "playbook:<id>" or "system" otherwise
    # With "reply" in `edited`: whether the reply sent was the draft as it was (the inbox
    # always sends it back, so "reply" is listed even when nobody changed a word).
    same_reply: bool = False


def entries(
    action_type: ActionType,
    confidence: float,
    *,
    approved: int = 0,
    resent: int = 0,
    edited: int = 0,
    rejected: int = 0,
    by: str = "api",
) -> list[Entry]:
    """`approved` as suggested through the API, `resent` as suggested through the inbox
    (the draft sent back unchanged), `edited` approved with the reply changed, `rejected`."""
    return (
        [Entry(action_type, confidence, True, (), by)] * approved
        + [Entry(action_type, confidence, True, ("reply",), by, same_reply=True)] * resent
        + [Entry(action_type, confidence, True, ("reply",), by)] * edited
        + [Entry(action_type, confidence, False, (), by)] * rejected
    )


async def add_history(
    session: AsyncSession,
    user_id: uuid.UUID,
    history: list[Entry],
    *,
    start: datetime = START,
    step: timedelta = timedelta(minutes=7),
) -> list[uuid.UUID]:
    """Store `history` oldest first, one decision every `step`; the actions' ids."""
    thread = Thread(
        user_id=user_id,
        customer_email="history@example.com",
        subject="A history of decisions",
        last_message_at=start,
    )
    session.add(thread)
    await session.flush()
    rows: list[object] = []
    action_ids = []
    for i, entry in enumerate(history):
        at = start + i * step
        message = Message(
            id=uuid.uuid4(),
            user_id=user_id,
            thread_id=thread.id,
            direction=MessageDirection.INBOUND,
            message_id=f"<history-{uuid.uuid4().hex}@customer.test>",
            from_address="history@example.com",
            subject=f"Request {i}",
            body_text=f"Request number {i}",
            sent_at=at - timedelta(minutes=5),
        )
        drafted = f"Reply {i}.\nRegards, the shop"
        sent = drafted
        if "reply" in entry.edited:
            # As a browser's textarea sends it back: CRLF, and a changed word or not.
            sent = drafted.replace("\n", "\r\n") + ("" if entry.same_reply else " Sorry!")
        suggestion = AISuggestion(
            id=uuid.uuid4(),
            message_id=message.id,
            reply=drafted,
            proposed_action=entry.action_type,
            confidence=entry.confidence,
        )
        status = ActionStatus.EXECUTED if entry.approved else ActionStatus.REJECTED
        action = Action(
            id=uuid.uuid4(),
            user_id=user_id,
            message_id=message.id,
            suggestion_id=suggestion.id,
            type=entry.action_type,
            status=status,
            payload={"reply": sent},
        )
        decision = Event(
            user_id=user_id,
            type="action.approved" if entry.approved else "action.rejected",
            entity="action",
            entity_id=str(action.id),
            payload={
                "by": entry.by,
                "reason": None if entry.approved else "not right",
                "edited": list(entry.edited),
            },
            created_at=at,
        )
        rows += [message, suggestion, action, decision]
        if entry.approved:
            # What follows an approval is not a decision, and must not count as one.
            rows.append(
                Event(
                    user_id=user_id,
                    type="action.executed",
                    entity="action",
                    entity_id=str(action.id),
                    payload={"by": entry.by},
                    created_at=at + timedelta(seconds=30),
                )
            )
        action_ids.append(action.id)
    session.add_all(rows)
    await session.flush()
    return action_ids
