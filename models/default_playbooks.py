"""The starter set of playbooks every merchant gets, and the idempotent seeding of it.

Each template starts enabled but with `requires_approval`: it shapes the
suggestion and says what it would do, and a merchant opts into hands-off
approval by turning that flag off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.enums import PlaybookCategory
from models.event import log_event
from models.playbook import Playbook
from models.playbook_rules import PlaybookRules


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


def _rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"version": 1, "field": field, "operator": operator, "value": value}


def _on(*intents: str) -> dict[str, Any]:
    return {"version": 1, "event": "message.received", "intents": list(intents)}


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
                "version": 1,
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
        actions=[{"version": 1, "type": "approve_suggestion", "action_types": ["CANCEL"]}],
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
        actions=[{"version": 1, "type": "approve_suggestion", "action_types": ["ADDRESS_CHANGE"]}],
        confidence_threshold=0.85,
    ),
    PlaybookTemplate(
        key="where-is-my-order",
        name="Where is my order?",
        description="Answer order-status questions with the order's status and tracking link.",
        category=PlaybookCategory.SUPPORT,
        trigger=_on("order_status"),
        conditions=[_rule("suggestion.action_type", "in", ["NONE", "INFO_REQUEST"])],
        actions=[
            {
                "version": 1,
                "type": "reply_with_template",
                "template": (
                    "Hi {customer_name},\n\nThanks for reaching out about order {order_name}. "
                    "Its current status is: {order_status}. You can follow the parcel here: "
                    "{tracking_url}\n\nBest regards,\n{store_name}"
                ),
            },
            {"version": 1, "type": "approve_suggestion", "action_types": ["NONE"]},
        ],
        confidence_threshold=0.8,
    ),
    PlaybookTemplate(
        key="wrong-item-received",
        name="Replace a wrong item",
        description="The customer received the wrong item: send the right one.",
        category=PlaybookCategory.REFUND_RETURN,
        trigger=_on("wrong_item"),
        conditions=[_rule("suggestion.action_type", "eq", "REPLACE_ITEM"), NOT_CANCELLED],
        actions=[{"version": 1, "type": "approve_suggestion", "action_types": ["REPLACE_ITEM"]}],
        confidence_threshold=0.9,
    ),
)


async def seed_default_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    """Create the templates the user does not have yet; return the user's default playbooks.

    Idempotent and safe under concurrent calls (unique user_id + template_key).
    A template the merchant edited or disabled is left as the merchant left it.
    """
    created: list[str] = []
    for template in DEFAULT_PLAYBOOKS:
        trigger, conditions, actions = PlaybookRules.parse(
            template.trigger, template.conditions, template.actions
        ).to_json()
        result = await session.execute(
            insert(Playbook)
            .values(
                user_id=user_id,
                name=template.name,
                description=template.description,
                category=template.category,
                trigger=trigger,
                conditions=conditions,
                actions=actions,
                confidence_threshold=template.confidence_threshold,
                requires_approval=True,
                enabled=True,
                is_default=True,
                template_key=template.key,
            )
            .on_conflict_do_nothing(index_elements=[Playbook.user_id, Playbook.template_key])
            .returning(Playbook.id)
        )
        if result.scalar_one_or_none() is not None:
            created.append(template.key)
    if created:
        await log_event(
            session,
            "playbooks.defaults_seeded",
            user_id=user_id,
            entity="user",
            entity_id=user_id,
            payload={"templates": created},
        )
    rows = await session.execute(
        select(Playbook)
        .where(Playbook.user_id == user_id, Playbook.is_default.is_(True))
        .order_by(Playbook.created_at, Playbook.name)
    )
    return list(rows.scalars())
