"""Proposed confidence thresholds per action type, from the merchant's own decisions.

Reads the last N decisions a person took on each action type (one query), and asks the
domain (domain.threshold_proposal) for the lowest confidence at which they were approved
unedited at least 98% of the time. Only read: a proposal is never applied; the merchant
types it into a playbook (or copies it there) and saves it themselves.

Evidence is a person's decision only, read as the backtest reads it
(domain.playbook_backtest.person_decision): Events "action.approved" / "action.rejected"
whose "by" is neither "playbook:<id>" (the automation grading itself) nor "system" (an
expiry or supersession, which says nothing about the suggestion). "Approved unedited"
means nothing edited; a reply sent back unchanged (the inbox always sends the draft) is
no edit.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from fractions import Fraction

from pydantic import BaseModel, Field
from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_backtest import (
    APPROVED_EVENT,
    PLAYBOOK_DECIDER,
    REJECTED_EVENT,
    SYSTEM_DECIDER,
    PersonDecision,
    person_decision,
    same_text,
)
from domain.playbook_rules import ApproveSuggestion, PlaybookRuleError, PlaybookRules
from domain.threshold_proposal import (
    DEFAULT_MIN_SUPPORT,
    DEFAULT_TARGET,
    Decision,
    Proposal,
    ProposalStatus,
    propose_threshold,
)
from kernel.enums import ActionType
from models.action import Action
from models.event import Event
from models.playbook import Playbook
from models.suggestion import AISuggestion

DEFAULT_LAST = 200
MAX_LAST = 1_000


class ClosestOut(BaseModel):
    threshold: float
    rests_on: int  # decisions at or above it (at least min_support)
    approved_unedited: int
    rate: float


class ThresholdProposalOut(BaseModel):
    action_type: ActionType
    status: ProposalStatus
    decisions: int = Field(description="the person decisions looked at (at most `last`)")
    proposed_threshold: float | None = Field(
        description="an observed confidence; null unless status is proposed"
    )
    rests_on: int = Field(description="decisions at or above the proposed threshold")
    approved_unedited: int = Field(description="of those, approved with nothing edited")
    rate: float | None = Field(description="approved_unedited / rests_on")
    lower_bound: float | None = Field(
        description="one-sided 95% Wilson lower bound of the rate: the figure to trust"
    )
    closest: ClosestOut | None = Field(
        description="when not_reached: the threshold whose rate came nearest the target"
    )
    summary: str = Field(description="one sentence, as the rule builder shows it")


class ThresholdProposalsOut(BaseModel):
    last: int = Field(description="how many of the latest person decisions per type were read")
    target: float
    min_support: int
    proposals: list[ThresholdProposalOut]  # one per action type, in ActionType's order


def _label(action_type: ActionType) -> str:
    return (
        "no-action"
        if action_type is ActionType.NONE
        else action_type.value.lower().replace("_", " ")
    )


def _percent(value: Fraction | float) -> str:
    """Rounded down, so 97.96% never shows as 98.0%."""
    tenths = math.floor(Fraction(value) * 1000 + Fraction(1, 10**9))
    return f"{tenths / 10:.1f}%"


def summary(action_type: ActionType, found: Proposal, *, target: float, min_support: int) -> str:
    kind, goal = _label(action_type), f"{target * 100:g}%"
    if found.status is ProposalStatus.NOT_ENOUGH_HISTORY:
        noun = "decision" if found.decisions == 1 else "decisions"
        return (
            f"Not enough history yet ({found.decisions} {kind} {noun} by a person; "
            f"{min_support} needed)."
        )
    if found.status is ProposalStatus.NOT_REACHED:
        assert found.closest is not None
        near = found.closest
        return (
            f"No proposal yet: of the last {found.decisions} {kind} decisions, the closest is "
            f"{near.threshold}, where the {near.rests_on} at or above it were "
            f"{_percent(Fraction(near.accepted, near.rests_on))} approved unedited "
            f"({goal} needed)."
        )
    assert found.threshold is not None and found.lower_bound is not None
    rate = Fraction(found.accepted, found.rests_on)
    return (
        f"Proposed: {found.threshold} — of the last {found.decisions} {kind} decisions, the "
        f"{found.rests_on} at or above it were {_percent(rate)} approved unedited "
        f"(at least {_percent(found.lower_bound)} with 95% confidence)."
    )


async def person_decisions(
    session: AsyncSession, user_id: uuid.UUID, *, last: int = DEFAULT_LAST
) -> dict[ActionType, list[Decision]]:
    """The latest `last` person decisions per action type, newest first, with the
    confidence of the suggestion decided on. One query: a window ranks them per type."""
    rank = (
        func.row_number()
        .over(partition_by=Action.type, order_by=(Event.created_at.desc(), Event.id.desc()))
        .label("rank")
    )
    by = func.coalesce(Event.payload["by"].astext, "")
    ranked = (
        select(
            Action.type.label("action_type"),
            AISuggestion.confidence.label("confidence"),
            Event.type.label("event"),
            Event.payload.label("payload"),
            # The reply sent, against the suggestion's draft: was "reply" really edited?
            Action.payload["reply"].astext.label("sent"),
            AISuggestion.reply.label("drafted"),
            Event.created_at.label("at"),
            Event.id.label("event_id"),
            rank,
        )
        # entity_id is text: compare as text, so the (entity, entity_id) index serves it.
        .join(Action, Event.entity_id == cast(Action.id, String))
        .join(AISuggestion, AISuggestion.id == Action.suggestion_id)
        .where(
            Event.user_id == user_id,
            Action.user_id == user_id,
            Event.entity == "action",
            Event.type.in_((APPROVED_EVENT, REJECTED_EVENT)),
            by != SYSTEM_DECIDER,
            ~by.startswith(PLAYBOOK_DECIDER, autoescape=True),
        )
        .subquery()
    )
    rows = await session.execute(
        select(
            ranked.c.action_type,
            ranked.c.confidence,
            ranked.c.event,
            ranked.c.payload,
            ranked.c.sent,
            ranked.c.drafted,
        )
        .where(ranked.c.rank <= last)
        .order_by(ranked.c.action_type, ranked.c.at.desc(), ranked.c.event_id.desc())
    )
    found: dict[ActionType, list[Decision]] = defaultdict(list)
    for action_type, confidence, event, payload, sent, drafted in rows.all():
        decision = person_decision(event, payload, reply_changed=not same_text(sent, drafted))
        found[action_type].append(Decision(float(confidence), decision is PersonDecision.APPROVED))
    return found


async def threshold_proposals(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    last: int = DEFAULT_LAST,
    target: float = DEFAULT_TARGET,
    min_support: int = DEFAULT_MIN_SUPPORT,
) -> ThresholdProposalsOut:
    """A proposal for every action type, from the merchant's own decisions only."""
    history = await person_decisions(session, user_id, last=last)
    proposals = []
    for action_type in ActionType:
        found = propose_threshold(
            history.get(action_type, []), target=target, min_support=min_support
        )
        proposals.append(
            ThresholdProposalOut(
                action_type=action_type,
                status=found.status,
                decisions=found.decisions,
                proposed_threshold=found.threshold,
                rests_on=found.rests_on,
                approved_unedited=found.accepted,
                rate=found.rate,
                lower_bound=found.lower_bound,
                closest=None
                if found.closest is None
                else ClosestOut(
                    threshold=found.closest.threshold,
                    rests_on=found.closest.rests_on,
                    approved_unedited=found.closest.accepted,
                    rate=found.closest.accepted / found.closest.rests_on,
                ),
                summary=summary(action_type, found, target=target, min_support=min_support),
            )
        )
    return ThresholdProposalsOut(
        last=last, target=target, min_support=min_support, proposals=proposals
    )


def approved_types(playbook: Playbook) -> list[ActionType]:
    """The action types the playbook's approve_suggestion steps may approve on their own,
    in ActionType's order; none when its stored rules no longer parse."""
    try:
        rules = PlaybookRules.parse(playbook.trigger, playbook.conditions, playbook.actions)
    except PlaybookRuleError:
        return []
    types = {t for a in rules.actions if isinstance(a, ApproveSuggestion) for t in a.action_types}
    return [t for t in ActionType if t in types]


async def proposals_for_playbook(
    session: AsyncSession, user_id: uuid.UUID, playbook: Playbook
) -> list[ThresholdProposalOut]:
    """The proposals beside a playbook's threshold field: for the types it approves."""
    types = approved_types(playbook)
    if not types:
        return []
    found = await threshold_proposals(session, user_id)
    return [p for p in found.proposals if p.action_type in types]
