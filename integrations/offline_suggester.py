"""A deterministic suggester: keyword rules and templates, no model.

Used when no LLM is configured (and in the demo), and labelled as such. The
AI issue makes it richer; it stays predictable so tests and demos are too.
"""

from __future__ import annotations

import re

from integrations.ports import SuggesterPort, SuggestionDraft, SuggestionRequest
from models.enums import ActionType

PROVIDER = "offline-rules"

# Checked in order: the first rule whose pattern matches decides the intent.
_RULES: list[tuple[str, re.Pattern[str], ActionType]] = [
    ("cancel_request", re.compile(r"\bcancel", re.I), ActionType.CANCEL),
    (
        "damaged_item",
        re.compile(r"\b(damaged|broken|defect|cracked|torn)", re.I),
        ActionType.REFUND,
    ),
    (
        "wrong_item",
        re.compile(r"\bwrong (item|size|colou?r|product)", re.I),
        ActionType.REPLACE_ITEM,
    ),
    (
        "address_change",
        re.compile(r"\b(change|update|wrong).{0,20}address", re.I),
        ActionType.ADDRESS_CHANGE,
    ),
    ("refund_request", re.compile(r"\b(refund|money back|return)", re.I), ActionType.REFUND),
    (
        "order_status",
        re.compile(r"\b(where is|tracking|status|not (yet )?arrived|shipped)", re.I),
        ActionType.NONE,
    ),
]


class OfflineSuggester(SuggesterPort):
    async def suggest(self, request: SuggestionRequest) -> SuggestionDraft:
        return suggest_offline(request)


def suggest_offline(request: SuggestionRequest) -> SuggestionDraft:
    text = f"{request.subject}\n{request.text}"
    intent, action = "other", ActionType.INFO_REQUEST
    for name, pattern, rule_action in _RULES:
        if pattern.search(text):
            intent, action = name, rule_action
            break
    order = request.order
    greeting = "Hi,\n\n"
    sign_off = f"\n\nBest regards,\n{request.store_name}"
    if order is None:
        return SuggestionDraft(
            intent=intent,
            action=ActionType.INFO_REQUEST,
            reply=(
                f"{greeting}Thanks for getting in touch. Could you send us your order number "
                f"(it looks like #1001) so we can help?{sign_off}"
            ),
            confidence=0.5,
            rationale=f"intent {intent}; no order matched, so we ask for the order number",
            provider=PROVIDER,
        )
    payload: dict[str, object] = {}
    if action is ActionType.REFUND:
        payload = {"amount": str(order.refundable)}
        body = f"We're sorry about order {order.name}. We have refunded {order.refundable} {order.currency} to your original payment method."
    elif action is ActionType.CANCEL:
        body = f"We have cancelled order {order.name} and refunded it in full."
    elif action is ActionType.REPLACE_ITEM and order.line_items:
        payload = {"line_item_id": order.line_items[0].id}
        body = f"Sorry for the mix-up with order {order.name}. We're sending the right item now."
    elif action is ActionType.ADDRESS_CHANGE:
        action = ActionType.INFO_REQUEST
        body = f"Happy to update the address on order {order.name}. Please reply with the full new address."
    else:
        action = ActionType.NONE if action is ActionType.NONE else action
        body = f"Order {order.name} is {order.fulfillment_status.lower().replace('_', ' ')}. We'll email you as soon as anything changes."
    return SuggestionDraft(
        intent=intent,
        action=action,
        payload=payload,
        reply=f"{greeting}{body}{sign_off}",
        confidence=0.75 if intent != "other" else 0.4,
        rationale=f"keyword rule matched intent {intent} on order {order.name}",
        provider=PROVIDER,
    )
