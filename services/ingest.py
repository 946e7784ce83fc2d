"""The ingest step every channel shares: store the parsed message, commit, start its workflow.

HTTP (`api/inbound.py`) and the SMTP receiver (`deskpilot/smtp_receiver.py`) both end here,
so a message reaches the pipeline the same way, and exactly once, whichever door it used.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.mail.mime import ParsedEmail
from kernel.settings import Settings
from services.inbox import MessageOrigin, StoredMessage, store_inbound_email
from services.message_workflows import start_and_mark
from workflows.contracts import TASK_QUEUE

logger = logging.getLogger(__name__)


async def ingest_parsed(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client | None,
    settings: Settings,
    user_id: uuid.UUID,
    raw: bytes,
    parsed: ParsedEmail,
    *,
    task_queue: str = TASK_QUEUE,
    channel: str = "http",
    origin: MessageOrigin | None = None,
) -> StoredMessage:
    """Store, commit (closing `session`), then start the workflow.

    Without Temporal, or when the start fails, the row stays marked not started and the
    reconciler starts it later: the sender must not retry a message that is stored.
    """
    stored = await store_inbound_email(session, user_id, raw, parsed, origin)
    # Durable before Temporal hears of it: nothing accepted is lost.
    await session.commit()
    await session.close()
    log_context = {
        "workflow_id": stored.workflow_id,
        "message_id": str(stored.message_id),
        "channel": channel,
    }
    logger.info(
        "inbound email %s", "stored" if stored.created else "redelivered", extra=log_context
    )
    if temporal is not None and not stored.workflow_started:
        try:
            await start_and_mark(
                sessions,
                temporal,
                settings,
                user_id,
                stored.message_id,
                stored.workflow_id,
                task_queue=task_queue,
            )
        except Exception:
            # Whatever failed (Temporal down, a timeout), the reconciler catches up.
            logger.exception("could not start the message workflow yet", extra=log_context)
    return stored
