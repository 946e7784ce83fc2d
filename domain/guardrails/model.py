"""What the guardrails read and what they return. Values only."""

from __future__ import annotations

import enum
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from kernel.values import OrderSnapshot, SuggestionDraft

# Confidence ceiling once any guardrail fires: low enough that no sensible playbook
# threshold auto-approves it. A ceiling rather than a factor keeps the guardrails
# idempotent (capping twice is capping once; multiplying twice is not).
FIRED_CONFIDENCE_CAP = 0.3


class Code(enum.StrEnum):
    """Stable note codes: the UI, the events and the evaluation count them."""

    ORDER_UNKNOWN = "ORDER_UNKNOWN"
    ORDER_NOT_IN_STORE = "ORDER_NOT_IN_STORE"
    ORDER_NOT_SENDERS = "ORDER_NOT_SENDERS"
    PAYLOAD_INVALID = "PAYLOAD_INVALID"
    REFUND_INVALID_AMOUNT = "REFUND_INVALID_AMOUNT"
    REFUND_EXCEEDS_REFUNDABLE = "REFUND_EXCEEDS_REFUNDABLE"
    REFUND_ABOVE_POLICY = "REFUND_ABOVE_POLICY"
    LINE_ITEM_UNKNOWN = "LINE_ITEM_UNKNOWN"
    QUANTITY_EXCEEDS = "QUANTITY_EXCEEDS"
    CANCEL_NOT_ALLOWED = "CANCEL_NOT_ALLOWED"
    ADDRESS_AFTER_FULFILMENT = "ADDRESS_AFTER_FULFILMENT"
    ADDRESS_INVALID = "ADDRESS_INVALID"
    REPLACE_NOT_ALLOWED = "REPLACE_NOT_ALLOWED"
    PROMPT_INJECTION = "PROMPT_INJECTION"
    REPLY_PROMISES_OTHER = "REPLY_PROMISES_OTHER"
    CONFIDENCE_OUT_OF_RANGE = "CONFIDENCE_OUT_OF_RANGE"


class GuardrailContext(BaseModel):
    """Everything the guardrails may trust; none of it comes from the model.

    `order` is the order the pipeline matched; `sender_orders` are the sender's own
    orders in this store, so an order the model names can be checked. `order_domains`
    maps an order id to the shop domain it was read from, where the caller knows it;
    an order without an entry is taken as read from this store.
    """

    model_config = ConfigDict(frozen=True)

    sender_email: str
    store_name: str = "our store"
    shop_domains: frozenset[str] = frozenset()
    order: OrderSnapshot | None = None
    sender_orders: list[OrderSnapshot] = Field(default_factory=list)
    order_domains: dict[str, str] = Field(default_factory=dict)
    customer_text: str = ""
    # The subject and the new text alone, without the quoted history: what was asked now.
    request_text: str = ""
    hidden_text: str = ""  # what the email's HTML hides from its reader (comments, hidden text)
    max_auto_refund: Decimal | None = None  # above it a person decides, whatever the confidence


class GuardrailNote(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    detail: str


class GuardedSuggestion(BaseModel):
    """The draft to store, the order it acts on (None: no order), and why it changed.

    `original` keeps the model's proposal so a person can see what was held back;
    `uncalibrated_confidence` is the draft's confidence before calibration (None: not
    calibrated yet)."""

    draft: SuggestionDraft
    order: OrderSnapshot | None
    notes: list[GuardrailNote] = Field(default_factory=list)
    original: SuggestionDraft
    uncalibrated_confidence: float | None = None
