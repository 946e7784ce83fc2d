"""The data model of the seed (one module per aggregate) and its helpers."""

from models.action import Action
from models.api_token import ApiToken, issue_api_token, user_for_token
from models.base import Base
from models.billing import Subscription, UsageRecord
from models.connection import Connection, CustomEmailMetadata
from models.conversation import Message, Thread
from models.default_playbooks import DEFAULT_PLAYBOOKS, seed_default_playbooks
from models.enums import (
    ActionStatus,
    ActionType,
    ConnectionType,
    MessageDirection,
    PlanType,
    PlaybookCategory,
    PlaybookExecutionStatus,
    SubscriptionStatus,
)
from models.event import Event, log_event
from models.oauth_state import OAuthState
from models.order import Order
from models.plan_limits import PLAN_LIMITS, PlanLimits
from models.playbook import Playbook, PlaybookExecution
from models.shopify import ComplianceExport, ShopifyWebhook
from models.suggestion import AISuggestion
from models.usage import (
    can_send_email,
    ensure_subscription,
    get_usage_history,
    get_usage_summary,
    increment_ai_suggestions,
    increment_email_received,
    increment_email_sent,
)
from models.user import User

__all__ = [
    "DEFAULT_PLAYBOOKS",
    "PLAN_LIMITS",
    "AISuggestion",
    "Action",
    "ActionStatus",
    "ActionType",
    "ApiToken",
    "Base",
    "ComplianceExport",
    "Connection",
    "ConnectionType",
    "CustomEmailMetadata",
    "Event",
    "Message",
    "MessageDirection",
    "OAuthState",
    "Order",
    "PlanLimits",
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
    "can_send_email",
    "ensure_subscription",
    "get_usage_history",
    "get_usage_summary",
    "increment_ai_suggestions",
    "increment_email_received",
    "increment_email_sent",
    "issue_api_token",
    "log_event",
    "seed_default_playbooks",
    "user_for_token",
]
