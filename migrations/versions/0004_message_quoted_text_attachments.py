"""Messages keep quoted history and attachment metadata apart from the new text.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Replies carry the whole conversation and a signature; the model should read only
what the customer just wrote (body_text), while the merchant can still see the rest
(quoted_text). Attachments are recorded as metadata (filename, content type, size)
so the inbox can show them without decoding the stored raw message again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("quoted_text", sa.Text(), server_default="", nullable=False)
    )
    op.add_column(
        "messages",
        sa.Column(
            "attachments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("messages", "attachments")
    op.drop_column("messages", "quoted_text")
