"""Applying the guardrails to a draft, and the invariant a guarded draft satisfies. Pure.

Money is never raised or silently lowered: an amount the model got wrong sends the
draft to a person (NONE) instead of being clamped, because the customer would read
the clamped amount in a reply the model wrote for another one.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from domain.guardrails import replies
from domain.guardrails.model import (
    FIRED_CONFIDENCE_CAP,
    Code,
    GuardedSuggestion,
    GuardrailContext,
    GuardrailNote,
)
from domain.guardrails.orders import (
    acting_order,
    in_store,
    is_senders,
    is_trusted,
    known_orders,
    named_reference,
)
from domain.guardrails.payload import (
    Finding,
    Remedy,
    order_limits,
    parse_amount,
    payload_shape,
)
from domain.guardrails.text import (
    hidden_text_signals,
    injection_signals,
    money_amounts,
    promised_acts,
)
from domain.order_names import order_names_in
from kernel.enums import REPLY_ONLY, ActionType
from kernel.values import OrderSnapshot, SuggestionDraft

_ALLOWED_PROMISES: dict[ActionType, set[str]] = {
    ActionType.REFUND: {"refund"},
    ActionType.CANCEL: {"cancel", "refund"},  # orderCancel refunds to the original payment
    ActionType.REPLACE_ITEM: {"replace"},
    ActionType.ADDRESS_CHANGE: {"address"},
    ActionType.INFO_REQUEST: set(),
    ActionType.NONE: set(),
}


def apply_guardrails(draft: SuggestionDraft, context: GuardrailContext) -> GuardedSuggestion:
    """The draft made safe to store, with a note for every guardrail that fired."""
    notes: list[GuardrailNote] = []
    current = draft
    # A remedy can expose another finding (a held draft still faces the injection check);
    # a few rounds reach the fixed point, because every remedy ends in a template.
    for _ in range(4):
        findings = _findings(current, context)
        for finding in findings:
            note = GuardrailNote(code=finding.code.value, detail=finding.detail)
            if note not in notes:
                notes.append(note)
        remedied = _remedied(current, findings, context)
        if remedied == current:
            break
        current = remedied
    target = acting_order(current, context)
    return GuardedSuggestion(
        draft=current,
        order=target if target is not None and is_trusted(target, context) else None,
        notes=notes,
        original=draft,
    )


def is_safe(draft: SuggestionDraft, context: GuardrailContext) -> bool:
    """True when the draft may be stored as is: its action runs within the order's limits,
    on an order of this store that is the sender's, its reply promises nothing else, and its
    confidence is a probability that stays low whenever something needs a person's eye."""
    confidence = draft.confidence
    if not (isinstance(confidence, int | float) and math.isfinite(confidence)):
        return False
    findings = _findings(draft, context)
    if any(finding.remedy is not Remedy.CAP for finding in findings):
        return False
    return 0 <= confidence <= (FIRED_CONFIDENCE_CAP if findings else 1)


# --- finding what is wrong ------------------------------------------------------------------


def _findings(draft: SuggestionDraft, context: GuardrailContext) -> list[Finding]:
    action = ActionType(draft.action)
    findings = _confidence_findings(draft.confidence)
    order_findings = _order_findings(draft, action, context)
    if order_findings:
        return findings + order_findings
    target = acting_order(draft, context)
    shape = payload_shape(action, draft.payload)
    if shape is not None:
        findings.append(shape)
    if shape is None and target is not None and action not in REPLY_ONLY:
        findings += order_limits(action, draft.payload, target)
    own_names = {o.name for o in known_orders(context) if is_trusted(o, context)}
    if foreign := [name for name in order_names_in(draft.reply) if name not in own_names]:
        # Naming someone else's order to this sender is a leak even in a plain reply.
        detail = f"the reply names orders that are not the sender's: {foreign[:3]}"
        remedy = Remedy.REWRITE_REPLY if action in REPLY_ONLY else Remedy.HOLD
        findings.append(Finding(Code.ORDER_NOT_SENDERS, detail, remedy))
    signals = injection_signals(
        context.customer_text,
        sender_email=context.sender_email,
        shop_domains=frozenset(d.strip().lower() for d in context.shop_domains),
        own_order_names=own_names,
        order_total=max(target.total, target.refundable) if target is not None else None,
    ) + hidden_text_signals(context.hidden_text)
    if signals:
        # Whatever the model proposed, it proposed it with hostile text in its prompt:
        # nothing it would change in the store goes ahead without a person.
        remedy = Remedy.CAP if action in REPLY_ONLY else Remedy.HOLD
        findings.append(Finding(Code.PROMPT_INJECTION, "; ".join(signals), remedy))
    if findings and max(f.remedy for f in findings) >= Remedy.ASK_ADDRESS:
        return findings  # the reply is replaced anyway
    ceiling = _refund_ceiling(action, draft.payload, target)
    limit = context.max_auto_refund
    if action is ActionType.REFUND and limit is not None and ceiling and ceiling > limit:
        detail = f"refund of up to {ceiling} is above the automatic limit {limit}"
        findings.append(Finding(Code.REFUND_ABOVE_POLICY, detail, Remedy.CAP))
    findings += _reply_findings(draft.reply, action, ceiling)
    return findings


def _confidence_findings(confidence: Any) -> list[Finding]:
    if isinstance(confidence, int | float) and math.isfinite(confidence) and 0 <= confidence <= 1:
        return []
    detail = f"confidence {confidence!r} is not between 0 and 1"
    return [Finding(Code.CONFIDENCE_OUT_OF_RANGE, detail, Remedy.CAP)]


