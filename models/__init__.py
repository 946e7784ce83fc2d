"""The data model of the seed (one module per aggregate), its queries and helpers."""

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
from models.action import Action
from models.api_token import ApiToken, issue_api_token, user_for_token
from models.automation import AutomationSettings
from models.base import Base
from models.billing import EmailReservation, Subscription, UsageRecord
from models.billing_event import BillingEvent
from models.connection import Connection, CustomEmailMetadata
from models.conversation import Message, Thread
from models.event import Event, log_event
from models.oauth_state import OAuthState
from models.order import Order
from models.playbook import Playbook, PlaybookExecution
from models.shopify import ComplianceExport, ShopifyWebhook
from models.suggestion import AISuggestion
from models.user import User

__all__ = [
    "AISuggestion",
    "Action",
    "ActionStatus",
    "ActionType",
    "ApiToken",
    "AutomationSettings",
    "Base",
    "BillingEvent",
    "ComplianceExport",
    "Connection",
    "ConnectionType",
    "CustomEmailMetadata",
    "EmailReservation",
    "Event",
    "Message",
    "MessageDirection",
    "OAuthState",
    "Order",
    "PlanType",
    "Playbook",
    "PlaybookCategory",
    "PlaybookExecution",
    "PlaybookExecutionStatus",
    "ShopifyWebhook",
    "Subscription",
    "SubscriptionStatus",
    "Thread",
    "UsageRecord",
    "User",
    "issue_api_token",
    "log_event",
    "user_for_token",
]
