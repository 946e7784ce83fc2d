"""The part of Shopify's search syntax the `orders(query:)` argument needs.

`name:#1001`, `email:ava@example.com`, `financial_status:paid`, `status:cancelled`,
terms joined by spaces or AND (all must hold), OR between groups, `-field:value` to
negate, quotes around values. Like Shopify, an unknown field filters nothing and is
reported as a search warning instead of an error.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.shopify.state import Order


def _name(order: Order, value: str) -> bool:
    return order.name.lower() == (value if value.startswith("#") else f"#{value}").lower()


def _email(order: Order, value: str) -> bool:
    return (order.email or "").lower() == value.lower()


def _customer_id(order: Order, value: str) -> bool:
    return order.customer is not None and str(order.customer.id) == value.rsplit("/", 1)[-1]


def _id(order: Order, value: str) -> bool:
    return str(order.id) == value.rsplit("/", 1)[-1]


def _financial(order: Order, value: str) -> bool:
    return order.financial_status.lower() == value.lower()


def _fulfillment(order: Order, value: str) -> bool:
    status = order.fulfillment_status
    wanted = value.lower()
    if wanted in ("shipped", "fulfilled"):
        return status == "FULFILLED"
    if wanted in ("unshipped", "unfulfilled"):
        return status == "UNFULFILLED"
    if wanted == "partial":
        return status == "PARTIALLY_FULFILLED"
    return status.lower() == wanted


def _status(order: Order, value: str) -> bool:
    wanted = value.lower()
    if wanted == "cancelled":
        return order.cancelled_at is not None
    if wanted == "open":
        return order.cancelled_at is None
    return wanted == "any"


FIELDS: dict[str, Callable[[Order, str], bool]] = {
    "name": _name,
    "email": _email,
    "customer_id": _customer_id,
    "id": _id,
    "financial_status": _financial,
    "fulfillment_status": _fulfillment,
    "status": _status,
}


@dataclass
class Term:
    field: str | None  # None: free text
    value: str
    negated: bool = False

    def holds(self, order: Order) -> bool:
        if self.field is None:
            text = self.value.lower()
            who = order.customer
            haystack = [order.name, order.email or ""]
            if who is not None:
                haystack += [who.first_name, who.last_name]
            result = any(text in item.lower() for item in haystack)
        else:
            result = FIELDS[self.field](order, self.value)
        return result != self.negated


@dataclass
class Parsed:
    groups: list[list[Term]] = field(default_factory=list)  # OR of ANDs
    warnings: list[dict[str, str]] = field(default_factory=list)

    def holds(self, order: Order) -> bool:
        return not self.groups or any(all(t.holds(order) for t in g) for g in self.groups)


def parse(query: str | None) -> Parsed:
    parsed = Parsed()
    if not query or not query.strip():
        return parsed
    try:
        tokens = shlex.split(query)
    except ValueError:  # an unbalanced quote: search for the text as typed
        tokens = query.split()
    group: list[Term] = []
    for token in tokens:
        if token == "OR":
            parsed.groups.append(group)
            group = []
            continue
        if token == "AND":
            continue
        negated = token.startswith("-") and len(token) > 1
        body = token[1:] if negated else token
        key, sep, value = body.partition(":")
        if not sep:
            group.append(Term(None, body, negated))
            continue
        key = key.lower()
        if key not in FIELDS:
            parsed.warnings.append(
                {
                    "field": key,
                    "message": "Invalid search field for this query.",
                    "code": "invalid_field",
                }
            )
            continue
        group.append(Term(key, value, negated))
    parsed.groups.append(group)
    parsed.groups = [g for g in parsed.groups if g] or []
    return parsed


def matches(order: Order, query: str | None) -> bool:
    return parse(query).holds(order)
