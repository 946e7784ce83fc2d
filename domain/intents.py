"""The intents playbooks filter on, and how a suggester's own label maps onto them. Pure.

The offline rules and an LLM each name the customer's wish in their own words
("replace_item", "where_is_order"); a trigger names one of `Intent`. Unknown labels are
"other", so a playbook never fires on a label it could not have been written for.
"""

from __future__ import annotations

from domain.playbook_rules import Intent

_SYNONYMS: dict[str, Intent] = {
    "refund": Intent.REFUND_REQUEST,
    "return_request": Intent.REFUND_REQUEST,
    "damaged": Intent.DAMAGED_ITEM,
    "broken_item": Intent.DAMAGED_ITEM,
    "defective_item": Intent.DAMAGED_ITEM,
    "wrong_item_received": Intent.WRONG_ITEM,
    "replace_item": Intent.WRONG_ITEM,
    "exchange_request": Intent.WRONG_ITEM,
    "cancel": Intent.CANCEL_REQUEST,
    "cancellation": Intent.CANCEL_REQUEST,
    "cancel_order": Intent.CANCEL_REQUEST,
    "address_update": Intent.ADDRESS_CHANGE,
    "change_address": Intent.ADDRESS_CHANGE,
    "where_is_order": Intent.ORDER_STATUS,
    "where_is_my_order": Intent.ORDER_STATUS,
    "order_tracking": Intent.ORDER_STATUS,
    "shipping_status": Intent.ORDER_STATUS,
}


def trigger_intent(label: str | None) -> Intent:
    """The Intent a suggester's label stands for."""
    key = (label or "").strip().lower().replace("-", "_").replace(" ", "_")
    if key in Intent._value2member_map_:
        return Intent(key)
    return _SYNONYMS.get(key, Intent.OTHER)
