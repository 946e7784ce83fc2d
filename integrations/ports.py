"""The ports the activities talk through. A sandbox and the real vendor are interchangeable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from models.enums import ActionType


class IntegrationError(Exception):
    """A vendor refused or failed. `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- Shopify --------------------------------------------------------------------------------


class ShopTarget(BaseModel):
    """Where a store's Admin API is and how to authenticate; from a SHOPIFY Connection."""

    shop_domain: str
    access_token: str
    api_base: str | None = None  # set for sandbox stores; None means https://{shop_domain}


class LineItem(BaseModel):
    id: str
    title: str
    quantity: int
    unit_price: Decimal
    variant_id: str | None = None
    fulfilled: bool = False


class OrderSnapshot(BaseModel):
    id: str  # gid://shopify/Order/<n>
    name: str  # "#1001"
    email: str | None
    currency: str
    total: Decimal
    refundable: Decimal
    financial_status: str
    fulfillment_status: str  # UNFULFILLED, PARTIALLY_FULFILLED, FULFILLED
    cancelled: bool
    shipping_address: dict[str, Any] | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class ActionOutcome(BaseModel):
    """What the store did; `reference` is the vendor's id (refund id, job id, ...)."""

    reference: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class ShopifyPort(Protocol):
    async def get_order(self, shop: ShopTarget, order_id: str) -> OrderSnapshot: ...

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
    ) -> ActionOutcome: ...


# --- mail -----------------------------------------------------------------------------------


class OutboundEmail(BaseModel):
    message_id: str  # "<...>", derived from the Action id
    sender: str
    recipients: list[str]
    raw: bytes  # the complete RFC 5322 message


class MailPort(Protocol):
    async def send(self, email: OutboundEmail) -> None: ...


# --- suggestions ----------------------------------------------------------------------------


class ThreadTurn(BaseModel):
    """An earlier message of the same thread, as context for the suggester."""

    role: Literal["customer", "store"]
    text: str


class SuggestionRequest(BaseModel):
    store_name: str
    customer_email: str
    subject: str
    text: str  # the new message; quoted history in it is split off when `quoted` is empty
    order: OrderSnapshot | None = None
    policy: str = ""  # the store's policy text, from settings
    quoted: str = ""  # the quoted history of this message, already split off by the caller
    history: list[ThreadTurn] = Field(default_factory=list)  # earlier messages, newest first
    # When no order matched for sure: the sender's orders the suggester may pick from.
    candidate_orders: list[OrderSnapshot] = Field(default_factory=list)


class SuggestionDraft(BaseModel):
    intent: str
    action: ActionType
    payload: dict[str, Any] = Field(default_factory=dict)
    reply: str
    confidence: float = Field(ge=0, le=1)
    rationale: str
    provider: str
    order_name: str | None = None  # the order the suggester says it acts on ("#1001")
    prompt_tokens: int = 0
    completion_tokens: int = 0


class SuggesterPort(Protocol):
    async def suggest(self, request: SuggestionRequest) -> SuggestionDraft: ...
