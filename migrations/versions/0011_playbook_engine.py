"""playbook engine: ordering and self-pause on playbooks, executions linked to what fired
them, suggestion signals, thread tags, automation settings; default playbooks become v2.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The data step rewrites the default playbooks' rule documents from version 1 to version 2
(same meaning: a v2 trigger adds empty channel and language filters, conditions and
actions only change their version). The merchants' own v1 documents stay readable.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _v2(document: Any) -> Any:
    if isinstance(document, dict) and document.get("version") == 1:
        return {**document, "version": 2}
    return document


def _trigger_v2(trigger: dict[str, Any]) -> dict[str, Any]:
    if trigger.get("version") != 1:
        return trigger
    return {**trigger, "version": 2, "channels": [], "languages": []}


def _v1(document: Any) -> Any:
    if isinstance(document, dict) and document.get("version") == 2:
        return {**document, "version": 1}
    return document


def _trigger_v1(trigger: dict[str, Any]) -> dict[str, Any]:
    if trigger.get("version") != 2 or trigger.get("event") != "message.received":
        return trigger
    return {"version": 1, "event": "message.received", "intents": trigger.get("intents", [])}


def _rewrite_defaults(trigger_to: Any, document_to: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, trigger, conditions, actions FROM playbooks WHERE is_default")
    )
    for playbook_id, trigger, conditions, actions in rows.fetchall():
        bind.execute(
            sa.text(
                "UPDATE playbooks SET trigger = CAST(:t AS jsonb), "
                "conditions = CAST(:c AS jsonb), actions = CAST(:a AS jsonb) WHERE id = :id"
            ),
            {
                "id": playbook_id,
                "t": json.dumps(trigger_to(trigger)),
                "c": json.dumps([document_to(c) for c in conditions]),
                "a": json.dumps([document_to(a) for a in actions]),
            },
        )


def upgrade() -> None:
    false, true = sa.text("false"), sa.text("true")
    op.add_column(
        "playbooks", sa.Column("priority", sa.Integer(), server_default="100", nullable=False)
    )
    op.add_column(
        "playbooks",
        sa.Column("stop_processing", sa.Boolean(), server_default=false, nullable=False),
    )
    op.add_column(
        "playbooks",
        sa.Column("run_once_per_thread", sa.Boolean(), server_default=false, nullable=False),
    )
    op.add_column(
        "playbooks",
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("playbooks", sa.Column("disabled_reason", sa.Text(), nullable=True))

    # Executions written so far (none: nothing evaluated playbooks) have no firing key.
    op.execute("DELETE FROM playbook_executions")
    op.drop_index("ix_playbook_executions_playbook_id", table_name="playbook_executions")
    for column in (
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("trigger_key", sa.String(length=300), nullable=False),
        sa.Column("workflow_id", sa.String(length=300), nullable=True),
        sa.Column("message_id", sa.UUID(), nullable=True),
        sa.Column("thread_id", sa.UUID(), nullable=True),
        sa.Column("action_id", sa.UUID(), nullable=True),
        sa.Column("shop_domain", sa.String(length=255), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("automatic", sa.Boolean(), server_default=false, nullable=False),
        sa.Column("refund_amount", sa.Numeric(precision=19, scale=4), nullable=True),
    ):
        op.add_column("playbook_executions", column)
    for column, table, ondelete in (
        ("user_id", "users", "CASCADE"),
        ("message_id", "messages", "SET NULL"),
        ("thread_id", "threads", "SET NULL"),
        ("action_id", "actions", "SET NULL"),
    ):
        op.create_foreign_key(
            op.f(f"fk_playbook_executions_{column}_{table}"),
            "playbook_executions",
            table,
            [column],
            ["id"],
            ondelete=ondelete,
        )
    op.create_unique_constraint(
        op.f("uq_playbook_executions_playbook_id_trigger_key"),
        "playbook_executions",
        ["playbook_id", "trigger_key"],
    )
    op.create_index(
        "ix_playbook_executions_playbook_id_created_at",
        "playbook_executions",
        ["playbook_id", "created_at"],
    )
    op.create_index("ix_playbook_executions_thread_id", "playbook_executions", ["thread_id"])
    op.create_index(
        "ix_playbook_executions_message_id_created_at",
        "playbook_executions",
        ["message_id", "created_at"],
    )
    op.create_index(
        "ix_playbook_executions_user_id_created_at",
        "playbook_executions",
        ["user_id", "created_at"],
    )

    op.add_column(
        "ai_suggestions",
        sa.Column("language", sa.String(length=16), server_default="", nullable=False),
    )
    op.add_column(
        "ai_suggestions",
        sa.Column("sentiment", sa.String(length=16), server_default="neutral", nullable=False),
    )
    op.add_column(
        "ai_suggestions",
        sa.Column("wants_human", sa.Boolean(), server_default=false, nullable=False),
    )
    op.add_column(
        "ai_suggestions",
        sa.Column("legal_threat", sa.Boolean(), server_default=false, nullable=False),
    )

    op.add_column(
        "threads",
        sa.Column(
            "tags", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )
    op.add_column("threads", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "automation_settings",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=true, nullable=False),
        sa.Column(
            "daily_refund_cap",
            sa.Numeric(precision=19, scale=4),
            server_default="500",
            nullable=False,
        ),
        sa.Column("daily_execution_cap", sa.Integer(), server_default="100", nullable=False),
        sa.Column("pause_after_failures", sa.Integer(), server_default="3", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("business_hours_start", sa.Integer(), server_default="9", nullable=False),
        sa.Column("business_hours_end", sa.Integer(), server_default="17", nullable=False),
        sa.Column(
            "business_days",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[1, 2, 3, 4, 5]",
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "daily_refund_cap >= 0", name=op.f("ck_automation_settings_refund_cap_positive")
        ),
        sa.CheckConstraint(
            "daily_execution_cap >= 0", name=op.f("ck_automation_settings_execution_cap_positive")
        ),
        sa.CheckConstraint(
            "pause_after_failures >= 1", name=op.f("ck_automation_settings_pause_after_positive")
        ),
        sa.CheckConstraint(
            "business_hours_start BETWEEN 0 AND 23 AND business_hours_end BETWEEN 1 AND 24",
            name=op.f("ck_automation_settings_business_hours_range"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_automation_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_automation_settings")),
    )
    _rewrite_defaults(_trigger_v2, _v2)


def downgrade() -> None:
    # The defaults only use what version 1 can say, so they go back to it.
    _rewrite_defaults(_trigger_v1, _v1)
    op.drop_table("automation_settings")
    op.drop_column("threads", "closed_at")
    op.drop_column("threads", "tags")
    for column in ("legal_threat", "wants_human", "sentiment", "language"):
        op.drop_column("ai_suggestions", column)
    op.execute("DELETE FROM playbook_executions")
    op.drop_index("ix_playbook_executions_user_id_created_at", table_name="playbook_executions")
    op.drop_index("ix_playbook_executions_message_id_created_at", table_name="playbook_executions")
    op.drop_index("ix_playbook_executions_thread_id", table_name="playbook_executions")
    op.drop_index("ix_playbook_executions_playbook_id_created_at", table_name="playbook_executions")
    op.drop_constraint(
        op.f("uq_playbook_executions_playbook_id_trigger_key"),
        "playbook_executions",
        type_="unique",
    )
    for column in (
        "refund_amount",
        "automatic",
        "decided_by",
        "shop_domain",
        "action_id",
        "thread_id",
        "message_id",
        "workflow_id",
        "trigger_key",
        "user_id",
    ):
        op.drop_column("playbook_executions", column)
    op.create_index("ix_playbook_executions_playbook_id", "playbook_executions", ["playbook_id"])
    for column in (
        "disabled_reason",
        "consecutive_failures",
        "run_once_per_thread",
        "stop_processing",
        "priority",
    ):
        op.drop_column("playbooks", column)