def _order_findings(
    draft: SuggestionDraft, action: ActionType, context: GuardrailContext
) -> list[Finding]:
    reference = named_reference(draft)
    target = acting_order(draft, context)
    if target is None:
        if reference is not None:
            detail = f"order {reference[:40]!r} is not among the sender's orders in this store"
            return [Finding(Code.ORDER_UNKNOWN, detail, Remedy.ASK_ORDER)]
        if action not in REPLY_ONLY:
            detail = f"{action} needs an order and none was matched"
            return [Finding(Code.ORDER_UNKNOWN, detail, Remedy.ASK_ORDER)]
        return []
    # Asking for the order number without naming any order is already the safe answer.
    if (
        action in REPLY_ONLY
        and reference is None
        and draft.reply == replies.ask_for_order(context.store_name)
    ):
        return []
    if not in_store(target, context):
        detail = f"order {target.name} was read from another store"
        return [Finding(Code.ORDER_NOT_IN_STORE, detail, Remedy.ASK_ORDER)]
    if not is_senders(target, context):
        detail = f"order {target.name} was not placed with the sender's email address"
        return [Finding(Code.ORDER_NOT_SENDERS, detail, Remedy.ASK_ORDER)]
    return []


def _refund_ceiling(
    action: ActionType, payload: dict[str, Any], order: OrderSnapshot | None
) -> Decimal | None:
    """The most money the action can move: what a reply may mention and the policy limits."""
    if order is None or action not in (ActionType.REFUND, ActionType.CANCEL):
        return None
    if action is ActionType.REFUND and payload.get("amount") is not None:
        return parse_amount(payload["amount"])
    lines = payload.get("line_items") if action is ActionType.REFUND else None
    if lines:
        prices = {item.id: item.unit_price for item in order.line_items}
        value = sum(
            (prices.get(line["line_item_id"], Decimal(0)) * line.get("quantity", 1))
            for line in lines
        )
        return min(Decimal(value), order.refundable)
    return order.refundable


def _reply_findings(reply: str, action: ActionType, ceiling: Decimal | None) -> list[Finding]:
    extra = sorted(promised_acts(reply) - _ALLOWED_PROMISES[action])
    if extra:
        detail = f"the reply promises {extra}, which a {action} draft does not do"
        return [Finding(Code.REPLY_PROMISES_OTHER, detail, Remedy.REWRITE_REPLY)]
    if ceiling is not None:
        above = [amount for amount in money_amounts(reply) if amount > ceiling]
        if above:
            detail = f"the reply mentions {max(above)}, more than the {ceiling} this draft moves"
            return [Finding(Code.REPLY_PROMISES_OTHER, detail, Remedy.REWRITE_REPLY)]
    return []


# --- making it right ------------------------------------------------------------------------


def _remedied(
    draft: SuggestionDraft, findings: list[Finding], context: GuardrailContext
) -> SuggestionDraft:
    if not findings:
        return draft
    store = context.store_name
    target = acting_order(draft, context)
    name = target.name if target is not None and is_trusted(target, context) else None
    strongest = max(finding.remedy for finding in findings)
    update: dict[str, Any] = {}
    if strongest is Remedy.ASK_ORDER:
        update = {
            "action": ActionType.INFO_REQUEST,
            "payload": {},
            "reply": replies.ask_for_order(store),
        }
        if "order_name" in type(draft).model_fields:
            update["order_name"] = None  # never store a reference to someone else's order
    elif strongest is Remedy.HOLD:
        update = {"action": ActionType.NONE, "payload": {}, "reply": replies.hold(store, name)}
    elif strongest is Remedy.ASK_ADDRESS:
        update = {
            "action": ActionType.INFO_REQUEST,
            "payload": {},
            "reply": replies.ask_for_address(store, name),
        }
    else:
        remedies = {finding.remedy for finding in findings}
        if Remedy.DROP_PAYLOAD in remedies:
            update["payload"] = {}
        if Remedy.REWRITE_REPLY in remedies:
            update["reply"] = _reply_for(draft, target, context)
    update["confidence"] = min(_clamped(draft.confidence), FIRED_CONFIDENCE_CAP)
    return draft.model_copy(update=update)


def _clamped(confidence: Any) -> float:
    if not isinstance(confidence, int | float) or math.isnan(confidence):
        return 0.0
    return float(min(max(confidence, 0.0), 1.0))


def _reply_for(
    draft: SuggestionDraft, target: OrderSnapshot | None, context: GuardrailContext
) -> str:
    store = context.store_name
    action = ActionType(draft.action)
    if target is None or action in REPLY_ONLY:
        trusted = target is not None and is_trusted(target, context)
        return replies.hold(store, target.name if target is not None and trusted else None)
    if action is ActionType.REFUND:
        amount = parse_amount(draft.payload.get("amount"))
        if amount is None and not draft.payload.get("line_items"):
            amount = target.refundable
        return replies.refunded(store, target.name, amount, target.currency)
    if action is ActionType.CANCEL:
        return replies.cancelled(store, target.name)
    if action is ActionType.REPLACE_ITEM:
        return replies.replacing(store, target.name)
    return replies.address_changed(store, target.name)


def reply_problem(
    reply: str, action: ActionType, payload: dict[str, Any], order: OrderSnapshot | None
) -> str | None:
    """Why a reply does not match its action (an act it does not do, more money than it
    moves), for a person's edit; None when it matches."""
    findings = _reply_findings(reply, action, _refund_ceiling(action, payload, order))
    return findings[0].detail if findings else None
