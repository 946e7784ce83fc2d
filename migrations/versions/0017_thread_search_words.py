"""threads.search_vector: the words of a thread's subject and messages, kept by triggers.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06

The inbox search matches a thread when every word of the query is in its subject or in
any of its messages. One stored vector per thread lets a search read threads in inbox
order and stop at a page (a word found in many threads), and lets a GIN index find the
few threads of a rare word without touching messages. It replaces the GIN indexes on the
subject and on each message's text. Stripped: positions are not needed to match.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTIONS = {
    "thread_search_words(uuid, text)": """
        CREATE FUNCTION thread_search_words(thread uuid, subject text) RETURNS tsvector
        LANGUAGE sql STABLE AS $$
            SELECT strip(to_tsvector('simple'::regconfig, coalesce(subject, '') || ' ' ||
                coalesce((SELECT string_agg(m.body_text, ' ') FROM messages m
                          WHERE m.thread_id = thread), '')))
        $$""",
    # A thread's own row: its subject's words when it is created, all again when renamed.
    "threads_search_subject()": """
        CREATE FUNCTION threads_search_subject() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW.search_vector := strip(to_tsvector('simple'::regconfig, NEW.subject));
            ELSE
                NEW.search_vector := thread_search_words(NEW.id, NEW.subject);
            END IF;
            RETURN NEW;
        END $$""",
    # New messages add their words, one UPDATE per statement (a COPY of many included).
    "threads_search_add_messages()": """
        CREATE FUNCTION threads_search_add_messages() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE threads t SET search_vector = t.search_vector || added.words
            FROM (SELECT thread_id,
                         strip(to_tsvector('simple'::regconfig,
                                           string_agg(body_text, ' '))) AS words
                  FROM new_messages GROUP BY thread_id) added
            WHERE t.id = added.thread_id;
            RETURN NULL;
        END $$""",
    # Text edited (redacted) or messages deleted: their words must stop matching.
    "threads_search_recount_edited()": """
        CREATE FUNCTION threads_search_recount_edited() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE threads t SET search_vector = thread_search_words(t.id, t.subject)
            WHERE t.id = NEW.thread_id OR t.id = OLD.thread_id;
            RETURN NULL;
        END $$""",
    "threads_search_recount_deleted()": """
        CREATE FUNCTION threads_search_recount_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE threads t SET search_vector = thread_search_words(t.id, t.subject)
            WHERE t.id IN (SELECT DISTINCT thread_id FROM old_messages);
            RETURN NULL;
        END $$""",
}

_TRIGGERS = {
    "threads_search_subject ON threads": (
        "BEFORE INSERT OR UPDATE OF subject ON threads "
        "FOR EACH ROW EXECUTE FUNCTION threads_search_subject()"
    ),
    "messages_search_add ON messages": (
        "AFTER INSERT ON messages REFERENCING NEW TABLE AS new_messages "
        "FOR EACH STATEMENT EXECUTE FUNCTION threads_search_add_messages()"
    ),
    "messages_search_edit ON messages": (
        "AFTER UPDATE OF body_text, thread_id ON messages FOR EACH ROW "
        "WHEN (OLD.body_text IS DISTINCT FROM NEW.body_text "
        "OR OLD.thread_id IS DISTINCT FROM NEW.thread_id) "
        "EXECUTE FUNCTION threads_search_recount_edited()"
    ),
    "messages_search_delete ON messages": (
        "AFTER DELETE ON messages REFERENCING OLD TABLE AS old_messages "
        "FOR EACH STATEMENT EXECUTE FUNCTION threads_search_recount_deleted()"
    ),
}


def upgrade() -> None:
    op.add_column(
        "threads",
        sa.Column(
            "search_vector", TSVECTOR(), server_default=sa.text("''::tsvector"), nullable=False
        ),
    )
    for definition in _FUNCTIONS.values():
        op.execute(definition)
    for name, definition in _TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name.split(' ON ')[0]} {definition}")
    op.execute("UPDATE threads SET search_vector = thread_search_words(id, subject)")
    op.create_index(
        "ix_threads_search_vector", "threads", ["search_vector"], postgresql_using="gin"
    )
    op.drop_index("ix_messages_body_text_fts", table_name="messages")
    op.drop_index("ix_threads_subject_fts", table_name="threads")


def downgrade() -> None:
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
    op.drop_index("ix_threads_search_vector", table_name="threads")
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    for signature in _FUNCTIONS:
        op.execute(f"DROP FUNCTION {signature}")
    op.drop_column("threads", "search_vector")
