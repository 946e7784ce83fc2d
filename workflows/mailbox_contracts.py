"""Names and messages shared by the MailboxSyncWorkflow, its activities and the API."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel

MAILBOX_SYNC_WORKFLOW = "MailboxSyncWorkflow"
MAILBOX_CHANGED_SIGNAL = "mailbox_changed"
DISCONNECT_SIGNAL = "disconnect"
MAILBOX_STATUS_QUERY = "status"
# Its activities, called by name (the workflow never imports activities/).
RENEW_WATCH = "gmail_renew_watch"
SYNC_MAILBOX = "gmail_sync_mailbox"


def mailbox_workflow_id(connection_id: uuid.UUID) -> str:
    return f"mailbox-sync-{connection_id}"


class MailboxSyncInput(BaseModel):
    connection_id: uuid.UUID
    user_id: uuid.UUID
    # Pushes can be late or lost: sync at least this often anyway.
    poll_interval: timedelta = timedelta(minutes=5)
    # Gmail drops a watch after 7 days; Google recommends renewing daily.
    watch_renewal: timedelta = timedelta(days=1)
    # Carried across continue-as-new, for the status query.
    rounds: int = 0
    ingested: int = 0


class MailboxRef(BaseModel):
    connection_id: uuid.UUID
    user_id: uuid.UUID


class WatchInput(BaseModel):
    connection_id: uuid.UUID
    user_id: uuid.UUID
    renewal: timedelta


class WatchState(BaseModel):
    active: bool  # False: disabled or removed, the workflow ends
    renew_at: datetime | None = None  # None: no Pub/Sub topic configured, polling only
    error: str | None = None


class SyncResult(BaseModel):
    active: bool = True
    ingested: int = 0  # new messages stored
    seen: int = 0  # candidates looked at (redeliveries are seen, not ingested)
    full_resync: bool = False
    history_id: int | None = None
    error: str | None = None  # a failure only the merchant can fix (reconnect Gmail)


class MailboxStatus(BaseModel):
    rounds: int
    ingested: int
    pushes: int
    last_sync: SyncResult | None = None
    watch: WatchState | None = None
