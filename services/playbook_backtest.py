"""The playbook backtest: what a playbook (or a draft of its rules) would have done with the
merchant's inbound messages of the last N days, beside what people decided on them.

Reading is here: each message's facts as the engine reads them (services.playbook_facts,
at the time the message arrived), its stored suggestion, and the decision Event on its
action. Replaying and tallying is domain.playbook_backtest. Nothing is changed: reading
the facts may store first-use defaults, so the transaction is rolled back, as a dry run's
is; no workflow is started, no store or mailbox is called.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_backtest import (
    APPROVED_EVENT,
    REJECTED_EVENT,
    Caps,
    Case,
    Example,
    PersonDecision,
    Tally,
    examples,
    person_decision,
    replay,
    same_text,
    tally,
)
from domain.playbook_engine import PlaybookView
from domain.playbook_rules import PlaybookRules
from kernel.enums import MessageDirection
from kernel.errors import Conflict, NotFound
from models.action import Action
from models.automation import automation_settings
from models.conversation import Message
from models.event import Event
from models.order import Order
from models.playbook import Playbook
from models.suggestion import AISuggestion
from services.playbook_facts import message_context, playbook_view, start_of_day
from services.playbook_settings import PlaybookRulesIn, get_playbook

DEFAULT_DAYS = 30
MAX_DAYS = 365
# Each message is read as the engine reads it (a dozen small queries): the newest this
# many of the window are replayed, and the answer says when there were more.
MAX_MESSAGES = 1_000
# A draft's flags that, when given, replace the playbook's own.
_FLAGS = (
    "priority",
    "stop_processing",
    "run_once_per_thread",
    "confidence_threshold",
    "requires_approval",
)


class BacktestIn(BaseModel):
    days: int = Field(DEFAULT_DAYS, ge=1, le=MAX_DAYS, description="how far back to replay")
    draft: PlaybookRulesIn | None = Field(
        default=None,
        description="unsaved rules to replay instead of the stored ones (the body of PUT "
        ".../rules); flags left out are the playbook's own",
    )


class ExampleOut(Example):
    thread_url: str = Field(description="the thread in the web inbox")


class BacktestOut(Tally):
    playbook_id: uuid.UUID
    playbook_name: str
    draft: bool = Field(description="the rules replayed were the draft in the request")
    days: int
    since: datetime = Field(description="messages received from this time")
    until: datetime = Field(description="up to this time")
    truncated: bool = Field(
        description=f"the window held more than {MAX_MESSAGES} messages: the newest were replayed"
    )
    examples: list[ExampleOut] = Field(
        description="up to 20 messages it would have run on: disagreements first (approving "
        "what a person edited or rejected, then holding what a person approved as is), then "
        "agreements, then undecided; newest first within each"
    )


def backtest_view(playbook: Playbook, draft: PlaybookRulesIn | None) -> PlaybookView:
    """The playbook as replayed: its stored rules or the draft (a PlaybookRuleError, 422,
    names what is wrong), and switched on, since the question is what its rules would do."""
    if draft is None:
        return playbook_view(playbook).model_copy(update={"enabled": True})
    rules = PlaybookRules.parse(draft.trigger, draft.conditions, draft.actions)
    flags = {name: getattr(draft, name) for name in _FLAGS if getattr(draft, name) is not None}
    return playbook_view(playbook, rules).model_copy(update={"enabled": True, **flags})


async def playbook_named(session: AsyncSession, user_id: uuid.UUID, name: str) -> Playbook:
    """The merchant's playbook called `name` (regardless of case), or with that id."""
    wanted = name.strip().casefold()
    playbooks = list(
        (await session.execute(select(Playbook).where(Playbook.user_id == user_id))).scalars()
    )
    found = [p for p in playbooks if p.name.strip().casefold() == wanted or str(p.id) == wanted]
    if len(found) > 1:
        raise Conflict(f"{len(found)} playbooks are called {name!r}: give one's id instead")
    if not found:
        names = ", ".join(sorted(repr(p.name) for p in playbooks)) or "none"
        raise NotFound(f"no playbook called {name!r}; the merchant's playbooks: {names}")
    return found[0]


