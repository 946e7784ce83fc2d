"""Evaluating playbooks: facts in, a verdict out, with every condition's actual value and
every reason an approval would still wait for a person. Pure and deterministic: no I/O,
no clock; the caller gathers the facts (names in CONDITION_FIELDS and FACT_PLACEHOLDERS)
and the safety counters, and acts on the verdicts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from string import Formatter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.playbook_rules import (
    CONDITION_FIELDS,
    FACT_PLACEHOLDERS,
    AllGroup,
    AnyGroup,
    ApproveSuggestion,
    Condition,
    MessageReceivedTrigger,
    OrderEventTrigger,
    PlaybookRules,
    ThreadIdleTrigger,
)

__all__ = [
    "FACT_NAMES",
    "FACT_PLACEHOLDERS",
    "Blocker",
    "ConditionResult",
    "FactValue",
    "Facts",
    "PlaybookView",
    "Safety",
    "TriggerEvent",
    "Verdict",
    "choose",
    "evaluate",
    "render_template",
]

FactValue = Decimal | int | float | str | bool | list[str] | None
# Field name -> value: the CONDITION_FIELDS, and the texts FACT_PLACEHOLDERS name. A fact
# that is absent (or None) is unknown: its conditions do not match.
Facts = Mapping[str, FactValue]
# Every fact the engine reads; the blockers read suggestion.* and message.* among them.
FACT_NAMES = frozenset(CONDITION_FIELDS) | frozenset(FACT_PLACEHOLDERS.values())


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlaybookView(_Frozen):
    """What the engine needs of a playbook, its rules parsed."""

    id: uuid.UUID
    name: str
    enabled: bool
    priority: int
    stop_processing: bool
    run_once_per_thread: bool
    confidence_threshold: float
    requires_approval: bool
    rules: PlaybookRules
    created_at: datetime  # the tie-break after priority, then id


class TriggerEvent(_Frozen):
    """What happened. Fields that do not apply to the event stay None."""

    event: Literal["message.received", "order.event", "thread.idle"]
    intent: str | None = None
    channel: str | None = None
    language: str | None = None
    topic: str | None = None  # order.event
    since: Literal["our_reply", "no_decision"] | None = None  # thread.idle
    idle_seconds: int | None = None  # thread.idle


class Safety(_Frozen):
    """The merchant's switches and today's counters, for the approval blockers."""

    automation_enabled: bool = True
    guardrail_notes: list[str] = Field(default_factory=list)  # the suggestion's note codes
    refunded_today: Decimal = Decimal(0)
    daily_refund_cap: Decimal | None = None
    executions_today: int = 0
    daily_execution_cap: int | None = None
    ran_in_thread: frozenset[uuid.UUID] = frozenset()  # playbooks already run in this thread


class ConditionResult(_Frozen):
    field: str
    operator: str
    value: bool | Decimal | str | list[str]
    actual: FactValue  # None when the fact is unknown
    matched: bool
    group: str | None = None  # "any[2]": a member of the group at conditions[2]


class Blocker(_Frozen):
    """Why the playbook cannot act on its own (or at all, for the first three codes)."""

    code: str
    detail: str


class Verdict(_Frozen):
    playbook_id: uuid.UUID
    playbook_name: str
    trigger_matched: bool
    conditions: list[ConditionResult]
    matched: bool  # enabled, not run in this thread already (if once), trigger and conditions
    actions: list[dict[str, Any]]  # the action documents, in order
    auto_approve: bool  # its approve_suggestion may approve without a person
    blocked_by: list[Blocker]
    would_run: bool  # matched, and automation is on


# Blockers that stop the whole playbook rather than only its approval.
DISABLED, RUN_ONCE, AUTOMATION_OFF = "disabled", "run_once", "automation_off"


def evaluate(playbook: PlaybookView, event: TriggerEvent, facts: Facts, safety: Safety) -> Verdict:
    rules = playbook.rules
    trigger_matched = _trigger_matches(rules.trigger, event)
    results: list[ConditionResult] = []
    conditions_hold = True
    for index, item in enumerate(rules.conditions):
        if isinstance(item, AnyGroup | AllGroup):
            group = f"{item.mode}[{index}]"
            members = [_condition(c, facts, group) for c in item.members]
            combine = any if item.mode == "any" else all
            holds = combine(m.matched for m in members)
            results.extend(members)
        else:
            result = _condition(item, facts, None)
            holds = result.matched
            results.append(result)
        conditions_hold = conditions_hold and holds

    stopped: list[Blocker] = []
    if not playbook.enabled:
        stopped.append(Blocker(code=DISABLED, detail="the playbook is switched off"))
    if playbook.run_once_per_thread and playbook.id in safety.ran_in_thread:
        stopped.append(Blocker(code=RUN_ONCE, detail="it already ran in this thread"))
    if not safety.automation_enabled:
        stopped.append(Blocker(code=AUTOMATION_OFF, detail="automation is switched off"))

    matched = (
        trigger_matched
        and conditions_hold
        and not any(b.code in {DISABLED, RUN_ONCE} for b in stopped)
    )
    would_run = matched and safety.automation_enabled
    approvals = [a for a in rules.actions if isinstance(a, ApproveSuggestion)]
    blocked_by = stopped + (
        _approval_blockers(playbook, approvals, facts, safety) if approvals else []
    )
    return Verdict(
        playbook_id=playbook.id,
        playbook_name=playbook.name,
        trigger_matched=trigger_matched,
        conditions=results,
        matched=matched,
        actions=[a.model_dump(mode="json") for a in rules.actions],
        auto_approve=would_run and bool(approvals) and not blocked_by,
        blocked_by=blocked_by,
        would_run=would_run,
    )


def listening(playbooks: Sequence[PlaybookView], event: str) -> list[PlaybookView]:
    """The enabled playbooks triggered by this kind of event: with none, no facts are needed."""
    return [p for p in playbooks if p.enabled and p.rules.trigger.event == event]


def choose(
    playbooks: Sequence[PlaybookView], event: TriggerEvent, facts: Facts, safety: Safety
) -> list[Verdict]:
    """The matched verdicts in run order (priority, then created_at, then id), up to and
    including the first matched playbook that stops processing. Disabled ones never appear."""
    chosen: list[Verdict] = []
    ordered = sorted(
        (p for p in playbooks if p.enabled), key=lambda p: (p.priority, p.created_at, p.id)
    )
    for playbook in ordered:
        verdict = evaluate(playbook, event, facts, safety)
        if verdict.matched:
            chosen.append(verdict)
            if playbook.stop_processing:
                break
    return chosen


def render_template(template: str, facts: Facts) -> str:
    """The template with each {placeholder} replaced by its fact's text; an unknown or
    missing one becomes "". Only a malformed template (which validation refuses) raises."""
    pieces: list[str] = []
    for literal, name, _, _ in Formatter().parse(template):
        pieces.append(literal)
        if name is not None:
            pieces.append(_as_text(facts.get(FACT_PLACEHOLDERS.get(name, ""))))
    return "".join(pieces)


# --- triggers --------------------------------------------------------------------------------


def _trigger_matches(
    trigger: MessageReceivedTrigger | OrderEventTrigger | ThreadIdleTrigger, event: TriggerEvent
) -> bool:
    if trigger.event != event.event:
        return False
    if isinstance(trigger, MessageReceivedTrigger):
        return (
            _allows(trigger.intents, event.intent)
            and _allows(trigger.channels, event.channel)
            and _allows(trigger.languages, event.language)
        )
    if isinstance(trigger, OrderEventTrigger):
        return _allows(trigger.topics, event.topic)
    return (
        event.since == trigger.since
        and event.idle_seconds is not None
        and event.idle_seconds >= trigger.after_seconds
    )


def _allows(accepted: Sequence[str], value: str | None) -> bool:
    """An empty filter accepts anything, even an unknown value; a filter needs a match."""
    if not accepted:
        return True
    return value is not None and value.casefold() in {a.casefold() for a in accepted}


# --- conditions ------------------------------------------------------------------------------


def _condition(condition: Condition, facts: Facts, group: str | None) -> ConditionResult:
    kind = CONDITION_FIELDS[condition.field]
    fact = facts.get(condition.field)
    number = _number(fact) if kind == "number" else None
    actual = number if number is not None else _shown(fact)
    matched = fact is not None and _holds(kind, condition.operator, condition.value, fact)
    return ConditionResult(
        field=condition.field,
        operator=condition.operator,
        value=condition.value,
        actual=actual,
        matched=matched,
        group=group,
    )


def _holds(kind: str, operator: str, expected: Any, fact: FactValue) -> bool:
    if kind == "number":
        number = _number(fact)
        return number is not None and _compare(operator, number, expected)
    if kind == "bool":
        return isinstance(fact, bool) and _compare(operator, fact, expected)
    if kind == "tags":
        if not isinstance(fact, list | tuple):
            return False
        present = _fold(expected) in {_fold(tag) for tag in fact}
        return present if operator == "contains" else not present
    if isinstance(fact, list | tuple | bool):
        return False  # text and action types are single words, not lists or flags
    if kind == "action_type":
        return _compare(operator, str(fact), expected)
    # Text compares regardless of case: Shopify reports statuses as "PAID" in GraphQL and
    # "paid" in REST webhooks, and a merchant writes either.
    expected = [_fold(v) for v in expected] if isinstance(expected, list) else _fold(expected)
    return _compare(operator, _fold(str(fact)), expected)


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    match operator:
        case "eq":
            return actual == expected
        case "ne":
            return actual != expected
        case "lt":
            return actual < expected
        case "lte":
            return actual <= expected
        case "gt":
            return actual > expected
        case "gte":
            return actual >= expected
        case "in":
            return actual in expected
        case "not_in":
            return actual not in expected
        case "contains":
            return expected in actual
    raise AssertionError(f"no comparison for {operator!r}")


def _number(value: FactValue) -> Decimal | None:
    """A finite Decimal from whatever number type the fact arrived in; else None."""
    if value is None or isinstance(value, bool | list | tuple):
        return None
    try:
        number = Decimal(str(value).strip())
    except (ArithmeticError, ValueError):  # ValueError: an int too long to print
        return None
    return number if number.is_finite() else None


def _shown(value: FactValue) -> FactValue:
    """The fact as reported: as given, but a NaN or infinity (which nothing matches) as None."""
    if isinstance(value, Decimal | float) and _number(value) is None:
        return None
    return value


def _fold(text: str) -> str:
    return text.casefold()


# --- approval --------------------------------------------------------------------------------


def _approval_blockers(
    playbook: PlaybookView, approvals: list[ApproveSuggestion], facts: Facts, safety: Safety
) -> list[Blocker]:
    """Every reason the suggestion would still wait for a person, in a fixed order."""
    blockers: list[Blocker] = []

    def block(code: str, detail: str) -> None:
        blockers.append(Blocker(code=code, detail=detail))

    if playbook.requires_approval:
        block("requires_approval", "the playbook asks a person to approve")
    suggested = facts.get("suggestion.action_type")
    if suggested is None:
        block("no_suggestion", "there is no suggested action to approve")
    else:
        confidence = _number(facts.get("suggestion.confidence"))
        threshold = _number(playbook.confidence_threshold)
        if confidence is None or threshold is None or confidence < threshold:
            block(
                "below_threshold",
                f"confidence {confidence if confidence is not None else 'unknown'} "
                f"is below the threshold {playbook.confidence_threshold}",
            )
    # The first approval that allows the suggested type is the one that would approve it.
    approval = next((a for a in approvals if str(suggested) in a.action_types), None)
    if suggested is not None and approval is None:
        allowed = sorted({t.value for a in approvals for t in a.action_types})
        block("action_not_allowed", f"{suggested} is not one of {', '.join(allowed)}")
    refund = facts.get("suggestion.refund_amount")
    amount = _number(refund) if refund is not None else Decimal(0)
    if amount is None:
        # Money is only moved on an amount we can read.
        block("refund_cap", f"the refund amount {refund!r} is not a number")
        amount = Decimal(0)
    limit = approval.max_refund_amount if approval is not None else None
    if limit is not None and amount > limit:
        block("refund_cap", f"the refund of {amount} is above this playbook's {limit}")
    if (
        safety.daily_refund_cap is not None
        and safety.refunded_today + amount > safety.daily_refund_cap
    ):
        block(
            "daily_refund_cap",
            f"{safety.refunded_today} refunded today plus {amount} is above the daily "
            f"{safety.daily_refund_cap}",
        )
    if (
        safety.daily_execution_cap is not None
        and safety.executions_today + 1 > safety.daily_execution_cap
    ):
        block(
            "daily_execution_cap",
            f"{safety.executions_today} automatic executions today; the cap is "
            f"{safety.daily_execution_cap}",
        )
    if safety.guardrail_notes:
        block("guardrail_note", f"the guardrails noted {', '.join(safety.guardrail_notes)}")
    # These always go to a person, whatever the playbook says.
    if facts.get("message.wants_human") is True:
        block("wants_human", "the customer asked for a person")
    if facts.get("message.legal_threat") is True:
        block("legal_threat", "the customer mentions legal action")
    sentiment = facts.get("message.sentiment")
    if isinstance(sentiment, str) and _fold(sentiment) == "angry":
        block("angry", "the customer is angry")
    return blockers


# --- templates -------------------------------------------------------------------------------


def _as_text(value: FactValue) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
