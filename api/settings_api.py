"""The merchant's settings as JSON: connections, playbooks and their executions, automation,
usage and plan, the audit log.

The queries and changes are services (`services.connections`, `services.playbook_settings`,
`services.playbook_catalog`, `services.playbook_executions`, `services.automation_settings`,
`services.threshold_proposals`, `services.usage`) and models (`models.audit_log`) shared
with the HTML pages (api/settings_pages.py), so a page and its endpoint can never disagree
on scoping: every lookup is by (owner, id) and another owner's id is simply not found.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from api.deps import CurrentUser, OptionalTemporalDep, SessionDep, SettingsDep, TaskQueueDep
from api.schemas import error_responses
from kernel.enums import PlaybookCategory
from kernel.values import STORABLE_TEXT
from models.audit_log import EventFilter, EventPage, list_events
from models.playbook import Playbook
from services.alias_test_email import prepare_alias_test, start_alias_test
from services.aliases import AliasCreate, create_alias, delete_alias
from services.automation_settings import (
    AutomationSettingsOut,
    AutomationSettingsPatch,
    get_automation_settings,
    update_automation_settings,
)
from services.connections import (
    ConnectionOut,
    after_connection_change,
    connection_out,
    list_connections,
    set_connection_enabled,
)
from services.playbook_backtest import BacktestIn, BacktestOut, backtest
from services.playbook_catalog import PlaybookCreate, create_playbook, delete_playbook
from services.playbook_dry_run import DryRunIn, DryRunOut, dry_run
from services.playbook_executions import ExecutionPage, list_executions
from services.playbook_settings import (
    PlaybookPatch,
    PlaybookRulesIn,
    get_playbook,
    list_playbooks,
    patch_playbook_flags,
    update_playbook_rules,
)
from services.threshold_proposals import (
    DEFAULT_LAST,
    MAX_LAST,
    ThresholdProposalsOut,
    threshold_proposals,
)
from services.usage import UsageOut, usage_for

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["settings"])

MAX_EVENTS_LIMIT = 100
MAX_EXECUTIONS_LIMIT = 100


# --- connections -----------------------------------------------------------------------------


class ConnectionPatch(BaseModel):
    enabled: bool


@router.get("/connections", response_model=list[ConnectionOut], responses=error_responses(401))
async def get_connections(user_id: CurrentUser, session: SessionDep) -> list[ConnectionOut]:
    """The merchant's Shopify stores, Gmail mailboxes and forwarding aliases."""
    return await list_connections(session, user_id)


@router.patch(
    "/connections/{connection_id}",
    response_model=ConnectionOut,
    responses=error_responses(400, 401, 403, 404, 422),
)
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


