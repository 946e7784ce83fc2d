"""The seed's enums, value for value. Stored as PostgreSQL enum types."""

from __future__ import annotations

import enum

from sqlalchemy import Enum


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


def pg_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A PostgreSQL enum whose labels are the Python values, in declaration order."""
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


PLAN_TYPE = pg_enum(PlanType, "plan_type")
SUBSCRIPTION_STATUS = pg_enum(SubscriptionStatus, "subscription_status")
CONNECTION_TYPE = pg_enum(ConnectionType, "connection_type")
MESSAGE_DIRECTION = pg_enum(MessageDirection, "message_direction")
ACTION_TYPE = pg_enum(ActionType, "action_type")
ACTION_STATUS = pg_enum(ActionStatus, "action_status")
PLAYBOOK_CATEGORY = pg_enum(PlaybookCategory, "playbook_category")
PLAYBOOK_EXECUTION_STATUS = pg_enum(PlaybookExecutionStatus, "playbook_execution_status")
