"""Replaying one playbook over past messages and comparing it with what people decided. Pure.

The caller reads each message's facts as they were when it arrived and the decision a
person took on its suggestion; this module runs the engine (`evaluate`) over them in
arrival order, with the safety counters the replay itself accumulates (the daily caps of
the store's calendar day, run once per thread), and tallies each outcome against the
decision.

Outcomes: "approve" (it would approve the suggestion on its own), "hold" (it would run
but a person would still decide: a blocker, or no approve step), "not_run" (trigger or
conditions do not hold, or it already ran in the thread).

Agreement, for a message it would run on and a decision a person took:
- "approve" agrees when the person approved the suggestion as it was, and disagrees when
  they edited or rejected it (the playbook would have sent what a person changed);
- "hold" agrees when the person edited or rejected it, and disagrees when they approved
  it as it was (a person was asked for nothing).
A decision that was not a person's (a playbook's approval, an expiry, a supersession) or
a suggestion still undecided is "unknown".
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from domain.playbook_engine import Facts, PlaybookView, Safety, TriggerEvent, Verdict, evaluate
from domain.playbook_rules import ApproveSuggestion

APPROVED_EVENT, REJECTED_EVENT = "action.approved", "action.rejected"
PLAYBOOK_DECIDER = "playbook:"
SYSTEM_DECIDER = "system"  # expiry and supersession (workflows/message.py)
MONEY_OR_GOODS = frozenset({"REFUND", "CANCEL", "REPLACE_ITEM"})
MAX_EXAMPLES = 20


class PersonDecision(StrEnum):
    APPROVED = "approved"  # approved as suggested, nothing edited
    EDITED = "edited"  # approved with the reply or the payload changed
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # no person decided


class Outcome(StrEnum):
    APPROVE = "approve"
    HOLD = "hold"
    NOT_RUN = "not_run"


def same_text(a: str | None, b: str | None) -> bool:
    """Equal once line endings and surrounding space are set aside: a browser's textarea
    sends the draft back with CRLF even when nobody touched it."""

    def norm(text: str | None) -> str:
        return (text or "").replace("\r\n", "\n").strip()

    return norm(a) == norm(b)


def person_decision(
    event_type: str | None, payload: Mapping[str, Any] | None, *, reply_changed: bool
) -> PersonDecision:
    """The decision an action.approved / action.rejected Event records ({"by", "edited"}).

    The decision step lists only what changed, but events recorded before it compared
    replies list "reply" whenever one was sent with the approval, the draft unchanged (the
    inbox always sends it); `reply_changed` says whether the reply sent differs from the
    suggestion's, so both read alike."""
    if event_type not in (APPROVED_EVENT, REJECTED_EVENT):
        return PersonDecision.UNKNOWN
    by = str((payload or {}).get("by") or "")
    if by == SYSTEM_DECIDER or by.startswith(PLAYBOOK_DECIDER):
        return PersonDecision.UNKNOWN
    if event_type == REJECTED_EVENT:
        return PersonDecision.REJECTED
    edited = {str(k) for k in (payload or {}).get("edited") or []}
    if not reply_changed:
        edited.discard("reply")
    return PersonDecision.EDITED if edited else PersonDecision.APPROVED


def agreement(outcome: Outcome, decision: PersonDecision) -> bool | None:
    """Whether the playbook and the person agreed (None: nothing to compare)."""
    if outcome is Outcome.NOT_RUN or decision is PersonDecision.UNKNOWN:
        return None
    as_is = decision is PersonDecision.APPROVED
    return as_is if outcome is Outcome.APPROVE else not as_is


@dataclass(frozen=True)
class Case:
    """One past inbound message, as the engine saw it when it arrived."""

    message_id: uuid.UUID
    thread_id: uuid.UUID
    subject: str
    received_at: datetime
    day: date  # the store's calendar day it arrived on: the daily caps' period
    shop: str | None
    event: TriggerEvent
    facts: Facts
    guardrail_notes: list[str]
    decision: PersonDecision
    currency: str | None = None


@dataclass(frozen=True)
class Caps:
    daily_refund_cap: Decimal | None
    daily_execution_cap: int | None


@dataclass(frozen=True)
class Replayed:
    case: Case
    verdict: Verdict
    outcome: Outcome
    agreed: bool | None
    refund: Decimal | None  # what it would have refunded on its own


@dataclass
class _Counters:
    refunded: dict[tuple[str | None, date], Decimal] = field(default_factory=dict)
    executions: Counter[tuple[str | None, date]] = field(default_factory=Counter)
    ran_in: set[uuid.UUID] = field(default_factory=set)


