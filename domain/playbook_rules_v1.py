"""Version 1 of the playbook rule documents, as first written; kept so stored rules stay
readable. Each model upgrades to its version-2 shape (`domain.playbook_rules_v2`), which is
all the rest of the code sees. Do not extend version 1: add to version 2."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from domain.playbook_rules_base import (
    Intent,
    Operator,
    Scalar,
    Strict,
    check_condition,
    check_placeholders,
    coerce_condition_value,
    template_placeholders,
)
from domain.playbook_rules_v2 import (
    CONDITION_FIELDS,
    ApproveSuggestion,
    Condition,
    Escalate,
    MessageReceivedTrigger,
    ReplyWithTemplate,
)
from kernel.enums import ActionType

# The facts a version-1 condition may test, and what kind of value each one is.
CONDITION_FIELDS_V1: dict[str, str] = {
    "suggestion.action_type": "action_type",
    "suggestion.confidence": "number",
    "suggestion.refund_amount": "number",
    "order.total_amount": "number",
    "order.financial_status": "text",
    "order.fulfillment_status": "text",
    "order.cancelled": "bool",
    "order.age_days": "number",
    "customer.order_count": "number",
    "message.text": "text",
}
OPERATORS_BY_KIND_V1: dict[str, set[str]] = {
    "number": {"eq", "ne", "lt", "lte", "gt", "gte"},
    "text": {"eq", "ne", "in", "not_in", "contains"},
    "action_type": {"eq", "ne", "in", "not_in"},
    "bool": {"eq", "ne"},
}
TEMPLATE_PLACEHOLDERS_V1 = frozenset(
    {"customer_name", "order_name", "order_status", "tracking_url", "store_name"}
)


class TriggerV1(Strict):
    version: Literal[1] = 1
    event: Literal["message.received"]
    intents: list[Intent] = Field(default_factory=list, description="empty: any intent")

    def upgrade(self) -> MessageReceivedTrigger:
        return MessageReceivedTrigger(intents=self.intents)


class ConditionV1(Strict):
    version: Literal[1] = 1
    field: str
    operator: Operator
    value: Scalar | list[str]

    @model_validator(mode="before")
    @classmethod
    def _coerce_value(cls, data: Any) -> Any:
        return coerce_condition_value(data, CONDITION_FIELDS_V1)

    @model_validator(mode="after")
    def _check_types(self) -> ConditionV1:
        if self.field not in CONDITION_FIELDS_V1 and self.field in CONDITION_FIELDS:
            raise ValueError(f"the field {self.field!r} needs version 2")
        check_condition(
            self.field, self.operator, self.value, CONDITION_FIELDS_V1, OPERATORS_BY_KIND_V1
        )
        return self

    def upgrade(self) -> Condition:
        return Condition(field=self.field, operator=self.operator, value=self.value)


class ApproveSuggestionV1(Strict):
    """Approve the suggested action and reply without a person, within limits."""

    version: Literal[1] = 1
    type: Literal["approve_suggestion"]
    action_types: list[ActionType] = Field(min_length=1)
    max_refund_amount: Decimal | None = Field(default=None, ge=0)

    def upgrade(self) -> ApproveSuggestion:
        return ApproveSuggestion(
            type=self.type,
            action_types=self.action_types,
            max_refund_amount=self.max_refund_amount,
        )


class ReplyWithTemplateV1(Strict):
    """Replace the drafted reply by the merchant's own wording."""

    version: Literal[1] = 1
    type: Literal["reply_with_template"]
    template: str = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _known_placeholders(self) -> ReplyWithTemplateV1:
        names = {name for name, _, _ in template_placeholders(self.template) if name}
        check_placeholders(names, TEMPLATE_PLACEHOLDERS_V1)
        return self

    def upgrade(self) -> ReplyWithTemplate:
        return ReplyWithTemplate(type=self.type, template=self.template)


class EscalateV1(Strict):
    """Leave the message for a person, with a note saying why."""

    version: Literal[1] = 1
    type: Literal["escalate"]
    reason: str = Field(min_length=1, max_length=500)

    def upgrade(self) -> Escalate:
        return Escalate(type=self.type, reason=self.reason)


PlaybookActionV1 = Annotated[
    ApproveSuggestionV1 | ReplyWithTemplateV1 | EscalateV1, Field(discriminator="type")
]
