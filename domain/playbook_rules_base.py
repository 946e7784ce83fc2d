"""What every version of the playbook rule documents shares: the error, the base model, the
intents, and the checks of a condition's value against the kind of fact it tests."""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Decimal
from enum import StrEnum
from string import Formatter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool

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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Operator = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "not_contains"]
# Strict: a 1 or a "yes" is not a boolean (pydantic would read either as true).
Scalar = StrictBool | Decimal | str
MANY_OPERATORS = frozenset({"in", "not_in"})
TAG_MAX_LENGTH = 40


def coerce_condition_value(data: Any, fields: Mapping[str, str]) -> Any:
    """A number compared with a number fact is read as a Decimal, whatever JSON carried it."""
    if not isinstance(data, dict):
        return data
    field = data.get("field")
    # Anything but a known name (a list, an object) is for the model to refuse, not to look up.
    if not isinstance(field, str) or fields.get(field) != "number":
        return data
    value = data.get("value")
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except (ArithmeticError, ValueError):  # ValueError: an int too long to print
            return data
        # NaN and infinities stay as given, for the kind check to refuse with its message.
        return {**data, "value": number} if number.is_finite() else data
    return data


def check_condition(
    field: str,
    operator: str,
    value: Any,
    fields: Mapping[str, str],
    operators_by_kind: Mapping[str, Set[str]],
) -> None:
    """Raise ValueError (pydantic reports it) unless the operator and value suit the field."""
    kind = fields.get(field)
    if kind is None:
        raise ValueError(f"unknown field {field!r}; known: {sorted(fields)}")
    if operator not in operators_by_kind[kind]:
        raise ValueError(f"operator {operator!r} does not apply to {field!r}")
    many = operator in MANY_OPERATORS
    if many != isinstance(value, list):
        raise ValueError(f"{operator!r} takes {'a list' if many else 'a single value'}")
    for item in value if isinstance(value, list) else [value]:
        if not _is_kind(kind, item):
            raise ValueError(
                f"{field!r} compares with a {kind.replace('_', ' ')} value, not {item!r}"
            )


def _is_kind(kind: str, value: Any) -> bool:
    if kind == "number":
        # NaN and infinities cannot be ordered: a rule comparing with them means nothing.
        return isinstance(value, Decimal) and value.is_finite()
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "text":
        return isinstance(value, str)
    if kind == "tags":
        return isinstance(value, str) and 1 <= len(value) <= TAG_MAX_LENGTH
    if kind == "action_type":
        return isinstance(value, str) and value in ActionType.__members__
    raise AssertionError(f"no check for the kind {kind!r}")


def template_placeholders(template: str) -> list[tuple[str, str | None, str | None]]:
    """(name, conversion, format spec) of each {placeholder}; ValueError if malformed."""
    try:
        return [
            (name, conversion, spec)
            for _, name, spec, conversion in Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        raise ValueError(f"template is not well-formed: {exc}") from exc


def check_placeholders(names: Set[str], allowed: Set[str]) -> None:
    unknown = set(names) - set(allowed)
    if unknown:
        raise ValueError(f"unknown placeholders {sorted(unknown)}; allowed: {sorted(allowed)}")
