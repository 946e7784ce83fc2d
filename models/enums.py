"""The seed's enums as PostgreSQL enum types; the Python enums are `kernel.enums`."""

from __future__ import annotations

import enum

from sqlalchemy import Enum

from kernel.enums import (
    ActionStatus,
    ActionType,
    ConnectionType,
    MessageDirection,
    PlanType,
    PlaybookCategory,
    PlaybookExecutionStatus,
    SubscriptionStatus,
)


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
