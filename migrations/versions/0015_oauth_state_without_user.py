"""oauth_states.user_id nullable: a Shopify install that starts at Shopify has no merchant yet.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Launched from Shopify's admin with no deskpilot session, the install's state belongs to
nobody until the callback finds or creates the shop's merchant.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("oauth_states", "user_id", nullable=True)


def downgrade() -> None:
    # Nobody's states cannot be kept under a NOT NULL column; they expire in minutes anyway.
    op.execute("DELETE FROM oauth_states WHERE user_id IS NULL")
    op.alter_column("oauth_states", "user_id", nullable=False)
