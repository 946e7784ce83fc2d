"""threads.needs_decision: whether a PENDING action waits in the thread.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

The inbox's "Needs decision" view must list 50 threads in under 50 ms with 100,000
threads; found through messages → actions per thread it took 30 to 65 ms. The flag is
kept by the code that creates actions and changes their status
(models/thread_state.py), and a partial index serves the view in thread order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "threads",
        sa.Column("needs_decision", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(
        """UPDATE threads t SET needs_decision = TRUE WHERE EXISTS (
            SELECT 1 FROM messages m JOIN actions a ON a.message_id = m.id
            WHERE m.thread_id = t.id AND a.status = 'PENDING')"""
    )
    op.create_index(
        "ix_threads_needs_decision",
        "threads",
        ["user_id", "last_message_at"],
        postgresql_where=sa.text("needs_decision"),
    )


def downgrade() -> None:
    op.drop_index("ix_threads_needs_decision", table_name="threads")
    op.drop_column("threads", "needs_decision")