async def backtest(
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    body: BacktestIn,
    *,
    now: datetime | None = None,
) -> BacktestOut:
    """Replay the merchant's playbook (another merchant's: 404) over the last `days`."""
    until = now or datetime.now(UTC)
    since = until - timedelta(days=body.days)
    try:
        playbook = await get_playbook(session, user_id, playbook_id)
        view = backtest_view(playbook, body.draft)
        settings = await automation_settings(session, user_id)
        rows = (
            await session.execute(
                select(Message.id, Message.thread_id, Message.subject, Message.created_at)
                .where(
                    Message.user_id == user_id,
                    Message.direction == MessageDirection.INBOUND,
                    Message.created_at >= since,
                    Message.created_at <= until,
                )
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(MAX_MESSAGES + 1)
            )
        ).all()
        truncated = len(rows) > MAX_MESSAGES
        rows = list(reversed(rows[:MAX_MESSAGES]))  # replayed in arrival order
        contexts = [
            await message_context(session, user_id, row.id, now=row.created_at) for row in rows
        ]
        decisions = await _decisions(session, user_id, [c.action_id for c in contexts])
        currencies = await _currencies(session, [c.order_id for c in contexts])
        cases = [
            Case(
                message_id=row.id,
                thread_id=row.thread_id,
                subject=row.subject,
                received_at=row.created_at,
                day=start_of_day(row.created_at, settings.timezone).date(),
                shop=context.shop_domain,
                event=context.event,
                facts=context.facts,
                guardrail_notes=context.safety.guardrail_notes,
                decision=decisions.get(context.action_id, PersonDecision.UNKNOWN),
                currency=currencies.get(context.order_id) if context.order_id else None,
            )
            for row, context in zip(rows, contexts, strict=True)
        ]
        caps = Caps(settings.daily_refund_cap, settings.daily_execution_cap)
    finally:
        await session.rollback()
    results = replay(view, cases, caps)
    return BacktestOut(
        **tally(view, results).model_dump(),
        playbook_id=view.id,
        playbook_name=view.name,
        draft=body.draft is not None,
        days=body.days,
        since=since,
        until=until,
        truncated=truncated,
        examples=[
            ExampleOut(**e.model_dump(), thread_url=f"/threads/{e.thread_id}")
            for e in examples(results)
        ],
    )


async def _decisions(
    session: AsyncSession, user_id: uuid.UUID, action_ids: list[uuid.UUID | None]
) -> dict[uuid.UUID, PersonDecision]:
    """Each action's decision, from its first action.approved / action.rejected Event."""
    ids = [a for a in action_ids if a is not None]
    if not ids:
        return {}
    events = (
        await session.execute(
            select(Event.entity_id, Event.type, Event.payload)
            .where(
                Event.user_id == user_id,
                Event.entity == "action",
                Event.entity_id.in_([str(a) for a in ids]),
                Event.type.in_([APPROVED_EVENT, REJECTED_EVENT]),
            )
            .order_by(Event.created_at, Event.id)
        )
    ).all()
    # Whether the reply sent is the suggestion's draft: "reply" is listed as edited either way.
    reply_kept = {
        action_id: same_text(final, drafted)
        for action_id, final, drafted in (
            await session.execute(
                select(Action.id, Action.payload["reply"].astext, AISuggestion.reply)
                .outerjoin(AISuggestion, AISuggestion.id == Action.suggestion_id)
                .where(Action.user_id == user_id, Action.id.in_(ids))
            )
        ).all()
    }
    found: dict[uuid.UUID, PersonDecision] = {}
    for entity_id, event_type, payload in events:
        action_id = uuid.UUID(entity_id)
        if action_id not in found:
            found[action_id] = person_decision(
                event_type, payload, reply_changed=not reply_kept.get(action_id, True)
            )
    return found


async def _currencies(
    session: AsyncSession, order_ids: list[uuid.UUID | None]
) -> dict[uuid.UUID, str]:
    ids = {o for o in order_ids if o is not None}
    if not ids:
        return {}
    rows = await session.execute(select(Order.id, Order.currency).where(Order.id.in_(ids)))
    return {order_id: currency for order_id, currency in rows.all()}
