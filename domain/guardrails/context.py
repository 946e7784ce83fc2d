"""Building what the guardrails may trust from a suggestion request and our records. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.guardrails.model import GuardrailContext
from kernel.values import OrderSnapshot, SuggestionRequest


def placed_by(order: OrderSnapshot, sender: str) -> bool:
    """Whether the order was placed with this address: the only proof it is the sender's
    (an order without an email cannot be shown to be anybody's)."""
    sender = sender.strip().lower()
    return bool(sender) and (order.email or "").strip().lower() == sender


def context_for(
    request: SuggestionRequest,
    *,
    sender_orders: Iterable[OrderSnapshot],
    store_domains: Iterable[str] = (),
    order_domains: Mapping[str, str] | None = None,
    hidden_text: str = "",
) -> GuardrailContext:
    """`sender_orders` must hold only orders placed with the sender's address (see
    `placed_by`): a draft may act on those and on nothing else. `store_domains` are the
    store's own domains, whose addresses a customer may quote without it being suspect."""
    # Everything the model reads from the customer is checked for injections, the quoted
    # history included: it is in the prompt too.
    customer_text = "\n".join(p for p in (request.subject, request.text, request.quoted) if p)
    return GuardrailContext(
        sender_email=request.customer_email,
        store_name=request.store_name,
        shop_domains=frozenset(domain.strip().lower() for domain in store_domains),
        order=request.order,
        sender_orders=list(sender_orders),
        order_domains=dict(order_domains or {}),
        customer_text=customer_text,
        request_text="\n".join(p for p in (request.subject, request.text) if p),
        hidden_text=hidden_text,
    )
