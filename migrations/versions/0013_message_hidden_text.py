"""messages.hidden_text: what an email's HTML hides from its reader.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

HTML comments and hidden elements are kept out of the text the model reads and stored
here for the guardrails, which treat words smuggled there as an injection.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("hidden_text", sa.Text(), server_default="", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("messages", "hidden_text")
