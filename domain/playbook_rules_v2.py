"""Version 2 of the playbook rule documents: the shapes the engine evaluates.

Version-1 documents (`domain.playbook_rules_v1`) upgrade to these; `domain.playbook_rules`
reads either and always writes these.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from domain.playbook_rules_base import (
    TAG_MAX_LENGTH,
    Intent,
    Operator,
    Scalar,
    Strict,
    check_condition,
    check_placeholders,
    coerce_condition_value,
    template_placeholders,
)
from kernel.enums import ActionType

MAX_DELAY_SECONDS = 90 * 24 * 3600  # the longest wait or idle time: 90 days
MIN_IDLE_SECONDS = 60


# --- trigger -------------------------------------------------------------------------------


class Channel(StrEnum):
    """Where a message came in."""

    GMAIL = "gmail"
    EMAIL = "email"  # the forwarding alias or SMTP
    API = "api"


class OrderTopic(StrEnum):
    """The Shopify order webhooks a playbook can start from."""

    CREATED = "created"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    REFUNDED = "refunded"


LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO 639-1, lowercase")]


class MessageReceivedTrigger(Strict):
    version: Literal[2] = 2
    event: Literal["message.received"] = "message.received"
    intents: list[Intent] = Field(default_factory=list, description="empty: any intent")
    channels: list[Channel] = Field(default_factory=list, description="empty: any channel")
    languages: list[LanguageCode] = Field(default_factory=list, description="empty: any language")


class OrderEventTrigger(Strict):
    version: Literal[2] = 2
    event: Literal["order.event"] = "order.event"
    topics: list[OrderTopic] = Field(default_factory=list, description="empty: any topic")


class ThreadIdleTrigger(Strict):
    """our_reply: the customer has not answered our last reply for `after_seconds`;
    no_decision: a suggestion has waited `after_seconds` for a decision."""

    version: Literal[2] = 2
    event: Literal["thread.idle"] = "thread.idle"
    after_seconds: int = Field(ge=MIN_IDLE_SECONDS, le=MAX_DELAY_SECONDS)
    since: Literal["our_reply", "no_decision"]


Trigger = MessageReceivedTrigger | OrderEventTrigger | ThreadIdleTrigger
TriggerDocument = Annotated[Trigger, Field(discriminator="event")]

# --- conditions ----------------------------------------------------------------------------

# The facts a condition may test, and what kind of value each one is.
CONDITION_FIELDS: dict[str, str] = {
    "suggestion.action_type": "action_type",
    "suggestion.confidence": "number",
    "suggestion.refund_amount": "number",
    "order.total_amount": "number",
    "order.financial_status": "text",
    "order.fulfillment_status": "text",
    "order.cancelled": "bool",
    "order.age_days": "number",
    "order.shipping_country": "text",  # ISO 3166 alpha-2
    "customer.order_count": "number",
    "customer.total_spent": "number",
    "customer.email": "text",
    "message.text": "text",
    "message.language": "text",  # ISO 639-1
    "message.channel": "text",  # a Channel
    "message.sentiment": "text",  # positive, neutral, negative or angry
    "message.wants_human": "bool",
    "message.legal_threat": "bool",
    "thread.message_count": "number",
    "thread.tags": "tags",  # the thread's tags; a condition names one
    "time.business_hours": "bool",  # the store's local business hours
}
OPERATORS_BY_KIND: dict[str, set[str]] = {
    "number": {"eq", "ne", "lt", "lte", "gt", "gte"},
    "text": {"eq", "ne", "in", "not_in", "contains"},
    "action_type": {"eq", "ne", "in", "not_in"},
    "bool": {"eq", "ne"},
    "tags": {"contains", "not_contains"},
}


class Condition(Strict):
    version: Literal[2] = 2
    field: str
    operator: Operator
    value: Scalar | list[str]

    @model_validator(mode="before")
    @classmethod
    def _coerce_value(cls, data: Any) -> Any:
        return coerce_condition_value(data, CONDITION_FIELDS)

    @model_validator(mode="after")
    def _check_types(self) -> Condition:
        check_condition(self.field, self.operator, self.value, CONDITION_FIELDS, OPERATORS_BY_KIND)
        return self


def _one_level(members: Any) -> Any:
    if isinstance(members, list) and any(
        isinstance(m, dict) and ("any" in m or "all" in m) for m in members
    ):
        raise ValueError("groups nest one level only: a group's members are conditions")
    return members


class AnyGroup(Strict):
    """Holds when at least one of its conditions holds."""

    mode: ClassVar[Literal["any"]] = "any"
    version: Literal[2] = 2
    any: list[Condition] = Field(min_length=1)

    _one_level = field_validator("any", mode="before")(_one_level)

    @property
    def members(self) -> list[Condition]:
        return self.any


class AllGroup(Strict):
    """Holds when every one of its conditions holds."""

    mode: ClassVar[Literal["all"]] = "all"
    version: Literal[2] = 2
    all: list[Condition] = Field(min_length=1)

    _one_level = field_validator("all", mode="before")(_one_level)

    @property
    def members(self) -> list[Condition]:
        return self.all


ConditionGroup = AnyGroup | AllGroup
ConditionItem = Condition | AnyGroup | AllGroup


def condition_shape(data: Any) -> str:
    """Which model an item of the conditions list is: "any", "all" or "condition"."""
    if isinstance(data, AnyGroup | AllGroup):
        return data.mode
    if isinstance(data, dict):
        return "any" if "any" in data else "all" if "all" in data else "condition"
    return "condition"


ConditionDocument = Annotated[
    Annotated[Condition, Tag("condition")]
    | Annotated[AnyGroup, Tag("any")]
    | Annotated[AllGroup, Tag("all")],
    Discriminator(condition_shape),
]

# --- actions -------------------------------------------------------------------------------

# What each template placeholder is filled with: the name of the fact holding its text.
FACT_PLACEHOLDERS: dict[str, str] = {
    "customer_name": "customer.name",
    "customer_first_name": "customer.first_name",
    "order_name": "order.name",
    "order_status": "order.status_text",
    "order_total": "order.total_text",
    "tracking_url": "order.tracking_url",
    "store_name": "store.name",
}
TEMPLATE_PLACEHOLDERS = frozenset(FACT_PLACEHOLDERS)
Template = Annotated[str, Field(min_length=1, max_length=10_000)]
TagName = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH)]


def check_template(template: str) -> str:
    """Only {name} placeholders: rendering fills them with text, so nothing else applies."""
    placeholders = template_placeholders(template)
    if any(not name for name, _, _ in placeholders):
        raise ValueError("placeholders need a name, such as {customer_name}")
    if any(conversion or spec for _, conversion, spec in placeholders):
        raise ValueError("placeholders take no conversion or format, only {name}")
    check_placeholders({name for name, _, _ in placeholders}, TEMPLATE_PLACEHOLDERS)
    return template


class ApproveSuggestion(Strict):
    """Approve the suggested action and reply without a person, within limits."""

    version: Literal[2] = 2
    type: Literal["approve_suggestion"] = "approve_suggestion"
    action_types: list[ActionType] = Field(min_length=1)
    max_refund_amount: Decimal | None = Field(default=None, ge=0)


class ReplyWithTemplate(Strict):
    """Replace the drafted reply by the merchant's own wording."""

    version: Literal[2] = 2
    type: Literal["reply_with_template"] = "reply_with_template"
    template: Template

    _check = field_validator("template")(check_template)


