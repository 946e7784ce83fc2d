"""Versioned schemas for a Playbook's `trigger`, `conditions` and `actions` JSON.

Every document carries `version`; a reader picks the model for that version,
so rules written today keep parsing after the format grows. This module only
says what is well-formed: nothing evaluates playbooks yet.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from kernel.enums import ActionType
from kernel.errors import Malformed


class PlaybookRuleError(Malformed, ValueError):
    """A playbook document is not valid; the message names the part and the reason."""

    code = "invalid_playbook"


class Intent(StrEnum):
    """What the customer wants, as the classifier names it."""

    REFUND_REQUEST = "refund_request"
    DAMAGED_ITEM = "damaged_item"
    WRONG_ITEM = "wrong_item"
    CANCEL_REQUEST = "cancel_request"
    ADDRESS_CHANGE = "address_change"
    ORDER_STATUS = "order_status"
    OTHER = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- trigger -------------------------------------------------------------------------------


class TriggerV1(_Strict):
    version: Literal[1] = 1
    event: Literal["message.received"]
    intents: list[Intent] = Field(default_factory=list, description="empty: any intent")


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
    "customer.order_count": "number",
    "message.text": "text",
}
OPERATORS_BY_KIND: dict[str, set[str]] = {
    "number": {"eq", "ne", "lt", "lte", "gt", "gte"},
    "text": {"eq", "ne", "in", "not_in", "contains"},
    "action_type": {"eq", "ne", "in", "not_in"},
    "bool": {"eq", "ne"},
}

Operator = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains"]
Scalar = bool | Decimal | str


class ConditionV1(_Strict):
    version: Literal[1] = 1
    field: str
    operator: Operator
    value: Scalar | list[str]

    @model_validator(mode="before")
    @classmethod
    def _coerce_value(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("field") not in CONDITION_FIELDS:
            return data
        kind = CONDITION_FIELDS[data["field"]]
        value = data.get("value")
        if (
            kind == "number"
            and isinstance(value, int | float | str)
            and not isinstance(value, bool)
        ):
            try:
                return {**data, "value": Decimal(str(value))}
            except ArithmeticError:
                return data
        return data

    @model_validator(mode="after")
    def _check_types(self) -> ConditionV1:
        kind = CONDITION_FIELDS.get(self.field)
        if kind is None:
            raise ValueError(f"unknown field {self.field!r}; known: {sorted(CONDITION_FIELDS)}")
        if self.operator not in OPERATORS_BY_KIND[kind]:
            raise ValueError(f"operator {self.operator!r} does not apply to {self.field!r}")
        many = self.operator in {"in", "not_in"}
        if many != isinstance(self.value, list):
            raise ValueError(f"{self.operator!r} takes {'a list' if many else 'a single value'}")
        values = self.value if isinstance(self.value, list) else [self.value]
        for value in values:
            _check_kind(self.field, kind, value)
        return self


def _check_kind(field: str, kind: str, value: Any) -> None:
    ok = {
        "number": isinstance(value, Decimal),
        "bool": isinstance(value, bool),
        "text": isinstance(value, str),
        "action_type": isinstance(value, str) and value in ActionType.__members__,
    }[kind]
    if not ok:
        raise ValueError(f"{field!r} compares with a {kind.replace('_', ' ')} value, not {value!r}")


# --- actions -------------------------------------------------------------------------------

# Placeholders a reply template may use; filled from the order and the customer.
TEMPLATE_PLACEHOLDERS = frozenset(
    {"customer_name", "order_name", "order_status", "tracking_url", "store_name"}
)


class ApproveSuggestionV1(_Strict):
    """Approve the suggested action and reply without a person, within limits."""

    version: Literal[1] = 1
    type: Literal["approve_suggestion"]
    action_types: list[ActionType] = Field(min_length=1)
    max_refund_amount: Decimal | None = Field(default=None, ge=0)


class ReplyWithTemplateV1(_Strict):
    """Replace the drafted reply by the merchant's own wording."""

    version: Literal[1] = 1
    type: Literal["reply_with_template"]
    template: str = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _known_placeholders(self) -> ReplyWithTemplateV1:
        try:
            names = {name for _, name, _, _ in Formatter().parse(self.template) if name}
        except ValueError as exc:
            raise ValueError(f"template is not well-formed: {exc}") from exc
        unknown = names - TEMPLATE_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholders {sorted(unknown)}; allowed: {sorted(TEMPLATE_PLACEHOLDERS)}"
            )
        return self


class EscalateV1(_Strict):
    """Leave the message for a person, with a note saying why."""

    version: Literal[1] = 1
    type: Literal["escalate"]
    reason: str = Field(min_length=1, max_length=500)


PlaybookActionV1 = Annotated[
    ApproveSuggestionV1 | ReplyWithTemplateV1 | EscalateV1, Field(discriminator="type")
]

# --- versioned parsing ---------------------------------------------------------------------

_TRIGGERS: dict[int, TypeAdapter[Any]] = {1: TypeAdapter(TriggerV1)}
_CONDITIONS: dict[int, TypeAdapter[Any]] = {1: TypeAdapter(ConditionV1)}
_ACTIONS: dict[int, TypeAdapter[Any]] = {1: TypeAdapter(PlaybookActionV1)}

Trigger = TriggerV1
Condition = ConditionV1
PlaybookAction = ApproveSuggestionV1 | ReplyWithTemplateV1 | EscalateV1


def _parse(part: str, data: Any, versions: dict[int, TypeAdapter[Any]]) -> Any:
    if not isinstance(data, dict):
        raise PlaybookRuleError(f"{part}: expected an object, got {type(data).__name__}")
    version = data.get("version")
    if version not in versions:
        raise PlaybookRuleError(f"{part}: unsupported version {version!r}; known: {list(versions)}")
    try:
        return versions[version].validate_python(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise PlaybookRuleError(f"{part}: {reasons}") from exc


def _parse_list(part: str, data: Any, versions: dict[int, TypeAdapter[Any]]) -> list[Any]:
    if not isinstance(data, list):
        raise PlaybookRuleError(f"{part}: expected a list, got {type(data).__name__}")
    return [_parse(f"{part}[{i}]", item, versions) for i, item in enumerate(data)]


def parse_trigger(data: Any) -> Trigger:
    return _parse("trigger", data, _TRIGGERS)


def parse_conditions(data: Any) -> list[Condition]:
    return _parse_list("conditions", data, _CONDITIONS)


def parse_actions(data: Any) -> list[PlaybookAction]:
    actions = _parse_list("actions", data, _ACTIONS)
    if not actions:
        raise PlaybookRuleError("actions: a playbook needs at least one action")
    return actions


class PlaybookRules(BaseModel):
    """The three JSON documents of a playbook, parsed together."""

    trigger: Trigger
    conditions: list[Condition]
    actions: list[PlaybookAction]

    @classmethod
    def parse(cls, trigger: Any, conditions: Any, actions: Any) -> PlaybookRules:
        return cls(
            trigger=parse_trigger(trigger),
            conditions=parse_conditions(conditions),
            actions=parse_actions(actions),
        )

    def to_json(self) -> tuple[dict[str, Any], list[Any], list[Any]]:
        """The documents as stored in the playbook's JSONB columns."""
        return (
            self.trigger.model_dump(mode="json"),
            [c.model_dump(mode="json") for c in self.conditions],
            [a.model_dump(mode="json") for a in self.actions],
        )
