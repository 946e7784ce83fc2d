"""The seed's enums, value for value (`models.enums` maps them to PostgreSQL enum types)."""

from __future__ import annotations

import enum


class PlanType(enum.StrEnum):
    STARTER = "STARTER"
    GROWTH = "GROWTH"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"
    TRIAL = "TRIAL"


class SubscriptionStatus(enum.StrEnum):
    active = "active"
    cancelled = "cancelled"
    expired = "expired"
    past_due = "past_due"


class ConnectionType(enum.StrEnum):
    SHOPIFY = "SHOPIFY"
    GMAIL = "GMAIL"
    CUSTOM_EMAIL = "CUSTOM_EMAIL"


class MessageDirection(enum.StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class ActionType(enum.StrEnum):
    REFUND = "REFUND"
    CANCEL = "CANCEL"
    REPLACE_ITEM = "REPLACE_ITEM"
    ADDRESS_CHANGE = "ADDRESS_CHANGE"
    INFO_REQUEST = "INFO_REQUEST"
    NONE = "NONE"


# Actions that change nothing in the store: approving one only sends the reply.
REPLY_ONLY = frozenset({ActionType.NONE, ActionType.INFO_REQUEST})


class ActionStatus(enum.StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXECUTED = "EXECUTED"
    # Not in the seed: an approved action that Shopify refused must look neither
    # pending nor executed (see the initial migration).
    FAILED = "FAILED"


class PlaybookCategory(enum.StrEnum):
    REFUND_RETURN = "REFUND_RETURN"
    MARKETING = "MARKETING"
    FULFILLMENT = "FULFILLMENT"
    SUPPORT = "SUPPORT"
    INVENTORY = "INVENTORY"
    CUSTOM = "CUSTOM"


class PlaybookExecutionStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    executed = "executed"
    rejected = "rejected"
    failed = "failed"