@router.post(
    "/connections",
    response_model=ConnectionOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        400,
        401,
        403,
        (409, "no free alias could be generated"),
        (422, "the type is not CUSTOM_EMAIL, or the shop is not one of the merchant's stores"),
    ),
)
async def post_connection(
    body: AliasCreate, user_id: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ConnectionOut:
    """Create a forwarding alias (type CUSTOM_EMAIL) for one of the merchant's Shopify
    stores, on the configured inbound domain: mail forwarded to it lands in the inbox."""
    connection = await create_alias(session, user_id, body, settings.inbound_domain)
    await session.commit()
    return connection_out(connection)


@router.delete(
    "/connections/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(
        401, 403, 404, (409, "only a forwarding alias is deleted; others are disabled"), 422
    ),
)
async def remove_connection(
    connection_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> None:
    """Delete a forwarding alias; the messages it brought in stay in the inbox."""
    await delete_alias(session, user_id, connection_id)
    await session.commit()


class TestEmailQueued(BaseModel):
    workflow_id: str
    requested_at: datetime


@router.post(
    "/connections/{connection_id}/test-email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestEmailQueued,
    responses=error_responses(
        401,
        403,
        404,
        (409, "not a forwarding alias, or the alias is disabled"),
        (429, "a test was asked for under 30 seconds ago"),
        422,
        503,
    ),
)
async def post_test_email(
    connection_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    task_queue: TaskQueueDep,
) -> TestEmailQueued:
    """Mail a test to the alias through the outbound relay and the inbound domain's MX;
    `GET /api/connections` shows `test_email_received_at` once the receiver has it."""
    now = datetime.now(UTC)
    token = await prepare_alias_test(session, user_id, connection_id, now)
    await session.commit()
    workflow_id = await start_alias_test(
        temporal, user_id, connection_id, token, task_queue=task_queue
    )
    return TestEmailQueued(workflow_id=workflow_id, requested_at=now)


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
    priority: int  # lower runs first
    stop_processing: bool  # no later playbook runs after this one matched
    run_once_per_thread: bool
    execution_count: int
    last_executed_at: datetime | None
    consecutive_failures: int
    disabled_reason: str | None  # why it paused itself, if it did
    created_at: datetime
    updated_at: datetime


def playbook_out(playbook: Playbook) -> PlaybookOut:
    return PlaybookOut.model_validate(
        {name: getattr(playbook, name) for name in PlaybookOut.model_fields}
    )


@router.get("/playbooks", response_model=list[PlaybookOut], responses=error_responses(401))
async def get_playbooks(user_id: CurrentUser, session: SessionDep) -> list[PlaybookOut]:
    return [playbook_out(p) for p in await list_playbooks(session, user_id)]


@router.post(
    "/playbooks",
    response_model=PlaybookOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        400, 401, 403, (422, "the body, or its trigger, conditions or actions, are not valid")
    ),
)
async def post_playbook(
    body: PlaybookCreate, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    """Create a playbook of the merchant's own (category CUSTOM)."""
    playbook = await create_playbook(session, user_id, body)
    await session.commit()
    return playbook_out(playbook)


# Before "/playbooks/{playbook_id}", which would otherwise take "thresholds" for an id.
@router.get(
    "/playbooks/thresholds",
    response_model=ThresholdProposalsOut,
    responses=error_responses(401, 422),
)
async def get_threshold_proposals(
    user_id: CurrentUser,
    session: SessionDep,
    last: Annotated[
        int, Query(ge=1, le=MAX_LAST, description="person decisions read per action type")
    ] = DEFAULT_LAST,
) -> ThresholdProposalsOut:
    """Per action type, the lowest confidence at which the last `last` decisions a person
    took were at least 98% approved unedited, and how many decisions that rests on.
    Only a proposal: no playbook's threshold changes until the merchant saves one."""
    return await threshold_proposals(session, user_id, last=last)


@router.get(
    "/playbooks/{playbook_id}", response_model=PlaybookOut, responses=error_responses(401, 404, 422)
)
async def get_one_playbook(
    playbook_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    return playbook_out(await get_playbook(session, user_id, playbook_id))


@router.put(
    "/playbooks/{playbook_id}/rules",
    response_model=PlaybookOut,
    responses=error_responses(
        400, 401, 403, 404, (422, "the trigger, conditions or actions are not valid")
    ),
)
async def put_playbook_rules(
    playbook_id: uuid.UUID, body: PlaybookRulesIn, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    """Replace the trigger, conditions and actions (versioned JSON; see domain.playbook_rules)."""
    playbook = await update_playbook_rules(session, user_id, playbook_id, body)
    await session.commit()
    return playbook_out(playbook)


@router.patch(
    "/playbooks/{playbook_id}",
    response_model=PlaybookOut,
    responses=error_responses(400, 401, 403, 404, 422),
)
async def patch_playbook(
    playbook_id: uuid.UUID, body: PlaybookPatch, user_id: CurrentUser, session: SessionDep
) -> PlaybookOut:
    """Enable or disable a playbook, or switch whether it needs a person's approval."""
    playbook = await patch_playbook_flags(session, user_id, playbook_id, body)
    await session.commit()
    return playbook_out(playbook)


@router.delete(
    "/playbooks/{playbook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(
        401, 403, 404, (409, "a default playbook can be disabled, not deleted"), 422
    ),
)
async def remove_playbook(
    playbook_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> None:
    """Delete a playbook of the merchant's own, with its executions."""
    await delete_playbook(session, user_id, playbook_id)
    await session.commit()


@router.get(
    "/playbooks/{playbook_id}/executions",
    response_model=ExecutionPage,
    responses=error_responses((400, "the cursor is not one this API issued"), 401, 404, 422),
)
async def get_playbook_executions(
    playbook_id: uuid.UUID,
    user_id: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EXECUTIONS_LIMIT)] = 50,
) -> ExecutionPage:
    """The playbook's executions, newest first."""
    return await list_executions(session, user_id, playbook_id, cursor=cursor, limit=limit)


@router.post(
    "/playbooks/{playbook_id}/test",
    response_model=DryRunOut,
    responses=error_responses(
        400,
        401,
        403,
        (404, "no such playbook or message for this merchant"),
        (422, "the body is not valid, or the playbook's stored rules no longer parse"),
    ),
)
async def dry_run_playbook(
    playbook_id: uuid.UUID, body: DryRunIn, user_id: CurrentUser, session: SessionDep
) -> DryRunOut:
    """A dry run on one of the merchant's messages: whether the playbook would run, each
    condition with its actual value, its actions and what blocks it. Changes nothing."""
    return await dry_run(session, user_id, playbook_id, body.message_id)


@router.post(
    "/playbooks/{playbook_id}/backtest",
    response_model=BacktestOut,
    responses=error_responses(
        400,
        401,
        403,
        (404, "no such playbook for this merchant"),
        (422, "the body or its draft is not valid, or the stored rules no longer parse"),
    ),
)
async def backtest_playbook(
    playbook_id: uuid.UUID, body: BacktestIn, user_id: CurrentUser, session: SessionDep
) -> BacktestOut:
    """Replay the playbook, or a draft of its rules, over the last `days` of inbound messages
    with their stored suggestions, and compare what it would have done with what people
    decided. Changes nothing: no action runs, no mail is sent."""
    return await backtest(session, user_id, playbook_id, body)


# --- automation ------------------------------------------------------------------------------


@router.get(
    "/settings/automation", response_model=AutomationSettingsOut, responses=error_responses(401)
)
async def get_automation(user_id: CurrentUser, session: SessionDep) -> AutomationSettingsOut:
    """The switch that stops all automation, the daily caps and business hours."""
    found = await get_automation_settings(session, user_id)
    await session.commit()  # the defaults, stored on the first read
    return found


@router.patch(
    "/settings/automation",
    response_model=AutomationSettingsOut,
    responses=error_responses(400, 401, 403, 422),
)
async def patch_automation(
    body: AutomationSettingsPatch, user_id: CurrentUser, session: SessionDep
) -> AutomationSettingsOut:
    """Change the given fields; `{"enabled": false}` stops every automatic approval and
    playbook action."""
    changed = await update_automation_settings(session, user_id, body)
    await session.commit()
    return changed


# --- usage and plan --------------------------------------------------------------------------


@router.get("/usage", response_model=UsageOut, responses=error_responses(401))
async def get_usage(user_id: CurrentUser, session: SessionDep) -> UsageOut:
    """The current period's counters against the plan's limits, and past periods."""
    usage = await usage_for(session, user_id)
    await session.commit()
    return usage


# --- the audit log ---------------------------------------------------------------------------


@router.get(
    "/events",
    response_model=EventPage,
    responses=error_responses((400, "the cursor is not valid"), 401, 422),
)
async def get_events(
    user_id: CurrentUser,
    session: SessionDep,
    type: Annotated[
        str | None,
        Query(
            max_length=100, pattern=STORABLE_TEXT, description='exact, or a prefix ending in "*"'
        ),
    ] = None,
    entity: Annotated[str | None, Query(max_length=50, pattern=STORABLE_TEXT)] = None,
    entity_id: Annotated[str | None, Query(max_length=255, pattern=STORABLE_TEXT)] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = 50,
) -> EventPage:
    """The audit log, newest first."""
    where = EventFilter(type=type, entity=entity, entity_id=entity_id, since=since, until=until)
    return await list_events(session, user_id, where, cursor=cursor, limit=limit)
