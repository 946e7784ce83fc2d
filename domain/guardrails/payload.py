"""Whether a payload is one the Shopify client can execute on this order, within its limits.

The shapes follow what `integrations/shopify/admin.py` reads for each action; the order
state rules are `domain/order_rules.py`, which execution re-runs before acting.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.guardrails.model import Code
from domain.order_rules import why_not_allowed
from kernel.enums import REPLY_ONLY, ActionType
from kernel.values import MAILING_ADDRESS_FIELDS, OrderSnapshot


class Remedy(enum.IntEnum):
    """What a finding does to the draft; the strongest finding wins."""

    CAP = 0  # keep the draft, lower the confidence so a person decides
    REWRITE_REPLY = 1  # keep the action, replace a reply that promises something else
    DROP_PAYLOAD = 2  # a reply-only draft carrying a payload: drop it
    ASK_ADDRESS = 3  # INFO_REQUEST for a complete address
    HOLD = 4  # NONE: leave it to a person
    ASK_ORDER = 5  # INFO_REQUEST for the order number


@dataclass(frozen=True)
class Finding:
    code: Code
    detail: str
    remedy: Remedy


_ADDRESS_FIELDS = frozenset(MAILING_ADDRESS_FIELDS)
_CANCEL_REASONS = frozenset({"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"})
# The keys each action's payload may hold: what `integrations/shopify/admin.py` reads.
PAYLOAD_KEYS: dict[ActionType, frozenset[str]] = {
    ActionType.REFUND: frozenset({"amount", "line_items", "note"}),
    ActionType.CANCEL: frozenset({"reason", "note"}),
    ActionType.ADDRESS_CHANGE: frozenset({"address", "note"}),
    ActionType.REPLACE_ITEM: frozenset({"line_item_id", "variant_id", "quantity", "note"}),
    ActionType.INFO_REQUEST: frozenset({"note"}),
    ActionType.NONE: frozenset({"note"}),
}
_MAX_TEXT = 500
_MAX_QUANTITY = 10_000
_AMOUNT_TEXT = re.compile(r"\d{1,12}(?:\.\d{1,2})?")
_VARIANT_ID = re.compile(r"gid://shopify/ProductVariant/\d+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_amount(raw: Any) -> Decimal | None:
    """A refund amount as money: positive, finite, at most two decimals; None if it is not."""
    if isinstance(raw, bool):  # bool is an int to Python, never an amount to us
        return None
    if isinstance(raw, float):
        if not math.isfinite(raw):
            return None
        raw = repr(raw)
    if isinstance(raw, int | Decimal):
        raw = str(raw)
    if not isinstance(raw, str) or not _AMOUNT_TEXT.fullmatch(raw.strip()):
        return None
    amount = Decimal(raw.strip())
    return amount if amount > 0 else None


def _brief(value: Any) -> str:
    """A model-supplied value as it goes into a note: recognisable, never long."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_QUANTITY


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _MAX_TEXT


def payload_shape(action: ActionType, payload: Mapping[str, Any]) -> Finding | None:
    """Keys and types only; values that need the order are checked against it afterwards."""
    unknown = sorted(str(key)[:40] for key in payload if key not in PAYLOAD_KEYS[action])
    if unknown:
        remedy = Remedy.DROP_PAYLOAD if action in REPLY_ONLY else Remedy.HOLD
        return Finding(Code.PAYLOAD_INVALID, f"{action} payload has keys {unknown}", remedy)
    problems = []
    if payload.get("note") is not None and not _short_text(payload["note"]):
        problems.append("note is not a short text")
    if action is ActionType.CANCEL and payload.get("reason", "CUSTOMER") not in _CANCEL_REASONS:
        problems.append(f"cancel reason {_brief(payload.get('reason'))} is not one Shopify accepts")
    if action is ActionType.REFUND and payload.get("line_items") is not None:
        lines = payload["line_items"]
        if not isinstance(lines, list) or not all(
            isinstance(line, dict)
            and set(line) <= {"line_item_id", "quantity"}
            and isinstance(line.get("line_item_id"), str)
            and _is_count(line.get("quantity", 1))
            for line in lines
        ):
            problems.append("line_items must be a list of {line_item_id, quantity}")
    if action is ActionType.REPLACE_ITEM:
        if not isinstance(payload.get("line_item_id"), str):
            problems.append("line_item_id is missing")
        if not _is_count(payload.get("quantity", 1)):
            problems.append(f"quantity {_brief(payload.get('quantity'))} is not a sensible count")
        variant = payload.get("variant_id")
        if variant is not None and not (
            isinstance(variant, str) and _VARIANT_ID.fullmatch(variant)
        ):
            problems.append(f"variant_id {_brief(variant)} is not a Shopify variant id")
    if problems:
        return Finding(Code.PAYLOAD_INVALID, "; ".join(problems), Remedy.HOLD)
    return None


