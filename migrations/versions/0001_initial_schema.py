"""Initial schema: every entity of the seed.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Enum values are the seed's, with one addition: action_status has FAILED. The
seed's PENDING -> APPROVED -> EXECUTED leaves nowhere for an approved action
that Shopify refuses (a userErrors answer, an order that changed meanwhile);
recording it as EXECUTED would lie and leaving it APPROVED would look like
work still to do, so it ends FAILED with the vendor's message in `error`.

Beyond the seed's fields: `orders.currency` (money is stored with its
currency), `messages.user_id` (the unique Message-ID is per merchant, and a
composite foreign key keeps a message in a thread of the same merchant), and
`playbooks.template_key` (which default template a playbook came from, so
seeding is idempotent).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUMS = {
    "connection_type": postgresql.ENUM(
        "SHOPIFY", "GMAIL", "CUSTOM_EMAIL", name="connection_type", create_type=False
    ),
    "playbook_category": postgresql.ENUM(
        "REFUND_RETURN",
        "MARKETING",
        "FULFILLMENT",
        "SUPPORT",
        "INVENTORY",
        "CUSTOM",
        name="playbook_category",
        create_type=False,
    ),
    "plan_type": postgresql.ENUM(
        "STARTER", "GROWTH", "PRO", "ENTERPRISE", "TRIAL", name="plan_type", create_type=False
    ),
    "subscription_status": postgresql.ENUM(
        "active", "cancelled", "expired", "past_due", name="subscription_status", create_type=False
    ),
    "playbook_execution_status": postgresql.ENUM(
        "pending",
        "approved",
        "executed",
        "rejected",
        "failed",
        name="playbook_execution_status",
        create_type=False,
    ),
    "message_direction": postgresql.ENUM(
        "INBOUND", "OUTBOUND", name="message_direction", create_type=False
    ),
    "action_type": postgresql.ENUM(
        "REFUND",
        "CANCEL",
        "REPLACE_ITEM",
        "ADDRESS_CHANGE",
        "INFO_REQUEST",
        "NONE",
        name="action_type",
        create_type=False,
    ),
    "action_status": postgresql.ENUM(
        "PENDING",
        "APPROVED",
        "REJECTED",
        "EXECUTED",
        "FAILED",
        name="action_status",
        create_type=False,
    ),
}


def upgrade() -> None:
    for enum in ENUMS.values():
        enum.create(op.get_bind())
    op.create_table(
        "users",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(
        "uq_users_email_lower", "users", [sa.literal_column("lower(email)")], unique=True
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("type", ENUMS["connection_type"], nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("shop_domain", sa.String(length=255), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_connections_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    op.create_index("ix_connections_user_id_type", "connections", ["user_id", "type"], unique=False)
    op.create_index(
        "uq_connections_custom_email_alias",
        "connections",
        [sa.literal_column("lower(metadata ->> 'alias')")],
        unique=True,
        postgresql_where=sa.text("type = 'CUSTOM_EMAIL'"),
    )
    op.create_index(
        "uq_connections_shopify_shop_domain",
        "connections",
        ["shop_domain"],
        unique=True,
        postgresql_where=sa.text("type = 'SHOPIFY'"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=True),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("entity", sa.String(length=50), nullable=True),
        sa.Column("entity_id", sa.String(length=255), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_entity_entity_id", "events", ["entity", "entity_id"], unique=False)
    op.create_index(
        "ix_events_user_id_created_at", "events", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "playbooks",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", ENUMS["playbook_category"], nullable=False),
        sa.Column("trigger", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "conditions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "actions", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("confidence_threshold", sa.Double(), server_default="0.9", nullable=False),
        sa.Column("requires_approval", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("template_key", sa.String(length=64), nullable=True),
        sa.Column("execution_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "confidence_threshold BETWEEN 0 AND 1", name=op.f("ck_playbooks_threshold_range")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_playbooks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbooks")),
        sa.UniqueConstraint(
            "user_id", "template_key", name=op.f("uq_playbooks_user_id_template_key")
        ),
    )
    op.create_index(op.f("ix_playbooks_user_id"), "playbooks", ["user_id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("plan_type", ENUMS["plan_type"], nullable=False),
        sa.Column("status", ENUMS["subscription_status"], nullable=False),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_gateway", sa.String(length=32), nullable=True),
        sa.Column("gateway_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("gateway_customer_id", sa.String(length=255), nullable=True),
        sa.Column("gateway_plan_id", sa.String(length=255), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "current_period_end > current_period_start", name=op.f("ck_subscriptions_period_order")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("user_id", name=op.f("uq_subscriptions_user_id")),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("customer_email", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_threads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
        sa.UniqueConstraint("id", "user_id", name=op.f("uq_threads_id_user_id")),
    )
    op.create_index(
        "ix_threads_user_id_customer_email", "threads", ["user_id", "customer_email"], unique=False
    )
    op.create_index(
        "ix_threads_user_id_last_message_at",
        "threads",
        ["user_id", "last_message_at"],
        unique=False,
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        sa.Column("shopify_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("total_amount", sa.Numeric(precision=19, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("financial_status", sa.String(length=32), nullable=True),
        sa.Column("fulfillment_status", sa.String(length=32), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_orders_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "shop_domain", "shopify_id", name=op.f("uq_orders_shop_domain_shopify_id")
        ),
    )
    op.create_index(
        "ix_orders_connection_id_email", "orders", ["connection_id", "email"], unique=False
    )
    op.create_index(
        "ix_orders_connection_id_name", "orders", ["connection_id", "name"], unique=False
    )
    op.create_table(
        "playbook_executions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("playbook_id", sa.UUID(), nullable=False),
        sa.Column(
            "status", ENUMS["playbook_execution_status"], server_default="pending", nullable=False
        ),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column(
            "trigger_data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "confidence IS NULL OR confidence BETWEEN 0 AND 1",
            name=op.f("ck_playbook_executions_confidence_range"),
        ),
        sa.ForeignKeyConstraint(
            ["playbook_id"],
            ["playbooks.id"],
            name=op.f("fk_playbook_executions_playbook_id_playbooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook_executions")),
    )
    op.create_index(
        op.f("ix_playbook_executions_playbook_id"),
        "playbook_executions",
        ["playbook_id"],
        unique=False,
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("subscription_id", sa.UUID(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("emails_sent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("emails_received", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ai_suggestions", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "emails_sent >= 0 AND emails_received >= 0 AND ai_suggestions >= 0",
            name=op.f("ck_usage_records_counters_non_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_usage_records_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint(
            "subscription_id",
            "period_start",
            name=op.f("uq_usage_records_subscription_id_period_start"),
        ),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("thread_id", sa.UUID(), nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("direction", ENUMS["message_direction"], nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("body_text", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_messages_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id", "user_id"],
            ["threads.id", "threads.user_id"],
            name="fk_messages_thread_id_user_id_threads",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_messages_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint("user_id", "message_id", name=op.f("uq_messages_user_id_message_id")),
    )
    op.create_index(op.f("ix_messages_order_id"), "messages", ["order_id"], unique=False)
    op.create_index(
        "ix_messages_thread_id_sent_at", "messages", ["thread_id", "sent_at"], unique=False
    )
    op.create_table(
        "ai_suggestions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("proposed_action", ENUMS["action_type"], nullable=False),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "confidence BETWEEN 0 AND 1", name=op.f("ck_ai_suggestions_confidence_range")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_ai_suggestions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_ai_suggestions_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_suggestions")),
    )
    op.create_index(
        op.f("ix_ai_suggestions_message_id"), "ai_suggestions", ["message_id"], unique=False
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("message_id", sa.UUID(), nullable=True),
        sa.Column("suggestion_id", sa.UUID(), nullable=True),
        sa.Column("order_id", sa.UUID(), nullable=True),
        sa.Column("type", ENUMS["action_type"], nullable=False),
        sa.Column("status", ENUMS["action_status"], server_default="PENDING", nullable=False),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_actions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_actions_order_id_orders"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["suggestion_id"],
            ["ai_suggestions.id"],
            name=op.f("fk_actions_suggestion_id_ai_suggestions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_actions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    op.create_index(op.f("ix_actions_message_id"), "actions", ["message_id"], unique=False)
    op.create_index(op.f("ix_actions_order_id"), "actions", ["order_id"], unique=False)
    op.create_index("ix_actions_user_id_status", "actions", ["user_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_actions_user_id_status", table_name="actions")
    op.drop_index(op.f("ix_actions_order_id"), table_name="actions")
    op.drop_index(op.f("ix_actions_message_id"), table_name="actions")
    op.drop_table("actions")
    op.drop_index(op.f("ix_ai_suggestions_message_id"), table_name="ai_suggestions")
    op.drop_table("ai_suggestions")
    op.drop_index("ix_messages_thread_id_sent_at", table_name="messages")
    op.drop_index(op.f("ix_messages_order_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_table("usage_records")
    op.drop_index(op.f("ix_playbook_executions_playbook_id"), table_name="playbook_executions")
    op.drop_table("playbook_executions")
    op.drop_index("ix_orders_connection_id_name", table_name="orders")
    op.drop_index("ix_orders_connection_id_email", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_threads_user_id_last_message_at", table_name="threads")
    op.drop_index("ix_threads_user_id_customer_email", table_name="threads")
    op.drop_table("threads")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_playbooks_user_id"), table_name="playbooks")
    op.drop_table("playbooks")
    op.drop_index("ix_events_user_id_created_at", table_name="events")
    op.drop_index("ix_events_entity_entity_id", table_name="events")
    op.drop_table("events")
    op.drop_index(
        "uq_connections_shopify_shop_domain",
        table_name="connections",
        postgresql_where=sa.text("type = 'SHOPIFY'"),
    )
    op.drop_index(
        "uq_connections_custom_email_alias",
        table_name="connections",
        postgresql_where=sa.text("type = 'CUSTOM_EMAIL'"),
    )
    op.drop_index("ix_connections_user_id_type", table_name="connections")
    op.drop_table("connections")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_table("users")
    for enum in ENUMS.values():
        enum.drop(op.get_bind())
