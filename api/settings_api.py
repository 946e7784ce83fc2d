"""The merchant's settings as JSON: connections, playbooks, usage and plan, the audit log.

The queries and changes here are shared with the HTML pages (api/settings_pages.py), so a
page and its endpoint can never disagree on scoping: every lookup is by (owner, id) and
another owner's id is simply not found.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.deps import CurrentUser, OptionalTemporalDep, SessionDep, SettingsDep, TaskQueueDep
from api.errors import ApiError, BadRequestError, NotFoundError
from domain.playbook_rules import PlaybookRuleError, PlaybookRules
from kernel.enums import ConnectionType, PlaybookCategory
from kernel.settings import Settings
from models.connection import Connection, CustomEmailMetadata
from models.event import Event, log_event
from models.gmail import GmailMetadata, update_gmail
from models.playbook import Playbook
from services.mailbox_workflows import ensure_mailbox_sync
from services.usage import UsagePeriod, UsageSummary, ensure_subscription, get_usage_history
from services.usage import get_usage_summary as _usage_summary
from workflows.mailbox_contracts import DISCONNECT_SIGNAL, mailbox_workflow_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["settings"])

MAX_EVENTS_LIMIT = 100


class InvalidPlaybookError(ApiError):
    status_code = 422
    code = "invalid_playbook"


# --- connections -----------------------------------------------------------------------------


class ConnectionOut(BaseModel):
    """What a merchant may see of a connection: never its tokens."""

    id: uuid.UUID
    type: ConnectionType
    enabled: bool
    label: str  # the shop domain, mailbox address or alias
    shop_domain: str | None = None
    email_address: str | None = None
    alias: str | None = None
    store_name: str | None = None
    support_email: str | None = None
    last_sync_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime


class ConnectionPatch(BaseModel):
    enabled: bool


def connection_out(connection: Connection) -> ConnectionOut:
    meta = connection.metadata_ or {}
    out = ConnectionOut(
        id=connection.id,
        type=connection.type,
        enabled=not meta.get("disabled"),
        label=connection.shop_domain or "",
        shop_domain=connection.shop_domain,
        store_name=meta.get("storeName"),
        support_email=meta.get("supportEmail"),
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
    if connection.type == ConnectionType.GMAIL and meta:
        gmail = GmailMetadata.model_validate(meta)
        out.email_address = str(gmail.email_address)
        out.label = out.email_address
        out.last_sync_at = gmail.last_sync_at
        out.last_error = gmail.last_error
    elif connection.type == ConnectionType.CUSTOM_EMAIL and meta:
        alias = CustomEmailMetadata.model_validate(meta)
        out.alias = str(alias.alias)
        out.label = out.alias
        out.shop_domain = out.shop_domain or alias.shop_domain
    return out


async def list_connections(session: AsyncSession, user_id: uuid.UUID) -> list[ConnectionOut]:
    rows = await session.execute(
        select(Connection)
        .where(Connection.user_id == user_id)
        .order_by(Connection.type, Connection.created_at, Connection.id)
    )
    return [connection_out(c) for c in rows.scalars()]


async def set_connection_enabled(
    session: AsyncSession, user_id: uuid.UUID, connection_id: uuid.UUID, enabled: bool
) -> Connection:
    """Flip `disabled` in the connection's metadata (what the webhook, SMTP and Gmail paths
    read) and log it; the caller commits, then calls `after_connection_change`."""
    connection = (
        await session.execute(
            select(Connection)
            .where(Connection.id == connection_id, Connection.user_id == user_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if connection is None:
        raise NotFoundError("connection not found")
    if connection.type == ConnectionType.GMAIL:
        # Under update_gmail's row lock, so a concurrent sync's history id is not undone.
        await update_gmail(session, connection.id, disabled=not enabled)
    else:
        meta = dict(connection.metadata_ or {})
        meta["disabled"] = not enabled
        connection.metadata_ = meta
    await log_event(
        session,
        "connection.enabled" if enabled else "connection.disabled",
        user_id=user_id,
        entity="connection",
        entity_id=connection.id,
        payload={"type": connection.type.value},
    )
    await session.flush()
    await session.refresh(connection)
    return connection


async def after_connection_change(
    temporal: Client | None,
    settings: Settings,
    task_queue: str,
    connection: Connection,
    enabled: bool,
) -> None:
    """Start a re-enabled mailbox's sync, or tell a disabled one's to stop.

    Best effort: the change is committed already; without Temporal the reconciler starts
    enabled mailboxes at worker start, and a running sync sees `disabled` on its next round.
    """
    if connection.type != ConnectionType.GMAIL or temporal is None:
        return
    try:
        if enabled:
            await ensure_mailbox_sync(
                temporal, settings, connection.id, connection.user_id, task_queue=task_queue
            )
        else:
            handle = temporal.get_workflow_handle(mailbox_workflow_id(connection.id))
            await handle.signal(DISCONNECT_SIGNAL)
    except RPCError as exc:
        # Not running (nothing to stop) or Temporal unreachable: the next round settles it.
        logger.info(
            "mailbox sync not nudged", extra={"connection_id": str(connection.id)}, exc_info=exc
        )


@router.get("/connections", response_model=list[ConnectionOut])
async def get_connections(user_id: CurrentUser, session: SessionDep) -> list[ConnectionOut]:
    """The merchant's Shopify stores, Gmail mailboxes and forwarding aliases."""
    return await list_connections(session, user_id)


