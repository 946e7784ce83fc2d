"""The ports the activities talk through. A sandbox and the real vendor are interchangeable;
the values they exchange are `kernel.values`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kernel.enums import ActionType
from kernel.values import (
    ActionOutcome,
    OrderSnapshot,
    OutboundEmail,
    ShopTarget,
    SuggestionDraft,
    SuggestionRequest,
)

# --- Shopify --------------------------------------------------------------------------------


class ShopifyPort(Protocol):
    async def get_order(
        self, shop: ShopTarget, order_id: str, *, line_items: bool = True
    ) -> OrderSnapshot:
        """The order as the store has it now; without `line_items`, its state only (its
        snapshot's line_items is then empty), which costs a fraction of the points."""
        ...

    async def list_orders(self, shop: ShopTarget) -> list[OrderSnapshot]: ...

    async def prepare(
        self, shop: ShopTarget, order_id: str, action: ActionType, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Turn an approved payload into the exact request `perform` will send.

        The caller stores it before performing: a retry must send the same request
        under the same idempotency key (Shopify refuses a key reused with other input),
        and must not re-derive it from an order the first attempt already changed."""
        ...

    async def perform(
        self,
        shop: ShopTarget,
        order_id: str,
        action: ActionType,
        prepared: dict[str, Any],
        idempotency_key: str,
        progress: Callable[[], None] | None = None,
    ) -> ActionOutcome:
        """Send the prepared request once: a retry under the same key must not act twice.

        `progress` is called now and then while the store keeps the action waiting (a
        job, a rate limit), so the caller can tell a long wait from a dead worker."""
        ...


# --- mail -----------------------------------------------------------------------------------


class MailPort(Protocol):
    async def send(self, email: OutboundEmail) -> None: ...


# --- suggestions ----------------------------------------------------------------------------


class SuggesterPort(Protocol):
    async def suggest(self, request: SuggestionRequest) -> SuggestionDraft: ...
