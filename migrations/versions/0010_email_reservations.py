"""email_reservations: a reply's email is reserved before the store acts for it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The store used to refund, cancel or edit before the reply checked the plan's email
limit, so at the limit the store acted and the customer was never told. Approval now
reserves the reply's email in the period; open reservations count against the limit.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_reservations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("action_id", sa.UUID(), nullable=False),
        sa.Column("usage_record_id", sa.UUID(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('sent', 'released')", name=op.f("ck_email_reservations_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_email_reservations_action_id_actions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["usage_record_id"],
            ["usage_records.id"],
            name=op.f("fk_email_reservations_usage_record_id_usage_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_reservations")),
        sa.UniqueConstraint("action_id", name=op.f("uq_email_reservations_action_id")),
    )
    op.create_index(
        "ix_email_reservations_open",
        "email_reservations",
        ["usage_record_id"],
        postgresql_where=sa.text("settled_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_email_reservations_open", table_name="email_reservations")
    op.drop_table("email_reservations")
