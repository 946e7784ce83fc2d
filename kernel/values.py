"""Values that cross layers: an order as the store reports it, a suggestion asked for and
drafted, an email to send. Plain pydantic models, no behaviour."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from kernel.enums import ActionType

# PostgreSQL stores no NUL character, in text or in JSON: a string that reaches it must match
# this (an input that does not is refused, 422, instead of failing in the database).
STORABLE_TEXT = r"^[^\x00]*$"


def holds_nul(value: object) -> bool:
    """Whether a JSON-like value has a NUL anywhere, in a key or a string."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False


# The fields of Shopify's MailingAddressInput that an address change may carry.
MAILING_ADDRESS_FIELDS = (
    "address1",
    "address2",
    "city",
    "company",
    "countryCode",
    "firstName",
    "lastName",
    "phone",
    "provinceCode",
    "zip",
)


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


class OutboundEmail(BaseModel):
    message_id: str  # "<...>", derived from the Action id
    sender: str
    recipients: list[str]
    raw: bytes  # the complete RFC 5322 message


# How much of a message the suggester and the guardrails read: enough for any real request,
# and a ceiling on their work whatever arrives (one 1 MB word, 25 MB of prose). The whole
# message is stored; only the analysis reads this head of it.
ANALYSED_TEXT_CHARS = 20_000
ANALYSED_SUBJECT_CHARS = 1_000


def _head(limit: int) -> Any:
    return BeforeValidator(lambda value: value[:limit] if isinstance(value, str) else value)


class ThreadTurn(BaseModel):
    """An earlier message of the same thread, as context for the suggester."""

    role: Literal["customer", "store"]
    text: Annotated[str, _head(ANALYSED_TEXT_CHARS)]


class SuggestionRequest(BaseModel):
    store_name: str
    customer_email: str
    subject: Annotated[str, _head(ANALYSED_SUBJECT_CHARS)]
    # The new message; quoted history in it is split off when `quoted` is empty.
    text: Annotated[str, _head(ANALYSED_TEXT_CHARS)]
    order: OrderSnapshot | None = None
    policy: str = ""  # the store's policy text, from settings
    # The quoted history of this message, already split off by the caller.
    quoted: Annotated[str, _head(ANALYSED_TEXT_CHARS)] = ""
    history: list[ThreadTurn] = Field(default_factory=list)  # earlier messages, newest first
    # When no order matched for sure: the sender's orders the suggester may pick from.
    candidate_orders: list[OrderSnapshot] = Field(default_factory=list)


Sentiment = Literal["positive", "neutral", "negative", "angry"]


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
    # What the message signals, for the playbooks; the defaults are what nothing was read.
    language: str = ""  # ISO 639-1, "" when unknown
    sentiment: Sentiment = "neutral"
    wants_human: bool = False  # the customer asks for a person
    legal_threat: bool = False  # a lawyer, a lawsuit, a chargeback
