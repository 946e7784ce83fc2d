"""MailboxSyncWorkflow: one per connected Gmail mailbox, for as long as it is connected.

Each round renews Gmail's watch when due and syncs the mailbox, then waits for a push
(the `mailbox_changed` signal), the polling interval (pushes get lost) or the watch's
renewal time, whichever comes first. A disabled or removed connection ends it. It
continues as new before its history grows long.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.mailbox_contracts import (
        DISCONNECT_SIGNAL,
        MAILBOX_CHANGED_SIGNAL,
        MAILBOX_STATUS_QUERY,
        MAILBOX_SYNC_WORKFLOW,
        RENEW_WATCH,
        SYNC_MAILBOX,
        MailboxRef,
        MailboxStatus,
        MailboxSyncInput,
        SyncResult,
        WatchInput,
        WatchState,
    )

# A round that keeps failing gives up after a few minutes; the next round tries again.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=8,
)
# A sync of a busy mailbox may read hundreds of messages; it heartbeats per message.
SYNC_TIMEOUT = timedelta(minutes=30)
HEARTBEAT = timedelta(minutes=2)
MAX_ROUNDS = 500  # then continue as new, with a short history


@workflow.defn(name=MAILBOX_SYNC_WORKFLOW)
class MailboxSyncWorkflow:
    def __init__(self) -> None:
        self._pushes = 0
        self._disconnected = False
        self._rounds = 0
        self._ingested = 0
        self._last_sync: SyncResult | None = None
        self._watch: WatchState | None = None

    @workflow.signal(name=MAILBOX_CHANGED_SIGNAL)
    def mailbox_changed(self, history_id: int) -> None:
        # The pushed id only says "something changed"; the sync reads from the stored one.
        self._pushes += 1

    @workflow.signal(name=DISCONNECT_SIGNAL)
    def disconnect(self) -> None:
        self._disconnected = True

    @workflow.query(name=MAILBOX_STATUS_QUERY)
    def status(self) -> MailboxStatus:
        return MailboxStatus(
            rounds=self._rounds,
            ingested=self._ingested,
            pushes=self._pushes,
            last_sync=self._last_sync,
            watch=self._watch,
        )

    @workflow.run
    async def run(self, data: MailboxSyncInput) -> MailboxStatus:
        self._rounds, self._ingested = data.rounds, data.ingested
        ref = MailboxRef(connection_id=data.connection_id, user_id=data.user_id)
        for _ in range(MAX_ROUNDS):
            seen_pushes = self._pushes
            watch = await self._renew_watch(data)
            if not watch.active:
                return self.status()  # disabled or removed: nothing to sync
            sync = await self._sync(ref)
            self._rounds += 1
            if not sync.active:
                return self.status()
            wait = data.poll_interval
            if watch.renew_at is not None:
                wait = min(wait, max(watch.renew_at - workflow.now(), timedelta(seconds=1)))
            # A push, a disconnect, or the timeout: the polling round.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda seen=seen_pushes: self._pushes != seen or self._disconnected,
                    timeout=wait,
                )
            if self._disconnected:
                return self.status()
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            data.model_copy(update={"rounds": self._rounds, "ingested": self._ingested})
        )

    async def _renew_watch(self, data: MailboxSyncInput) -> WatchState:
        try:
            self._watch = await workflow.execute_activity(
                RENEW_WATCH,
                WatchInput(
                    connection_id=data.connection_id,
                    user_id=data.user_id,
                    renewal=data.watch_renewal,
                ),
                result_type=WatchState,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
        except ActivityError as exc:
            # Gmail or the database away for minutes: poll anyway, renew next round.
            self._watch = WatchState(active=True, error=str(exc.cause or exc))
        return self._watch

    async def _sync(self, ref: MailboxRef) -> SyncResult:
        try:
            result = await workflow.execute_activity(
                SYNC_MAILBOX,
                ref,
                result_type=SyncResult,
                start_to_close_timeout=SYNC_TIMEOUT,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
            )
        except ActivityError as exc:
            result = SyncResult(error=str(exc.cause or exc))
        self._ingested += result.ingested
        self._last_sync = result
        return result