class Escalate(Strict):
    """Leave the message for a person, with a note saying why."""

    version: Literal[2] = 2
    type: Literal["escalate"] = "escalate"
    reason: str = Field(min_length=1, max_length=500)


class Wait(Strict):
    """Pause the run; a customer's reply ends it early unless `cancel_on_reply` is off."""

    version: Literal[2] = 2
    type: Literal["wait"] = "wait"
    seconds: int = Field(ge=1, le=MAX_DELAY_SECONDS)
    cancel_on_reply: bool = True


class SendFollowup(Strict):
    """Send the customer a new message from a template (a reminder, a review request)."""

    version: Literal[2] = 2
    type: Literal["send_followup"] = "send_followup"
    template: Template

    _check = field_validator("template")(check_template)


class TagThread(Strict):
    version: Literal[2] = 2
    type: Literal["tag_thread"] = "tag_thread"
    tags: list[TagName] = Field(min_length=1, max_length=10)

    @field_validator("tags")
    @classmethod
    def _once_each(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))


class CloseThread(Strict):
    version: Literal[2] = 2
    type: Literal["close_thread"] = "close_thread"


PlaybookAction = (
    ApproveSuggestion | ReplyWithTemplate | Escalate | Wait | SendFollowup | TagThread | CloseThread
)
ActionDocument = Annotated[PlaybookAction, Field(discriminator="type")]
