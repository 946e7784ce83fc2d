"""The backtest's pure part: reading a decision Event, agreement, the replay's own daily caps
and run-once-per-thread, the tally, the examples' order and the sentences."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.playbook_backtest import (
    Caps,
    Case,
    Outcome,
    PersonDecision,
    agreement,
    describe,
    examples,
    person_decision,
    replay,
    same_text,
    tally,
)
from domain.playbook_engine import PlaybookView, TriggerEvent
from domain.playbook_rules import PlaybookRules

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
EVENT = TriggerEvent(event="message.received", intent="damaged_item")


def view(*, threshold: float = 0.9, once: bool = False, approve: bool = True) -> PlaybookView:
    actions: list[dict[str, Any]] = (
        [{"version": 2, "type": "approve_suggestion", "action_types": ["REFUND"]}]
        if approve
        else [{"version": 2, "type": "escalate", "reason": "look"}]
    )
    return PlaybookView(
        id=uuid.uuid4(),
        name="refunds",
        enabled=True,
        priority=10,
        stop_processing=False,
        run_once_per_thread=once,
        confidence_threshold=threshold,
        requires_approval=False,
        rules=PlaybookRules.parse(
            {"version": 2, "event": "message.received", "intents": ["damaged_item"]}, [], actions
        ),
        created_at=NOW,
    )


def case(
    n: int,
    *,
    confidence: str = "0.95",
    amount: str = "40",
    decision: PersonDecision = PersonDecision.APPROVED,
    thread: uuid.UUID | None = None,
    day: date = TODAY,
    intent: str = "damaged_item",
    notes: list[str] | None = None,
) -> Case:
    return Case(
        message_id=uuid.UUID(int=n),
        thread_id=thread or uuid.uuid4(),
        subject=f"message {n}",
        received_at=NOW + timedelta(minutes=n),
        day=day,
        shop="shop.myshopify.com",
        event=EVENT.model_copy(update={"intent": intent}),
        facts={
            "suggestion.action_type": "REFUND",
            "suggestion.confidence": Decimal(confidence),
            "suggestion.refund_amount": Decimal(amount),
        },
        guardrail_notes=notes or [],
        decision=decision,
        currency="EUR",
    )


NO_CAPS = Caps(daily_refund_cap=None, daily_execution_cap=None)


def test_a_decision_event_reads_as_a_persons_decision() -> None:
    def read(kind: str | None, by: str, edited: list[str], changed: bool = True) -> str:
        payload = {"by": by, "reason": None, "edited": edited}
        return person_decision(kind, payload, reply_changed=changed).value

    assert read("action.approved", "api", []) == "approved"
    # The inbox sends the draft back with every approval: unchanged, it is no edit.
    assert read("action.approved", "api", ["reply"], changed=False) == "approved"
    assert read("action.approved", "api", ["reply"]) == "edited"
    assert read("action.approved", "api", ["amount", "reply"], changed=False) == "edited"
    assert read("action.rejected", "api", []) == "rejected"
    assert read("action.approved", f"playbook:{uuid.uuid4()}", []) == "unknown"
    assert read("action.rejected", "system", []) == "unknown"  # expired or superseded
    assert read(None, "api", []) == "unknown"
    assert same_text("Hi,\r\nthanks \n", "Hi,\nthanks") and not same_text("Hi", "Hello")


def test_agreement_is_defined_for_both_outcomes() -> None:
    approved, edited, rejected = (
        PersonDecision.APPROVED,
        PersonDecision.EDITED,
        PersonDecision.REJECTED,
    )
    assert agreement(Outcome.APPROVE, approved) is True
    assert agreement(Outcome.APPROVE, edited) is False
    assert agreement(Outcome.APPROVE, rejected) is False
    assert agreement(Outcome.HOLD, approved) is False
    assert agreement(Outcome.HOLD, edited) is True
    assert agreement(Outcome.HOLD, rejected) is True
    assert agreement(Outcome.HOLD, PersonDecision.UNKNOWN) is None
    assert agreement(Outcome.NOT_RUN, rejected) is None


def test_the_replay_counts_its_own_daily_caps_per_day() -> None:
    tomorrow = TODAY + timedelta(days=1)
    cases = [case(1), case(2), case(3), case(4, day=tomorrow)]
    results = replay(view(), cases, Caps(daily_refund_cap=None, daily_execution_cap=2))
    assert [r.outcome for r in results] == ["approve", "approve", "hold", "approve"]
    assert [b.code for b in results[2].verdict.blocked_by] == ["daily_execution_cap"]

    # 40 + 40 fits a cap of 100; a third 40 would not, a 20 still does.
    refunds = [case(1), case(2), case(3), case(4, amount="20")]
    results = replay(view(), refunds, Caps(daily_refund_cap=Decimal(100), daily_execution_cap=None))
    assert [r.outcome for r in results] == ["approve", "approve", "hold", "approve"]
    assert [b.code for b in results[2].verdict.blocked_by] == ["daily_refund_cap"]


def test_run_once_per_thread_holds_within_the_replay() -> None:
    thread = uuid.uuid4()
    cases = [case(1, thread=thread), case(2, thread=thread), case(3)]
    assert [r.outcome for r in replay(view(once=True), cases, NO_CAPS)] == [
        "approve",
        "not_run",
        "approve",
    ]
    # A hold is a run too: the playbook fired in the thread.
    low = [case(1, thread=thread, confidence="0.5"), case(2, thread=thread)]
    assert [r.outcome for r in replay(view(once=True), low, NO_CAPS)] == ["hold", "not_run"]
    assert [r.outcome for r in replay(view(), cases, NO_CAPS)] == ["approve"] * 3


def test_the_tally_and_the_examples_put_disagreements_first() -> None:
    cases = [
        case(1),  # approve, agreed
        case(2, decision=PersonDecision.REJECTED),  # approve, disagreed
        case(3, decision=PersonDecision.EDITED, amount="12.50"),  # approve, disagreed
        case(4, confidence="0.5"),  # hold, disagreed (a person approved as is)
        case(5, confidence="0.5", decision=PersonDecision.REJECTED),  # hold, agreed
        case(6, notes=["injection"]),  # hold by the guardrails, agreed? approved: disagreed
        case(7, decision=PersonDecision.UNKNOWN),  # approve, unknown
        case(8, intent="order_status"),  # not run
    ]
    playbook = view()
    results = replay(playbook, cases, NO_CAPS)
    counted = tally(playbook, results)
    assert counted.model_dump() == {
        "messages": 8,
        "approves": True,
        "matched": 7,
        "would_run": 4,
        "would_approve": 4,
        "would_hold": 3,
        "agreed": 2,
        "disagreed": 4,
        "unknown": 1,
        "when_approving": {"approved": 1, "edited": 1, "rejected": 1, "unknown": 1},
        "when_holding": {"approved": 2, "edited": 0, "rejected": 1, "unknown": 0},
        "held_by": {"below_threshold": 2, "guardrail_note": 1},
        "money_would_move": 4,
        "refunds_by_currency": {"EUR": Decimal("132.50")},
    }
    # Approving what a person refused, newest first; then holding what they approved; ...
    assert [e.message_id.int for e in examples(results)] == [3, 2, 6, 4, 1, 5, 7]
    assert [e.message_id.int for e in examples(results, limit=2)] == [3, 2]
    first = examples(results)[0]
    assert (first.outcome, first.decision, first.agreed) == ("approve", "edited", False)
    assert first.refund == Decimal("12.50") and first.currency == "EUR"
    assert examples(results)[2].blocked_by == ["guardrail_note"]

    assert describe(counted, 30) == [
        "This rule would have approved 4 of the last 8 messages (30 days).",
        "Of those, a person rejected 1, edited 1 and approved 1 as they were.",
        "1 was not decided by a person.",
        "4 approvals would have moved money or goods (refunds: 132.50 EUR).",
        "It would have left 3 to a person (below_threshold 2, guardrail_note 1); "
        "a person approved 2 of those as they were.",
        "Agreed with people on 2, disagreed on 4; 1 not decided by a person.",
    ]


def test_a_playbook_without_an_approval_runs_and_holds() -> None:
    playbook = view(approve=False)
    results = replay(playbook, [case(1), case(2, intent="other")], NO_CAPS)
    counted = tally(playbook, results)
    assert (counted.would_run, counted.would_approve, counted.would_hold) == (1, 0, 1)
    assert counted.disagreed == 1 and counted.money_would_move == 0  # it held what was approved
    assert (
        describe(counted, 7)[0] == "This rule would have run on 1 of the last 2 messages (7 days)."
    )
