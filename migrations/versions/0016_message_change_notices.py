"""NOTIFY message_changed on every change a message's detail shows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05

A client waiting on GET /api/messages/{id}?wait= is woken by these instead of polling.
The notice carries only the message id and is sent when the writing transaction commits,
so it costs no round trip and never announces a change that rolled back.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose rows a message's detail reads, and the column naming the message.
_TABLES = {
    "messages": "id",
    "ai_suggestions": "message_id",
    "actions": "message_id",
    "playbook_executions": "message_id",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_message_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            changed text := to_jsonb(NEW) ->> TG_ARGV[0];
        BEGIN
            IF changed IS NOT NULL THEN
                PERFORM pg_notify('message_changed', changed);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table, column in _TABLES.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify_message_changed AFTER INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION notify_message_changed('{column}')"
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_notify_message_changed ON {table}")
    op.execute("DROP FUNCTION notify_message_changed()")
