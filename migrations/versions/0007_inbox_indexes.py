"""Indexes for the inbox: customer address prefix, words of subject and text, and
a thread's message ids without heap reads.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

The inbox searches a merchant's threads by customer address prefix and by words of
the subject and text. pg_trgm is not available in the embedded PostgreSQL, hence
full-text (GIN) indexes instead of trigram ones. The address index with pattern ops
replaces the plain one: it serves threading's equality lookups too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The inbox probes every listed thread's messages for their actions: with the id
    # in the index those probes are index-only.
    op.drop_index("ix_messages_thread_id_sent_at", table_name="messages")
    op.create_index(
        "ix_messages_thread_id_sent_at",
        "messages",
        ["thread_id", "sent_at"],
        postgresql_include=["id"],
    )
    op.create_index(
        "ix_threads_user_id_customer_email_pattern",
        "threads",
        ["user_id", "customer_email"],
        postgresql_ops={"customer_email": "varchar_pattern_ops"},
    )
    op.drop_index("ix_threads_user_id_customer_email", table_name="threads")
    op.create_index(
        "ix_threads_subject_fts",
        "threads",
        [sa.literal_column("to_tsvector('simple'::regconfig, subject)")],
        postgresql_using="gin",
    )
    op.create_index(
        "ix_messages_body_text_fts",
        "messages",
        [sa.literal_column("to_tsvector('simple'::regconfig, body_text)")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_messages_body_text_fts", table_name="messages")
    op.drop_index("ix_threads_subject_fts", table_name="threads")
    op.create_index("ix_threads_user_id_customer_email", "threads", ["user_id", "customer_email"])
    op.drop_index("ix_threads_user_id_customer_email_pattern", table_name="threads")
    op.drop_index("ix_messages_thread_id_sent_at", table_name="messages")
    op.create_index("ix_messages_thread_id_sent_at", "messages", ["thread_id", "sent_at"])