@router.patch("/connections/{connection_id}", response_model=ConnectionOut)
async def patch_connection(
    connection_id: uuid.UUID,
    body: ConnectionPatch,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
) -> ConnectionOut:
    """Enable or disable a connection: a disabled one receives and sends nothing."""
    connection = await set_connection_enabled(session, user_id, connection_id, body.enabled)
    await session.commit()
    await after_connection_change(temporal, settings, task_queue, connection, body.enabled)
    return connection_out(connection)


# --- playbooks -------------------------------------------------------------------------------


class PlaybookOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    category: PlaybookCategory
    trigger: dict[str, Any]
    conditions: list[Any]
    actions: list[Any]
    confidence_threshold: float
    requires_approval: bool
    enabled: bool
    is_default: bool
    execution_count: int
    last_executed_at: datetime | None
    updated_at: datetime


class PlaybookRulesIn(BaseModel):
    trigger: Any
    conditions: Any
    actions: Any
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    requires_approval: bool | None = None


class PlaybookPatch(BaseModel):
    enabled: bool | None = None
    requires_approval: bool | None = None


def playbook_out(playbook: Playbook) -> PlaybookOut:
    return PlaybookOut.model_validate(
        {name: getattr(playbook, name) for name in PlaybookOut.model_fields}
    )


async def list_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    rows = await session.execute(
        select(Playbook).where(Playbook.user_id == user_id).order_by(Playbook.name, Playbook.id)
    )
    return list(rows.scalars())


async def get_playbook(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, *, lock: bool = False
) -> Playbook:
    query = select(Playbook).where(Playbook.id == playbook_id, Playbook.user_id == user_id)
    if lock:
        query = query.with_for_update()
    playbook = (await session.execute(query)).scalar_one_or_none()
    if playbook is None:
        raise NotFoundError("playbook not found")
    return playbook


async def update_playbook_rules(
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    rules: PlaybookRulesIn,
) -> Playbook:
    """Validate the three documents together and store their normalised form."""
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    try:
        parsed = PlaybookRules.parse(rules.trigger, rules.conditions, rules.actions)
    except PlaybookRuleError as exc:
        raise InvalidPlaybookError(str(exc)) from exc
    playbook.trigger, playbook.conditions, playbook.actions = parsed.to_json()
    if rules.confidence_threshold is not None:
        playbook.confidence_threshold = rules.confidence_threshold
    if rules.requires_approval is not None:
        playbook.requires_approval = rules.requires_approval
    await log_event(
        session, "playbook.updated", user_id=user_id, entity="playbook", entity_id=playbook.id
    )
    await session.flush()
    await session.refresh(playbook)
    return playbook


async def patch_playbook_flags(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, patch: PlaybookPatch
) -> Playbook:
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    if patch.enabled is not None and patch.enabled != playbook.enabled:
        playbook.enabled = patch.enabled
        await log_event(
            session,
            "playbook.enabled" if patch.enabled else "playbook.disabled",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
        )
    if (
        patch.requires_approval is not None
        and patch.requires_approval != playbook.requires_approval
    ):
        playbook.requires_approval = patch.requires_approval
        await log_event(
            session,
            "playbook.updated",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
            payload={"requires_approval": patch.requires_approval},
        )
    await session.flush()
    await session.refresh(playbook)
    return playbook


@router.get("/playbooks", response_model=list[PlaybookOut])
async def get_playbooks(user_id: CurrentUser, session: SessionDep) -> list[PlaybookOut]:
    return [playbook_out(p) for p in await list_playbooks(session, user_id)]