def replay(playbook: PlaybookView, cases: Iterable[Case], caps: Caps) -> list[Replayed]:
    """Each case's outcome, in the order given (arrival order). Automation counts as on:
    the question is what the rule would do. Only this playbook's own automatic approvals
    count toward the daily caps, and only its own runs toward run-once-per-thread."""
    counters = _Counters()
    results: list[Replayed] = []
    for case in cases:
        key = (case.shop, case.day)
        safety = Safety(
            automation_enabled=True,
            guardrail_notes=case.guardrail_notes,
            refunded_today=counters.refunded.get(key, Decimal(0)),
            daily_refund_cap=caps.daily_refund_cap,
            executions_today=counters.executions[key],
            daily_execution_cap=caps.daily_execution_cap,
            ran_in_thread=frozenset({playbook.id} if case.thread_id in counters.ran_in else ()),
        )
        verdict = evaluate(playbook, case.event, case.facts, safety)
        refund: Decimal | None = None
        if not verdict.would_run:
            outcome = Outcome.NOT_RUN
        else:
            counters.ran_in.add(case.thread_id)
            outcome = Outcome.APPROVE if verdict.auto_approve else Outcome.HOLD
        if outcome is Outcome.APPROVE:
            counters.executions[key] += 1
            if case.facts.get("suggestion.action_type") == "REFUND":
                refund = _decimal(case.facts.get("suggestion.refund_amount"))
                counters.refunded[key] = counters.refunded.get(key, Decimal(0)) + refund
        results.append(Replayed(case, verdict, outcome, agreement(outcome, case.decision), refund))
    return results


def _decimal(value: Any) -> Decimal:
    # The engine approves a refund only on an amount it can read; absent means none.
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except ArithmeticError:
        return Decimal(0)


# --- the tally -------------------------------------------------------------------------------


class DecisionCounts(BaseModel):
    approved: int = Field(0, description="a person approved the suggestion as it was")
    edited: int = Field(0, description="a person approved it with the reply or payload changed")
    rejected: int = Field(0, description="a person rejected it")
    unknown: int = Field(0, description="no person decided (automatic, expired, pending)")


class Tally(BaseModel):
    messages: int = Field(description="inbound messages replayed")
    approves: bool = Field(description="the rules have an approve_suggestion step")
    matched: int = Field(description="messages it would have run on (trigger and conditions)")
    would_run: int = Field(
        description="messages it would have acted on by itself: for a playbook that approves "
        "suggestions, those it would approve without a person; otherwise those it would run on"
    )
    would_approve: int = Field(description="suggestions it would have approved on its own")
    would_hold: int = Field(
        description="messages it would run on but leave to a person (a blocker, such as the "
        "confidence threshold, or no approve step)"
    )
    agreed: int = Field(
        description="of the matched messages a person decided: it would approve and the "
        "person approved as is, or it would hold and the person edited or rejected"
    )
    disagreed: int = Field(
        description="of the matched messages a person decided: it would approve what the "
        "person edited or rejected, or hold what the person approved as is"
    )
    unknown: int = Field(
        description="matched messages no person decided (a playbook approved it, it expired "
        "or was superseded, or it is still pending)"
    )
    when_approving: DecisionCounts = Field(
        description="what people decided on the suggestions it would have approved"
    )
    when_holding: DecisionCounts = Field(
        description="what people decided on the messages it would have left to them"
    )
    held_by: dict[str, int] = Field(
        description="why it would have left messages to a person: blocker code -> messages"
    )
    money_would_move: int = Field(
        description="suggestions it would have approved on its own that move money or goods "
        "(REFUND, CANCEL, REPLACE_ITEM)"
    )
    refunds_by_currency: dict[str, Decimal] = Field(
        description="the refunds it would have approved on its own, summed per currency"
    )


class Example(BaseModel):
    message_id: uuid.UUID
    thread_id: uuid.UUID
    subject: str
    received_at: datetime
    action_type: str | None = Field(description="the suggested action")
    confidence: Decimal | None
    outcome: Outcome
    decision: PersonDecision
    agreed: bool | None
    blocked_by: list[str] = Field(description="the blocker codes, when it would hold")
    refund: Decimal | None = None
    currency: str | None = None


