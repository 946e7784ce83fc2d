"""Whether a person's decision can be carried out as edited. Pure.

Checked when the decision is made (by the API, the workflow's update validator and the
step that records it), so a decision that cannot run is refused while the action is
still PENDING and can be corrected, instead of failing later in the store. Execution
checks the order again, as Shopify reports it then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.guardrails.engine import reply_problem
from domain.guardrails.model import Code
from domain.guardrails.payload import PAYLOAD_KEYS, order_limits, parse_amount, payload_shape
from kernel.enums import ActionType
from kernel.values import OrderSnapshot, holds_nul

REPLY_MAX_CHARS = 20_000
# Which part of the decision an order check points at; the rest is about the order itself.
_FIELD_OF = {
    Code.REFUND_INVALID_AMOUNT: "payload.amount",
    Code.REFUND_EXCEEDS_REFUNDABLE: "payload.amount",
    Code.LINE_ITEM_UNKNOWN: "payload.line_items",
    Code.QUANTITY_EXCEEDS: "payload.quantity",
    Code.ADDRESS_INVALID: "payload.address",
}


@dataclass(frozen=True)
class Problem:
    field: str  # "reply", "payload", "payload.amount", ...
    reason: str


def edit_problems(
    action: ActionType, reply: str | None, payload: Mapping[str, Any] | None
) -> list[Problem]:
    """What is wrong with the edit on its own, without the order: an empty reply, a key the
    action does not have, an amount that is not money. None means "keep the suggestion's"."""
    problems = []
    # PostgreSQL stores no NUL character, in text or JSON: refused here, not failed there.
    if reply is not None and "\x00" in reply:
        problems.append(Problem("reply", "the reply contains a NUL character"))
    if payload is not None and holds_nul(payload):
        problems.append(Problem("payload", "the payload contains a NUL character"))
    if problems:
        return problems
    if reply is not None:
        if not reply.strip():
            problems.append(Problem("reply", "the reply is empty"))
        elif len(reply) > REPLY_MAX_CHARS:
            problems.append(Problem("reply", f"the reply is over {REPLY_MAX_CHARS} characters"))
    if payload is not None:
        allowed = PAYLOAD_KEYS[action]
        for key in payload:
            if key not in allowed:
                problems.append(
                    Problem(
                        f"payload.{str(key)[:40]}",
                        f"a {action} payload has no such key (it may hold {sorted(allowed)})",
                    )
                )
        amount = payload.get("amount")
        if action is ActionType.REFUND and amount is not None and parse_amount(amount) is None:
            problems.append(
                Problem(
                    "payload.amount",
                    f"{str(amount)[:40]!r} is not a positive amount of money "
                    "with at most two decimals",
                )
            )
    return problems


def decision_problems(
    action: ActionType, reply: str, payload: Mapping[str, Any], order: OrderSnapshot | None
) -> list[Problem]:
    """The decision as it would run (the suggestion with the edit applied) against the order
    as last read. `order` None skips what needs it; execution re-checks the live order."""
    problems = edit_problems(action, reply, payload)
    if problems:
        return problems
    if (shape := payload_shape(action, payload)) is not None:
        return [Problem("payload", shape.detail)]
    if order is None:
        return []
    problems = [
        Problem(_field(finding.code, action), finding.detail)
        for finding in order_limits(action, payload, order)
    ]
    if problems:
        return problems
    # The customer reads the reply: it may not promise what the edited action no longer does.
    if (mismatch := reply_problem(reply, action, dict(payload), order)) is not None:
        return [Problem("reply", mismatch)]
    return []


def _field(code: Code, action: ActionType) -> str:
    field = _FIELD_OF.get(code, "order")
    if action is ActionType.REFUND and field == "payload.quantity":
        return "payload.line_items"
    if action is ActionType.REPLACE_ITEM and field == "payload.line_items":
        return "payload.line_item_id"
    return field


def edited_keys(before: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """The keys a decision really changed: the inbox sends the draft's reply back with every
    approval, edited or not, and a textarea sends it with CRLF line endings."""

    def changed(key: str, value: Any) -> bool:
        old = before.get(key)
        if key == "reply" and isinstance(value, str) and isinstance(old, str):
            return old.replace("\r\n", "\n").strip() != value.replace("\r\n", "\n").strip()
        return bool(old != value)

    return sorted(key for key, value in changes.items() if changed(key, value))