def address_problem(address: Any) -> str | None:
    """None for an address Shopify's orderUpdate can take whole; else what is wrong."""
    if not isinstance(address, dict):
        return "no new address given"
    if set(address) - _ADDRESS_FIELDS:
        return f"unexpected address fields {sorted(str(k)[:40] for k in set(address) - _ADDRESS_FIELDS)}"
    if not all(
        isinstance(v, str) and len(v) <= 255 and not _CONTROL.search(v) for v in address.values()
    ):
        return "address fields must be single-line texts"
    missing = [
        field
        for field in ("address1", "city", "countryCode")
        if not str(address.get(field) or "").strip()
    ]
    if missing:
        return f"the address lacks {missing}"
    if not re.fullmatch(r"[A-Za-z]{2}", address["countryCode"].strip()):
        return f"country code {_brief(address['countryCode'])} is not two letters"
    return None


def order_limits(
    action: ActionType, payload: Mapping[str, Any], order: OrderSnapshot
) -> list[Finding]:
    """Limits a well-shaped payload must respect on this order."""
    findings = []
    if action is ActionType.REFUND:
        if payload.get("amount") is not None and parse_amount(payload["amount"]) is None:
            return [
                Finding(
                    Code.REFUND_INVALID_AMOUNT,
                    f"refund amount {_brief(payload['amount'])} is not a positive sum of money",
                    Remedy.HOLD,
                )
            ]
        findings.extend(_line_findings(payload.get("line_items") or [], order))
    elif action is ActionType.ADDRESS_CHANGE and _before_fulfilment(order):
        if problem := address_problem(payload.get("address")):
            findings.append(Finding(Code.ADDRESS_INVALID, problem, Remedy.ASK_ADDRESS))
    elif action is ActionType.REPLACE_ITEM:
        findings.extend(_replacement_findings(payload, order))
    if findings:
        return findings
    # The amount is well-formed by now, so the execution-time rules cannot trip on it.
    if action not in REPLY_ONLY and (reason := why_not_allowed(action, dict(payload), order)):
        findings.append(Finding(_STATE_CODE[action], reason, Remedy.HOLD))
    return findings


def _before_fulfilment(order: OrderSnapshot) -> bool:
    # Only then is an incomplete address worth asking about; otherwise the change is refused.
    return not order.cancelled and order.fulfillment_status == "UNFULFILLED"


_STATE_CODE = {
    ActionType.REFUND: Code.REFUND_EXCEEDS_REFUNDABLE,
    ActionType.CANCEL: Code.CANCEL_NOT_ALLOWED,
    ActionType.ADDRESS_CHANGE: Code.ADDRESS_AFTER_FULFILMENT,
    ActionType.REPLACE_ITEM: Code.REPLACE_NOT_ALLOWED,
}


def _line_findings(lines: list[dict[str, Any]], order: OrderSnapshot) -> list[Finding]:
    available = {item.id: item.quantity for item in order.line_items}
    wanted: dict[str, int] = {}
    for line in lines:
        line_id = line["line_item_id"]
        wanted[line_id] = wanted.get(line_id, 0) + line.get("quantity", 1)
    findings = []
    for line_id, quantity in wanted.items():
        if line_id not in available:
            detail = f"line item {line_id} is not on order {order.name}"
            findings.append(Finding(Code.LINE_ITEM_UNKNOWN, detail, Remedy.HOLD))
        elif quantity > available[line_id]:
            # LineItem.quantity is Shopify's currentQuantity: already net of refunds.
            detail = f"{quantity} of line item {line_id} asked, {available[line_id]} left"
            findings.append(Finding(Code.QUANTITY_EXCEEDS, detail, Remedy.HOLD))
    return findings


def _replacement_findings(payload: Mapping[str, Any], order: OrderSnapshot) -> list[Finding]:
    line = next((item for item in order.line_items if item.id == payload["line_item_id"]), None)
    if line is None:
        detail = f"line item {payload['line_item_id']} is not on order {order.name}"
        return [Finding(Code.LINE_ITEM_UNKNOWN, detail, Remedy.HOLD)]
    quantity = payload.get("quantity", 1)
    if quantity > line.quantity:
        detail = f"{quantity} of line item {line.id} to replace, {line.quantity} on the order"
        return [Finding(Code.QUANTITY_EXCEEDS, detail, Remedy.HOLD)]
    if not (payload.get("variant_id") or line.variant_id):
        detail = f"no variant to send in place of line item {line.id}"
        return [Finding(Code.REPLACE_NOT_ALLOWED, detail, Remedy.HOLD)]
    return []
