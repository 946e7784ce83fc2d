"""Suggestions keep why they say what they say: provider, intent, rationale, tokens, guardrails.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

A person judging a suggestion needs the model's reasoning and what the guardrails
changed; the plan's AI budget and the evaluation need the token counts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ai_suggestions", sa.Column("provider", sa.String(100), server_default="", nullable=False)
    )
    op.add_column(
        "ai_suggestions", sa.Column("intent", sa.String(100), server_default="", nullable=False)
    )
    op.add_column(
        "ai_suggestions", sa.Column("rationale", sa.Text(), server_default="", nullable=False)
    )
    for column in ("prompt_tokens", "completion_tokens"):
        op.add_column(
            "ai_suggestions", sa.Column(column, sa.Integer(), server_default="0", nullable=False)
        )
    op.add_column(
        "ai_suggestions",
        sa.Column(
            "guardrails",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )


def downgrade() -> None:
    for column in (
        "guardrails",
        "completion_tokens",
        "prompt_tokens",
        "rationale",
        "intent",
        "provider",
    ):
        op.drop_column("ai_suggestions", column)
