"""The starter set of playbooks every merchant gets (`services.accounts` seeds them).

Each template starts enabled with `requires_approval` set, so the engine
(`domain.playbook_engine`) matches them but every approval still waits for a person
until the merchant switches that off. Rules are written in version 2; migration 0011
rewrote the ones seeded earlier in version 1 to the same documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernel.enums import PlaybookCategory


@dataclass(frozen=True)
class PlaybookTemplate:
    key: str
    name: str
    description: str
    category: PlaybookCategory
    trigger: dict[str, Any]
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    confidence_threshold: float
    priority: int = 100  # lower runs first
    stop_processing: bool = False


def _rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"version": 2, "field": field, "operator": operator, "value": value}


def _on(*intents: str) -> dict[str, Any]:
    return {
        "version": 2,
        "event": "message.received",
        "intents": list(intents),
        "channels": [],
        "languages": [],
    }


UNFULFILLED = _rule("order.fulfillment_status", "in", ["UNFULFILLED", "unfulfilled"])
NOT_CANCELLED = _rule("order.cancelled", "eq", False)

DEFAULT_PLAYBOOKS: tuple[PlaybookTemplate, ...] = (
    PlaybookTemplate(
        key="refund-damaged-item",
        name="Refund damaged items",
        description=(
            "A customer reports an item arrived damaged: refund it on a paid order, "
            "up to 100 in the order's currency."
        ),
        category=PlaybookCategory.REFUND_RETURN,
        trigger=_on("damaged_item"),
        conditions=[
            _rule("suggestion.action_type", "eq", "REFUND"),
            _rule("order.financial_status", "in", ["PAID", "PARTIALLY_REFUNDED"]),
            _rule("suggestion.refund_amount", "lte", "100"),
        ],
        actions=[
            {
                "version": 2,
                "type": "approve_suggestion",
                "action_types": ["REFUND"],
                "max_refund_amount": "100",
            }
        ],
        confidence_threshold=0.9,
    ),
    PlaybookTemplate(
        key="cancel-unfulfilled-order",
        name="Cancel unfulfilled orders",
        description="The customer asks to cancel and nothing has shipped yet: cancel and refund.",
        category=PlaybookCategory.FULFILLMENT,
        trigger=_on("cancel_request"),
        conditions=[
            _rule("suggestion.action_type", "eq", "CANCEL"),
            UNFULFILLED,
            NOT_CANCELLED,
        ],
        actions=[{"version": 2, "type": "approve_suggestion", "action_types": ["CANCEL"]}],
        confidence_threshold=0.9,
    ),
    PlaybookTemplate(
        key="address-change-before-fulfilment",
        name="Change the address before fulfilment",
        description="Update the shipping address while the order has not shipped.",
        category=PlaybookCategory.FULFILLMENT,
        trigger=_on("address_change"),
        conditions=[
            _rule("suggestion.action_type", "eq", "ADDRESS_CHANGE"),
            UNFULFILLED,
            NOT_CANCELLED,
        ],
        actions=[{"version": 2, "type": "approve_suggestion", "action_types": ["ADDRESS_CHANGE"]}],
        confidence_threshold=0.85,
    ),
    PlaybookTemplate(
        key="where-is-my-order",
        name="Where is my order?",
        description=(
            "Answer order-status questions with the drafted reply, which names the order's "
            "status in the customer's language."
        ),
        category=PlaybookCategory.SUPPORT,
        trigger=_on("order_status"),
        conditions=[_rule("suggestion.action_type", "in", ["NONE", "INFO_REQUEST"])],
        # No template: the drafted reply is in the customer's language, and the store
        # has no tracking link to give.
        actions=[{"version": 2, "type": "approve_suggestion", "action_types": ["NONE"]}],
        confidence_threshold=0.8,
    ),
    PlaybookTemplate(
        key="wrong-item-received",
        name="Replace a wrong item",
        description="The customer received the wrong item: send the right one.",
        category=PlaybookCategory.REFUND_RETURN,
        trigger=_on("wrong_item"),
        conditions=[_rule("suggestion.action_type", "eq", "REPLACE_ITEM"), NOT_CANCELLED],
        actions=[{"version": 2, "type": "approve_suggestion", "action_types": ["REPLACE_ITEM"]}],
        confidence_threshold=0.9,
    ),
)
