"""Deleting a merchant account: every row it owns goes, one Event without personal data stays.

Each store is erased as Shopify's shop/redact asks (models/compliance.redact_shop), then the
rest the merchant owns, then the user. Every table that holds a merchant's rows references
users with ON DELETE CASCADE, so deleting the user also takes anything not named here.
The kept Event has no user_id: events.user_id cascades, and an Event naming the user would
go with it. It names the deleted account only by its random id, with the counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.billing_gateways import BillingGateway
from kernel.enums import ConnectionType, PlaybookExecutionStatus, SubscriptionStatus
from kernel.errors import Conflict, DeskpilotError, Invalid
from kernel.settings import Settings
from models.account_token import AccountToken
from models.action import Action
from models.api_token import ApiToken
from models.billing import Subscription
from models.compliance import redact_shop
from models.connection import Connection
from models.conversation import Message, Thread
from models.event import log_event
from models.playbook import Playbook, PlaybookExecution
from models.suggestion import AISuggestion
from models.user import User
from models.web_session import WebSession
from services import billing
from services.account_security import confirm_current_password
from workflows.mailbox_contracts import mailbox_workflow_id

# Typed by the merchant: deleting an account by a stray click is impossible.
CONFIRMATION = "DELETE"
_CHARGING = (SubscriptionStatus.active, SubscriptionStatus.past_due)
_OPEN_RUNS = (PlaybookExecutionStatus.pending, PlaybookExecutionStatus.approved)


class SubscriptionStillRunningError(Conflict):
    code = "subscription_running"


@dataclass(frozen=True)
class AccountDeleted:
    counts: dict[str, int]
    # Mailbox syncs and playbook runs, to stop once the deletion is committed.
    workflow_ids: list[str]


async def _cancel_subscription(
    session: AsyncSession,
    user_id: uuid.UUID,
    gateways: Mapping[str, BillingGateway],
    settings: Settings,
) -> bool:
    """Stops a gateway charging for a deleted account; True when one was cancelled."""
    subscription = await session.scalar(select(Subscription).where(Subscription.user_id == user_id))
    if subscription is None or not subscription.gateway_subscription_id:
        return False
    if subscription.status not in _CHARGING:
        return False
    try:
        await billing.cancel(session, user_id, False, gateways, settings)
    except DeskpilotError as exc:
        raise SubscriptionStillRunningError(
            f"the paid subscription could not be cancelled ({exc.message}): cancel it on the "
            "usage page, then delete the account"
        ) from exc
    return True


async def _open_playbook_runs(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """Playbook runs outlive their message's workflow (abandoned children): named here."""
    rows = await session.execute(
        select(PlaybookExecution.workflow_id).where(
            PlaybookExecution.user_id == user_id,
            PlaybookExecution.workflow_id.is_not(None),
            PlaybookExecution.status.in_(_OPEN_RUNS),
        )
    )
    return [w for w in rows.scalars() if w]


async def delete_account(
    session: AsyncSession,
    user_id: uuid.UUID,
    password: str,
    confirmation: str,
    *,
    ip: str | None,
    gateways: Mapping[str, BillingGateway],
    settings: Settings,
) -> AccountDeleted:
    """Erases the account once its password and the typed confirmation are given. The
    caller commits, also after a WrongPasswordError (the failure must be kept)."""
    if confirmation.strip() != CONFIRMATION:
        raise Invalid(
            f"type {CONFIRMATION} to confirm that the account is to be deleted",
            code="not_confirmed",
        )
    await confirm_current_password(session, user_id, password, ip=ip)
    # Locked: a second deletion, or a sign-up of the same address, waits for this one.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    cancelled = await _cancel_subscription(session, user_id, gateways, settings)

    counts: dict[str, int] = {"shops": 0, "subscriptions_cancelled": int(cancelled)}
    connections = list(
        (await session.execute(select(Connection).where(Connection.user_id == user_id))).scalars()
    )
    workflow_ids = [
        mailbox_workflow_id(c.id) for c in connections if c.type is ConnectionType.GMAIL
    ]
    workflow_ids += await _open_playbook_runs(session, user_id)
    for connection in connections:
        if connection.type is ConnectionType.SHOPIFY:
            counts["shops"] += 1
            for name, count in (await redact_shop(session, connection)).items():
                counts[f"shop_{name}"] = counts.get(f"shop_{name}", 0) + count

    async def run(name: str, statement: Any) -> None:
        counts[name] = (await session.execute(statement)).rowcount or 0

    # What no store's erasure reached: the mailbox's own threads, and the account itself.
    mine = select(Message.id).where(Message.user_id == user_id)
    await run(
        "playbook_executions", delete(PlaybookExecution).where(PlaybookExecution.user_id == user_id)
    )
    await run("actions", delete(Action).where(Action.user_id == user_id))
    await run("suggestions", delete(AISuggestion).where(AISuggestion.message_id.in_(mine)))
    await run("messages", delete(Message).where(Message.user_id == user_id))
    await run("threads", delete(Thread).where(Thread.user_id == user_id))
    await run("connections", delete(Connection).where(Connection.user_id == user_id))
    await run("playbooks", delete(Playbook).where(Playbook.user_id == user_id))
    await run("api_tokens", delete(ApiToken).where(ApiToken.user_id == user_id))
    await run("web_sessions", delete(WebSession).where(WebSession.user_id == user_id))
    await run("account_tokens", delete(AccountToken).where(AccountToken.user_id == user_id))
    # The subscription, usage, events, settings and the rest go with the user (CASCADE).
    await run("users", delete(User).where(User.id == user_id))
    await log_event(
        session, "account.deleted", user_id=None, entity="user", entity_id=user_id, payload=counts
    )
    return AccountDeleted(counts, workflow_ids)
