"""Mail channels: which connection a message came through, and connected Gmail mailboxes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

- messages.connection_id: the alias or mailbox a message arrived on (or left from), so
  the reply leaves through the same door; null for the HTTP ingest.
- messages.channel_message_id / channel_thread_id: the provider's own ids (Gmail's
  message id and threadId). A reply must name the threadId to stay in the customer's
  Gmail thread, and a customer's answer in that thread joins ours even when Gmail
  rewrote the Message-ID we gave our reply.
- a Gmail address is connected to one merchant only, so a push routes to one owner.
- oauth_states serves Google's consent too: `provider` says which, and shop_domain is
  only set for Shopify.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("connection_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        op.f("fk_messages_connection_id_connections"),
        "messages",
        "connections",
        ["connection_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(op.f("ix_messages_connection_id"), "messages", ["connection_id"])
    op.add_column("messages", sa.Column("channel_message_id", sa.String(255), nullable=True))
    op.add_column("messages", sa.Column("channel_thread_id", sa.String(255), nullable=True))
    op.create_index(
        "ix_messages_connection_id_channel_thread_id",
        "messages",
        ["connection_id", "channel_thread_id"],
        postgresql_where=sa.text("channel_thread_id IS NOT NULL"),
    )
    op.create_index(
        "uq_connections_gmail_address",
        "connections",
        [sa.text("lower(metadata ->> 'emailAddress')")],
        unique=True,
        postgresql_where=sa.text("type = 'GMAIL'"),
    )
    op.add_column(
        "oauth_states",
        sa.Column("provider", sa.String(20), server_default="shopify", nullable=False),
    )
    op.alter_column("oauth_states", "shop_domain", existing_type=sa.String(255), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM oauth_states WHERE provider <> 'shopify'")
    op.alter_column("oauth_states", "shop_domain", existing_type=sa.String(255), nullable=False)
    op.drop_column("oauth_states", "provider")
    op.drop_index("uq_connections_gmail_address", table_name="connections")
    op.drop_index("ix_messages_connection_id_channel_thread_id", table_name="messages")
    op.drop_column("messages", "channel_thread_id")
    op.drop_column("messages", "channel_message_id")
    op.drop_index(op.f("ix_messages_connection_id"), table_name="messages")
    op.drop_constraint(
        op.f("fk_messages_connection_id_connections"), "messages", type_="foreignkey"
    )
    op.drop_column("messages", "connection_id")
