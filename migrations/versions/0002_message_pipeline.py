"""Message pipeline: API tokens, workflow bookkeeping on messages, one action per message.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

- api_tokens: bearer tokens for the ingest and decision API (only a SHA-256 is stored).
- messages.workflow_id / workflow_started_at: a message is stored before its
  MessageWorkflow starts; a null started_at is what the reconciler restarts.
- actions.message_id becomes unique: a retried workflow step finds the action
  it created instead of adding a second one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.drop_index(op.f("ix_actions_message_id"), table_name="actions")
    op.create_unique_constraint(op.f("uq_actions_message_id"), "actions", ["message_id"])
    op.add_column("messages", sa.Column("workflow_id", sa.String(length=200), nullable=True))
    op.add_column(
        "messages", sa.Column("workflow_started_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_messages_not_started",
        "messages",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("workflow_started_at IS NULL AND direction = 'INBOUND'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_messages_not_started",
        table_name="messages",
        postgresql_where=sa.text("workflow_started_at IS NULL AND direction = 'INBOUND'"),
    )
    op.drop_column("messages", "workflow_started_at")
    op.drop_column("messages", "workflow_id")
    op.drop_constraint(op.f("uq_actions_message_id"), "actions", type_="unique")
    op.create_index(op.f("ix_actions_message_id"), "actions", ["message_id"], unique=False)
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
