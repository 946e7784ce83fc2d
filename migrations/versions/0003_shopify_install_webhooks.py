"""Shopify install and webhooks: OAuth states, webhook deliveries, compliance exports.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

- oauth_states: the `state` nonce of an install (only its SHA-256), the merchant who
  started it and for which shop; single use and short-lived, so Shopify's callback is
  tied to a signed-in merchant and cannot be replayed. A table rather than a cookie:
  it survives restarts and works across API processes.
- shopify_webhooks: each delivery stored once (unique event_id = X-Shopify-Event-Id)
  before it is processed; a null processed_at is the reconciler's work list.
- compliance_exports: what customers/data_request produced, for the merchant to fetch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False)


def _at(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _owner(table: str, *, nullable: bool) -> tuple[sa.Column, sa.ForeignKeyConstraint]:
    return (
        sa.Column("user_id", sa.UUID(), nullable=nullable),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
        ),
    )


def upgrade() -> None:
    op.create_table(
        "oauth_states",
        _id(),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        *_owner("oauth_states", nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oauth_states_state_hash")),
    )
    op.create_index(op.f("ix_oauth_states_user_id"), "oauth_states", ["user_id"], unique=False)

    op.create_table(
        "shopify_webhooks",
        _id(),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=True),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        *_owner("shopify_webhooks", nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        _at("received_at"),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopify_webhooks")),
        sa.UniqueConstraint("event_id", name=op.f("uq_shopify_webhooks_event_id")),
    )
    op.create_index(
        "ix_shopify_webhooks_shop_domain", "shopify_webhooks", ["shop_domain"], unique=False
    )
    op.create_index(
        "ix_shopify_webhooks_unprocessed",
        "shopify_webhooks",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.create_index(
        op.f("ix_shopify_webhooks_user_id"), "shopify_webhooks", ["user_id"], unique=False
    )

    op.create_table(
        "compliance_exports",
        _id(),
        *_owner("compliance_exports", nullable=False),
        sa.Column("shop_domain", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("data_request_id", sa.String(length=64), nullable=True),
        sa.Column("customer_email", sa.String(length=320), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_exports")),
        sa.UniqueConstraint("event_id", name=op.f("uq_compliance_exports_event_id")),
    )
    op.create_index(
        "ix_compliance_exports_user_id_created_at",
        "compliance_exports",
        ["user_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_compliance_exports_user_id_created_at", table_name="compliance_exports")
    op.drop_table("compliance_exports")
    op.drop_index(op.f("ix_shopify_webhooks_user_id"), table_name="shopify_webhooks")
    op.drop_index(
        "ix_shopify_webhooks_unprocessed",
        table_name="shopify_webhooks",
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    op.drop_index("ix_shopify_webhooks_shop_domain", table_name="shopify_webhooks")
    op.drop_table("shopify_webhooks")
    op.drop_index(op.f("ix_oauth_states_user_id"), table_name="oauth_states")
    op.drop_table("oauth_states")