@router.get("/playbooks/{playbook_id}", response_model=PlaybookOut)
async def get_one_playbook(
    playbook_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    return playbook_out(await get_playbook(session, user_id, playbook_id))


@router.put(
    "/playbooks/{playbook_id}/rules",
    response_model=PlaybookOut,
    responses={422: {"description": "the trigger, conditions or actions are not valid"}},
)
async def put_playbook_rules(
    playbook_id: uuid.UUID, body: PlaybookRulesIn, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    """Replace the trigger, conditions and actions (versioned JSON; see domain.playbook_rules)."""
    playbook = await update_playbook_rules(session, user_id, playbook_id, body)
    await session.commit()
    return playbook_out(playbook)


@router.patch("/playbooks/{playbook_id}", response_model=PlaybookOut)
async def patch_playbook(
    playbook_id: uuid.UUID, body: PlaybookPatch, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    """Enable or disable a playbook, or switch whether it needs a person's approval."""
    playbook = await patch_playbook_flags(session, user_id, playbook_id, body)
    await session.commit()
    return playbook_out(playbook)


# --- usage and plan --------------------------------------------------------------------------


class UsageOut(BaseModel):
    summary: UsageSummary
    history: list[UsagePeriod]  # newest first


async def usage_for(session: AsyncSession, user_id: uuid.UUID) -> UsageOut:
    # Every merchant gets a trial at sign-up; an account made before that still gets one.
    await ensure_subscription(session, user_id)
    summary = await _usage_summary(session, user_id)
    history = await get_usage_history(session, user_id)
    return UsageOut(summary=summary, history=history)


@router.get("/usage", response_model=UsageOut)
async def get_usage(user_id: CurrentUser, session: SessionDep) -> UsageOut:
    """The current period's counters against the plan's limits, and past periods."""
    usage = await usage_for(session, user_id)
    await session.commit()
    return usage


# --- the audit log ---------------------------------------------------------------------------


class EventOut(BaseModel):
    id: uuid.UUID
    type: str
    entity: str | None
    entity_id: str | None
    payload: dict[str, Any] | None
    created_at: datetime


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None  # opaque; null on the last page


class EventFilter(BaseModel):
    type: str | None = None  # exact, or a prefix when it ends with "*" ("playbook.*")
    entity: str | None = None
    entity_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(event: Event) -> str:
    raw = f"{event.created_at.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, event_id = raw.partition("|")
        found = datetime.fromisoformat(at), uuid.UUID(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequestError("the cursor is not valid: start again from the first page") from exc
    if found[0].tzinfo is None:
        raise BadRequestError("the cursor is not valid: start again from the first page")
    return found


def _aware(moment: datetime) -> datetime:
    # A date typed without a zone means UTC, as the page shows times.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _events_query(user_id: uuid.UUID, where: EventFilter) -> Select[tuple[Event]]:
    query = select(Event).where(Event.user_id == user_id)
    if where.type:
        if where.type.endswith("*"):
            prefix = where.type[:-1].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
            query = query.where(Event.type.like(f"{prefix}%", escape="\\"))
        else:
            query = query.where(Event.type == where.type)
    if where.entity:
        query = query.where(Event.entity == where.entity)
    if where.entity_id:
        query = query.where(Event.entity_id == where.entity_id)
    if where.since:
        query = query.where(Event.created_at >= _aware(where.since))
    if where.until:
        query = query.where(Event.created_at < _aware(where.until))
    return query


async def list_events(
    session: AsyncSession,
    user_id: uuid.UUID,
    where: EventFilter,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> EventPage:
    """Newest first; the cursor is the (created_at, id) of the page's last event, so a
    page is an index range scan however deep, and new events never shift later pages."""
    query = _events_query(user_id, where)
    if cursor:
        at, event_id = decode_cursor(cursor)
        query = query.where(
            or_(Event.created_at < at, and_(Event.created_at == at, Event.id < event_id))
        )
    rows = list(
        (
            await session.execute(
                query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(
        events=[EventOut.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=encode_cursor(rows[-1]) if more and rows else None,
    )


async def event_kinds(session: AsyncSession, user_id: uuid.UUID) -> tuple[list[str], list[str]]:
    """The event types and entities this merchant has, for the filter's choices."""
    types = await session.execute(
        select(Event.type).where(Event.user_id == user_id).distinct().order_by(Event.type)
    )
    entities = await session.execute(
        select(Event.entity)
        .where(Event.user_id == user_id, Event.entity.is_not(None))
        .distinct()
        .order_by(Event.entity)
    )
    return list(types.scalars()), [e for e in entities.scalars() if e]


@router.get("/events", response_model=EventPage)
async def get_events(
    user_id: CurrentUser,
    session: SessionDep,
    type: Annotated[
        str | None, Query(max_length=100, description='exact, or a prefix ending in "*"')
    ] = None,
    entity: Annotated[str | None, Query(max_length=50)] = None,
    entity_id: Annotated[str | None, Query(max_length=255)] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = 50,
) -> EventPage:
    """The audit log, newest first."""
    where = EventFilter(type=type, entity=entity, entity_id=entity_id, since=since, until=until)
    return await list_events(session, user_id, where, cursor=cursor, limit=limit)
