"""The offline suggester's decision: keyword signals, the order's state, templated replies.

Deterministic and explainable: every draft says in its rationale which rule fired and
what it read. Used when no LLM is configured (and in the demo), labelled "offline-rules".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from domain.guardrails.text import money_amounts
from domain.mail.quoting import split_reply
from domain.order_names import order_names_in
from integrations.offline import extract, lexicon, replies, resolution, tone
from kernel.enums import ActionType
from kernel.values import LineItem, OrderSnapshot, SuggestionDraft, SuggestionRequest

PROVIDER = "offline-rules"

# Signals about the goods themselves; any of them makes a refund or replacement plausible.
_GOODS = ("refund", "return", "exchange", "wrong_item", "damaged", "missing")
_CLAUSE = re.compile(r"\s[-\u2013\u2014]\s|[;:,()]|\b(?:but|aber|pero|mais|while|whereas)\b", re.I)
# "Re:", "AW:", "RV:", "Antw:", "Odp:"... the subject of a reply in any client.
_REPLY_SUBJECT = re.compile(
    r"^\s*(?:re|aw|wg|rv|r|ref|réf|antw|sv|vs|odp|fwd?|tr|enc|i)\s*(?:\[\d+\])?\s*:", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*|\n+")  # and the Japanese ones


@dataclass(frozen=True)
class _Decision:
    intent: str
    action: ActionType
    kind: str  # the reply template
    rule: str  # what fired, for the rationale
    confidence: float
    payload: dict[str, Any] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def suggest_offline(request: SuggestionRequest) -> SuggestionDraft:
    # The rules read the new message only: a "cancel" in the quoted history was last time's.
    if not request.quoted:
        body, quoted = split_reply(request.text)
        request = request.model_copy(update={"text": body, "quoted": quoted})
    text = f"{request.subject}\n{request.text}"
    lang = lexicon.language(request.text or request.subject)
    # Thanks for a refund already made asks for none: those words are not read as requests.
    settled = resolution.read(text)
    body = resolution.read(request.text)
    signals = _signals(settled.text, body.text)
    own = _signals(body.text, body.text)
    if _REPLY_SUBJECT.match(request.subject) and (own or body.resolved):
        # A reply's subject is the thread's ("RE: Your refund for order #1005"), often the
        # store's own words: when the new text asks, thanks or settles something itself,
        # the new text is what is read.
        signals = own | ({"thanks"} & signals)
    order, found_by = extract.thread_order(request, text)
    if order is None and "cancel" in signals and not order_names_in(text):
        # "Cancel my order" with several orders and none named: only one that has not
        # shipped can be meant. (An order named that is not the sender's is no such case.)
        open_orders = [o for o in request.candidate_orders if _cancellable(o)]
        if len(open_orders) == 1:
            order, found_by = open_orders[0], "the only one of the sender's orders not shipped"
    if settled.sarcastic:
        signals.discard("thanks")  # "thanks for nothing" thanks nobody
    elif settled.resolved:
        signals.add("thanks")
    decision = _decide(request, text, signals, order)
    # Several kinds of request in one message: the rules picked one, a person should look.
    families = sum(
        (
            "cancel" in signals,
            "address_change" in signals,
            any(s in signals for s in _GOODS),
            "status" in signals,
        )
    )
    confidence = decision.confidence - 0.1 * max(0, families - 1)
    if order is not None and request.order is None:  # picked from the sender's candidates
        confidence -= 0.1
    values = {"order": order.name if order is not None else "", **decision.values}
    about = f"order {order.name} ({found_by})" if order is not None else "no order"
    heard = ", ".join(sorted(signals)) or "none"
    # For the playbooks only: the decision above never reads the tone.
    read = tone.tone(
        request.subject,
        request.text,
        only_thanks=signals == {"thanks"},
        complaint=any(s in signals for s in ("damaged", "missing", "wrong_item")),
    )
    heard_tone = f"; tone: {', '.join(read.cues)}" if read.cues else ""
    return SuggestionDraft(
        intent=decision.intent,
        action=decision.action,
        payload=decision.payload,
        reply=replies.letter(decision.kind, lang, request.store_name, **values),
        confidence=round(min(0.9, max(0.2, confidence)), 2),
        rationale=(
            f"rule {decision.rule}; {about}; signals: {heard}; reply language {lang}{heard_tone}"
        ),
        provider=PROVIDER,
        order_name=order.name if order is not None else None,
        language=lang,
        sentiment=read.sentiment,
        wants_human=read.wants_human,
        legal_threat=read.legal_threat,
    )


def _signals(text: str, body: str) -> set[str]:
    found = {name for name in lexicon.SIGNALS if lexicon.affirmed(name, text)}
    # "change" alone means nothing; with an address word in the same sentence it is a
    # request, and so is "ship it to" or "address" followed by a complete address.
    found.discard("change")
    address = "address" in found
    found.discard("address")
    if any(
        lexicon.present("address", sentence) and lexicon.present("change", sentence)
        for sentence in _SENTENCE.split(text)
    ) or (address and extract.new_address(body, {"countryCodeV2": "?"}) is not None):
        found.add("address_change")
    if lexicon.present("thanks", text):
        found.add("thanks")  # a closing "thanks" is never negated, whatever precedes it
    return found


def _decide(
    request: SuggestionRequest, text: str, signals: set[str], order: OrderSnapshot | None
) -> _Decision:
    if order is None:
        if signals <= {"thanks"} and "thanks" in signals:
            return _Decision("thanks", ActionType.NONE, "thanks", "thanks_without_order", 0.6)
        return _Decision("unknown_order", ActionType.INFO_REQUEST, "ask_order", "no_order", 0.5)
    foreign = [name for name in order_names_in(text) if name not in _sender_names(request, order)]
    if foreign:
        # Only the sender's orders are ours to discuss; ask for theirs without naming any.
        return _Decision("other_order", ActionType.INFO_REQUEST, "ask_order", "foreign_order", 0.5)
    if "instructions" in signals:
        return _hold("instructions", "the message gives the system instructions")
    if too_much := [a for a in money_amounts(text) if a > max(order.total, order.refundable)]:
        return _hold("dictated_amount", f"asks about {max(too_much)}, more than the order's total")
    if "compensation" in signals:
        return _hold("compensation", "asks for compensation beyond a refund or replacement")
    if "address_change" in signals:
        return _address(request, order)
    unshipped = not order.cancelled and order.fulfillment_status == "UNFULFILLED"
    goods = [s for s in _GOODS if s in signals]
    if "cancel" in signals and (unshipped or not goods):
        return _cancel(order)
    if goods:
        return _goods(text, signals, order)
    if "status" in signals:
        state = "CANCELLED" if order.cancelled else order.fulfillment_status
        if not replies.has_template(f"status_{state}"):
            state = "UNFULFILLED"
        return _Decision("order_status", ActionType.NONE, f"status_{state}", "status", 0.8)
    if "thanks" in signals:
        return _Decision("thanks", ActionType.NONE, "thanks", "thanks", 0.7)
    return _Decision("other", ActionType.INFO_REQUEST, "ask_problem", "nothing_matched", 0.35)


def _cancellable(order: OrderSnapshot) -> bool:
    return not order.cancelled and order.fulfillment_status == "UNFULFILLED"


def _sender_names(request: SuggestionRequest, order: OrderSnapshot) -> set[str]:
    return {order.name, *(o.name for o in request.candidate_orders)}


def _hold(rule: str, why: str) -> _Decision:
    return _Decision("needs_person", ActionType.NONE, "hold", f"{rule} ({why})", 0.5)


def _cancel(order: OrderSnapshot) -> _Decision:
    if order.cancelled:
        return _Decision(
            "cancel_request", ActionType.NONE, "already_cancelled", "cancel_already_cancelled", 0.8
        )
    if order.fulfillment_status != "UNFULFILLED":
        return _Decision(
            "cancel_request", ActionType.NONE, "cancel_shipped", "cancel_after_shipping", 0.75
        )
    return _Decision(
        "cancel_request",
        ActionType.CANCEL,
        "cancelled",
        "cancel_before_shipping",
        0.85,
        payload={"reason": "CUSTOMER"},
        values={"amount": str(order.refundable), "currency": order.currency},
    )


def _address(request: SuggestionRequest, order: OrderSnapshot) -> _Decision:
    if order.cancelled or order.fulfillment_status != "UNFULFILLED":
        return _Decision(
            "address_change", ActionType.NONE, "address_shipped", "address_after_shipping", 0.75
        )
    found = extract.new_address(request.text, order.shipping_address)
    if found is None:
        return _Decision(
            "address_change",
            ActionType.INFO_REQUEST,
            "ask_address",
            "address_change_without_full_address",
            0.7,
        )
    address, source = found
    one_line = ", ".join(
        address[key]
        for key in ("address1", "address2", "zip", "city", "countryCode")
        if address.get(key)
    )
    fallback = source.startswith("country kept")
    return _Decision(
        "address_change",
        ActionType.ADDRESS_CHANGE,
        "address_changed",
        f"address_change_with_full_address (country from {source})",
        0.65 if fallback else 0.8,
        payload={"address": address},
        values={"address": one_line},
    )


def _goods(text: str, signals: set[str], order: OrderSnapshot) -> _Decision:
    items = _items_concerned(text, order)
    wants_refund = "refund" in signals or "return" in signals
    wants_new = "exchange" in signals
    if wants_new and (not wants_refund or "wrong_item" in signals):
        return _replace(items, order, "exchange_requested", 0.8 if not wants_refund else 0.6, text)
    # A refund for a broken item is a damaged-item case: playbooks tell the two apart.
    intent = "damaged_item" if "damaged" in signals else "refund_request"
    if wants_refund:
        return _refund(items, order, "refund_requested", 0.85, text, intent)
    if "wrong_item" in signals:
        return _replace(items, order, "wrong_item_sent", 0.7, text)
    reason = "damaged_item" if "damaged" in signals else "missing_item"
    if not items and len(order.line_items) > 1:
        # A problem told, no remedy asked and no item named: which one, before money moves.
        return _Decision(
            "item_problem", ActionType.INFO_REQUEST, "ask_item", f"{reason}_which_item", 0.55
        )
    return _refund(items, order, reason, 0.6, text, intent)


def _items_concerned(text: str, order: OrderSnapshot) -> list[LineItem]:
    """The items named where the problem is told, narrowest first: in the clause, else the
    sentence, else anywhere. "Money back for the hoodie only - the cap is fine" is the
    hoodie; "you can keep the descaler" is not a complaint about the descaler."""
    sentences = [s for s in _SENTENCE.split(text) if _tells_problem(s)]
    clauses = [c for s in sentences for c in _CLAUSE.split(s) if c and _tells_problem(c)]
    for scope in (clauses, sentences, [text]):
        if items := extract.mentioned_items(order, " | ".join(scope)):
            return items
    return []


def _tells_problem(part: str) -> bool:
    return any(lexicon.present(signal, part) for signal in _GOODS)


def _refund(
    items: list[LineItem],
    order: OrderSnapshot,
    rule: str,
    confidence: float,
    text: str,
    intent: str = "refund_request",
) -> _Decision:
    if order.refundable <= 0:
        return _Decision(intent, ActionType.NONE, "hold", f"{rule}_nothing_left", 0.5)
    partial = items and len(items) < len(order.line_items)
    if partial:
        lines = [{"line_item_id": i.id, "quantity": extract.quantity_for(i, text)} for i in items]
        return _Decision(
            intent,
            ActionType.REFUND,
            "refunded_items",
            f"{rule} (partial: the items named)",
            confidence,
            payload={"line_items": lines},
            values={"items": _titles(items)},
        )
    several = len(order.line_items) > 1 and not items
    unnamed = f"; no item of {len(order.line_items)} named, check which" if several else ""
    return _Decision(
        intent,
        ActionType.REFUND,
        "refunded",
        f"{rule} (the order's refundable rest{unnamed})",
        confidence - (0.25 if several else 0),  # it may be more than the customer meant
        payload={"amount": str(order.refundable)},
        values={"amount": str(order.refundable), "currency": order.currency},
    )


def _replace(
    items: list[LineItem], order: OrderSnapshot, rule: str, confidence: float, text: str
) -> _Decision:
    if not items and len(order.line_items) == 1:
        items = list(order.line_items)
    if not items:
        return _Decision(
            "replace_item", ActionType.INFO_REQUEST, "ask_item", f"{rule}_which_item", 0.55
        )
    item = items[0]
    if order.cancelled or item.variant_id is None:
        return _Decision("replace_item", ActionType.NONE, "hold", f"{rule}_not_replaceable", 0.5)
    payload: dict[str, Any] = {
        "line_item_id": item.id,
        "quantity": extract.quantity_for(item, text),
    }
    return _Decision(
        "replace_item",
        ActionType.REPLACE_ITEM,
        "replacing",
        rule,
        confidence - (0.1 if len(items) > 1 else 0),
        payload=payload,
        values={"items": item.title},
    )


def _titles(items: list[LineItem]) -> str:
    return ", ".join(item.title for item in items)