def tally(playbook: PlaybookView, results: Sequence[Replayed]) -> Tally:
    approving, holding = Counter[str](), Counter[str]()
    held_by: Counter[str] = Counter()
    refunds: dict[str, Decimal] = {}
    money = 0
    for r in results:
        if r.outcome is Outcome.APPROVE:
            approving[r.case.decision.value] += 1
            if r.case.facts.get("suggestion.action_type") in MONEY_OR_GOODS:
                money += 1
            if r.refund:
                currency = r.case.currency or "?"
                refunds[currency] = refunds.get(currency, Decimal(0)) + r.refund
        elif r.outcome is Outcome.HOLD:
            holding[r.case.decision.value] += 1
            held_by.update({b.code for b in r.verdict.blocked_by})
    would_approve, would_hold = approving.total(), holding.total()
    has_approval = any(isinstance(a, ApproveSuggestion) for a in playbook.rules.actions)
    return Tally(
        messages=len(results),
        approves=has_approval,
        matched=would_approve + would_hold,
        would_run=would_approve if has_approval else would_hold,
        would_approve=would_approve,
        would_hold=would_hold,
        agreed=sum(1 for r in results if r.agreed is True),
        disagreed=sum(1 for r in results if r.agreed is False),
        unknown=approving[PersonDecision.UNKNOWN] + holding[PersonDecision.UNKNOWN],
        when_approving=DecisionCounts(**approving),
        when_holding=DecisionCounts(**holding),
        held_by=dict(held_by.most_common()),
        money_would_move=money,
        refunds_by_currency=dict(sorted(refunds.items())),
    )


def _rank(r: Replayed) -> int:
    """Disagreements first, the costly kind (approving what a person refused) before the
    missed kind; then agreements, then the undecided."""
    if r.agreed is False:
        return 0 if r.outcome is Outcome.APPROVE else 1
    if r.agreed is True:
        return 2 if r.outcome is Outcome.APPROVE else 3
    return 4


def examples(results: Sequence[Replayed], limit: int = MAX_EXAMPLES) -> list[Example]:
    """Up to `limit` messages it would have run on, disagreements first, newest first."""
    ran = [r for r in results if r.outcome is not Outcome.NOT_RUN]
    ran.sort(key=lambda r: (_rank(r), -r.case.received_at.timestamp(), str(r.case.message_id)))
    return [_example(r) for r in ran[:limit]]


def _example(r: Replayed) -> Example:
    facts = r.case.facts
    action_type = facts.get("suggestion.action_type")
    confidence = facts.get("suggestion.confidence")
    return Example(
        message_id=r.case.message_id,
        thread_id=r.case.thread_id,
        subject=r.case.subject,
        received_at=r.case.received_at,
        action_type=str(action_type) if action_type is not None else None,
        confidence=Decimal(str(confidence)) if confidence is not None else None,
        outcome=r.outcome,
        decision=r.case.decision,
        agreed=r.agreed,
        blocked_by=[b.code for b in r.verdict.blocked_by] if r.outcome is Outcome.HOLD else [],
        refund=r.refund,
        currency=r.case.currency if r.refund is not None else None,
    )


# --- in words --------------------------------------------------------------------------------


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _listing(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def describe(result: Tally, days: int) -> list[str]:
    """The tally as a merchant reads it, one sentence a line (the page and the CLI)."""
    window = f"the last {_counted(result.messages, 'message')} ({_counted(days, 'day')})"
    if not result.approves:
        lines = [f"This rule would have run on {result.matched} of {window}."]
    else:
        lines = [f"This rule would have approved {result.would_approve} of {window}."]
        a = result.when_approving
        parts = [
            text.format(n)
            for text, n in (
                ("rejected {}", a.rejected),
                ("edited {}", a.edited),
                ("approved {} as they were", a.approved),
            )
            if n
        ]
        if parts:
            lines.append(f"Of those, a person {_listing(parts)}.")
        if a.unknown:
            lines.append(f"{_counted(a.unknown, 'was', 'were')} not decided by a person.")
        if result.money_would_move:
            refunds = ", ".join(f"{amount} {c}" for c, amount in result.refunds_by_currency.items())
            lines.append(
                f"{_counted(result.money_would_move, 'approval')} would have moved money or "
                f"goods{f' (refunds: {refunds})' if refunds else ''}."
            )
    if result.approves and result.would_hold:
        why = ", ".join(f"{code} {n}" for code, n in result.held_by.items())
        h = result.when_holding
        lines.append(
            f"It would have left {result.would_hold} to a person ({why}); a person approved "
            f"{h.approved} of those as they were."
        )
    if result.matched:
        lines.append(
            f"Agreed with people on {result.agreed}, disagreed on {result.disagreed}; "
            f"{result.unknown} not decided by a person."
        )
    return lines
