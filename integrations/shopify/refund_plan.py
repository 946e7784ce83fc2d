"""Planning a refund's transactions from Shopify's suggestion. Pure.

Shopify's `suggestedRefund` names the gateways and parent transactions to refund
against; we refund the amount the merchant approved, never more than the
suggestion's maximum, spread over the suggested transactions in order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kernel.errors import Invalid


class RefundPlanError(Invalid, ValueError):
    """The refund cannot be made as asked; the message says why."""


def _amount(money_bag: dict[str, Any] | None) -> Decimal:
    return Decimal(str(((money_bag or {}).get("shopMoney") or {}).get("amount") or "0"))


def plan_transactions(
    order_id: str, suggestion: dict[str, Any], amount: Decimal | None
) -> list[dict[str, Any]]:
    """RefundInput.transactions for `amount` (None: what the suggestion proposes)."""
    maximum = _amount(suggestion.get("maximumRefundableSet"))
    wanted = _amount(suggestion.get("amountSet")) if amount is None else amount
    if wanted <= 0:
        raise RefundPlanError("the refund amount must be positive")
    if wanted > maximum:
        raise RefundPlanError(f"refund of {wanted} exceeds the refundable {maximum}")
    transactions = []
    left = wanted
    for suggested in suggestion.get("suggestedTransactions") or []:
        if left <= 0:
            break
        share = min(left, _amount(suggested.get("amountSet")))
        if share <= 0:
            continue
        parent = (suggested.get("parentTransaction") or {}).get("id")
        transactions.append(
            {
                "orderId": order_id,
                "parentId": parent,
                "amount": str(share),
                "gateway": suggested.get("gateway") or "manual",
                "kind": "REFUND",
            }
        )
        left -= share
    if left > 0:
        raise RefundPlanError(
            f"the order's payments cover only {wanted - left} of the {wanted} to refund"
        )
    return transactions
