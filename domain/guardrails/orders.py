"""Which order a draft acts on, and whether it is this store's and the sender's. Pure."""

from __future__ import annotations

from domain.guardrails.context import placed_by
from domain.guardrails.model import GuardrailContext
from kernel.values import OrderSnapshot, SuggestionDraft


def named_reference(draft: SuggestionDraft) -> str | None:
    """The order the model says it means, if it names one."""
    reference = (draft.order_name or "").strip()
    return reference or None


def known_orders(context: GuardrailContext) -> list[OrderSnapshot]:
    orders = [context.order] if context.order is not None else []
    orders += [order for order in context.sender_orders if order.id not in {o.id for o in orders}]
    return orders


def _same_name(reference: str, order: OrderSnapshot) -> bool:
    def bare(name: str) -> str:
        return name.strip().lstrip("#").strip().lower()

    return reference == order.id or bare(reference) == bare(order.name)


def acting_order(draft: SuggestionDraft, context: GuardrailContext) -> OrderSnapshot | None:
    reference = named_reference(draft)
    if reference is None:
        return context.order
    return next((o for o in known_orders(context) if _same_name(reference, o)), None)


def in_store(order: OrderSnapshot, context: GuardrailContext) -> bool:
    domain = context.order_domains.get(order.id)
    known = {d.strip().lower() for d in context.shop_domains}
    return domain is None or domain.strip().lower() in known


def is_senders(order: OrderSnapshot, context: GuardrailContext) -> bool:
    return placed_by(order, context.sender_email)


def is_trusted(order: OrderSnapshot, context: GuardrailContext) -> bool:
    return in_store(order, context) and is_senders(order, context)
