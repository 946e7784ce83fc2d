"""The test email of a forwarding alias: asking for one (the API), recording that it was
sent (the worker) and that it arrived (the SMTP receiver), in the alias's metadata.

A test proves the alias path: the relay, the MX of the inbound domain and the receiver. It
cannot prove the merchant's own forwarding; the page says so.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from domain.mail.alias_test import new_test_token, resend_wait, token_matches
from kernel.enums import ConnectionType
from kernel.errors import Conflict, LimitReached, Transient
from models.connection import Connection, CustomEmailMetadata
from models.event import log_event
from services.connections import owned_connection
from workflows.alias_test_contracts import (
    ALIAS_TEST_MAIL_WORKFLOW,
    AliasTestMailInput,
    alias_test_workflow_id,
)
from workflows.contracts import TASK_QUEUE

_START_RPC_TIMEOUT = timedelta(seconds=10)


def _metadata(connection: Connection) -> CustomEmailMetadata:
    return CustomEmailMetadata.model_validate(connection.metadata_ or {})


async def prepare_alias_test(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, now: datetime
) -> str:
    """Record a new test for the merchant's enabled alias, logged; returns its token. The
    caller commits, then calls `start_alias_test`: the worker checks the token against the
    committed row."""
    connection = await owned_connection(session, user_id, connection_id, lock=True)
    if connection.type != ConnectionType.CUSTOM_EMAIL:
        raise Conflict(
            f"a {connection.type.value} connection has no test email; only a forwarding "
            "alias is tested this way",
            code="not_an_alias",
        )
    meta = _metadata(connection)
    if meta.disabled:
        raise Conflict(
            "this forwarding address is disabled, so the receiver refuses its mail: "
            "enable it first",
            code="alias_disabled",
        )
    wait = resend_wait(meta.test_requested_at, now)
    if wait:
        raise LimitReached(
            f"a test email was asked for moments ago; wait for it, or ask again in {wait} s",
            code="test_email_throttled",
            retry_after=wait,
        )
    token, digest = new_test_token()
    connection.metadata_ = meta.model_copy(
        update={
            "test_token_hash": digest,
            "test_requested_at": now,
            "test_sent_at": None,
            "test_received_at": None,
        }
    ).to_json()
    await log_event(
        session,
        "connection.test_email_requested",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"alias": str(meta.alias)},
    )
    await session.flush()
    return token


async def start_alias_test(
    client: Client | None,
    user_id: uuid.UUID,
    connection_id: uuid.UUID,
    token: str,
    *,
    task_queue: str = TASK_QUEUE,
) -> str:
    """Starts the send; returns its workflow id. Transient when Temporal cannot be reached."""
    if client is None:
        raise Transient("Temporal is not configured for this API process: no email can be sent")
    workflow_id = alias_test_workflow_id(connection_id, uuid.uuid4().hex[:12])
    try:
        await client.start_workflow(
            ALIAS_TEST_MAIL_WORKFLOW,
            AliasTestMailInput(user_id=user_id, connection_id=connection_id, token=token),
            id=workflow_id,
            task_queue=task_queue,
            rpc_timeout=_START_RPC_TIMEOUT,
        )
    except RPCError as exc:
        raise Transient(f"the test email could not be queued: {exc.message}") from exc
    return workflow_id


async def _alias(
    session: AsyncSession, connection_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> Connection | None:
    query = select(Connection).where(
        Connection.id == connection_id, Connection.type == ConnectionType.CUSTOM_EMAIL
    )
    if user_id is not None:
        query = query.where(Connection.user_id == user_id)
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


async def current_test(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, token: str
) -> CustomEmailMetadata | None:
    """The alias's metadata while `token` is still its test to send, else None: the alias
    was deleted or disabled, or a newer test replaced this one."""
    connection = await _alias(session, connection_id, user_id)
    if connection is None:
        return None
    meta = _metadata(connection)
    if meta.disabled or not token_matches(token, meta.test_token_hash):
        return None
    return meta


async def record_test_sent(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, token: str, now: datetime
) -> None:
    connection = await _alias(session, connection_id, user_id)
    if connection is None:
        return
    meta = _metadata(connection)
    if not token_matches(token, meta.test_token_hash) or meta.test_sent_at is not None:
        return
    connection.metadata_ = meta.model_copy(update={"test_sent_at": now}).to_json()
    await log_event(
        session,
        "connection.test_email_sent",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"alias": str(meta.alias)},
    )


async def record_test_arrival(
    session: AsyncSession, connection_id: uuid.UUID, token: str, now: datetime
) -> bool:
    """Whether the mail carrying `token` is this alias's test email, recording its first
    arrival. False for any other token: that mail is ordinary and ingested as such."""
    connection = await _alias(session, connection_id)
    if connection is None:
        return False
    meta = _metadata(connection)
    if not token_matches(token, meta.test_token_hash):
        return False
    if meta.test_received_at is None:  # a redelivery is the same test, recorded once
        connection.metadata_ = meta.model_copy(update={"test_received_at": now}).to_json()
        await log_event(
            session,
            "connection.test_email_received",
            user_id=connection.user_id,
            entity="connection",
            entity_id=connection.id,
            payload={"alias": str(meta.alias)},
        )
    return True
