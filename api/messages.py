"""GET /api/messages/{id}: a message with its thread, latest suggestion and action, and the
playbook that handled it.

Every answer carries an ETag. A client that sends it back in If-None-Match with `?wait=S`
is answered as soon as the message changes, or with 304 after S seconds: a long poll,
woken by the database's change notices (models/message_changes.py) instead of by polling.
With `until=STATUS` (repeatable) it is answered only once the action reaches one of them,
so a client waiting for an outcome asks once rather than once per intermediate change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Select, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.deps import CurrentUser, SessionsDep
from api.schemas import ActionOut, MessageOut, SuggestionOut, ThreadOut, error_responses
from kernel.enums import ActionStatus
from kernel.errors import NotFound
from models.action import Action
from models.conversation import Message, Thread
from models.message_changes import MessageChanges
from models.playbook import Playbook, PlaybookExecution
from models.suggestion import AISuggestion
from services.playbook_executions import MessagePlaybookOut

router = APIRouter(prefix="/api/messages", tags=["messages"])

# Under the server's shutdown grace and a proxy's idle timeout; a client asks again.
MAX_WAIT_S = 25.0
# Without change notices (the listener is down or not started) a waiter re-reads this often.
FALLBACK_S = 1.0


class MessageDetail(BaseModel):
    message: MessageOut
    thread: ThreadOut
    suggestion: SuggestionOut | None
    action: ActionOut | None
    workflow_id: str | None
    playbook: MessagePlaybookOut | None  # the newest playbook execution for this message


@router.get(
    "/{message_id}",
    response_model=MessageDetail,
    responses={
        304: {"description": "unchanged after `wait` seconds: still the If-None-Match ETag"},
        **error_responses(401, 404, 422),
    },
)
async def get_message(
    message_id: uuid.UUID,
    user_id: CurrentUser,
    sessions: SessionsDep,
    request: Request,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for a change from If-None-Match"),
    ] = 0,
    until: Annotated[
        list[ActionStatus] | None,
        Query(
            description="with `wait`: answer only once the action's status is one of these "
            "(or when the wait ends)"
        ),
    ] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    changes: MessageChanges | None = getattr(request.app.state, "message_changes", None)
    deadline = time.monotonic() + wait
    # Without a listener (an app served without its lifespan) nothing wakes a waiter early.
    watching = changes.watching(message_id) if changes else contextlib.nullcontext(asyncio.Event())
    with watching as changed:
        while True:
            changed.clear()  # before the read: a change committed during it wakes us
            async with sessions() as session:
                detail = await _detail(session, message_id, user_id)
            remaining = deadline - time.monotonic()
            wanted = not until or (detail.action is not None and detail.action.status in until)
            if wanted or remaining <= 0:  # else not worth serialising: it waits on
                body = detail.model_dump_json().encode()
                etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
                if etag != if_none_match or remaining <= 0:
                    break
            listening = changes is not None and changes.listening
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    changed.wait(), remaining if listening else min(remaining, FALLBACK_S)
                )
    if etag == if_none_match:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _detail_statement() -> Select[Any]:
    """The message, its thread, its newest suggestion, its action and its newest playbook
    execution, in one statement: one snapshot, so the workflow's suggestion and action
    (committed together) never show one without the other. Scoped by owner in the query:
    another merchant's message is simply not found."""
    owner = bindparam("user_id")
    latest_suggestion = (
        select(AISuggestion)
        .where(AISuggestion.message_id == Message.id)
        .order_by(AISuggestion.created_at.desc())
        .limit(1)
        .lateral()
    )
    newest_run = (
        select(
            Playbook.id.label("playbook_id"),
            Playbook.name.label("playbook_name"),
            PlaybookExecution.id.label("execution_id"),
        )
        .join(Playbook, Playbook.id == PlaybookExecution.playbook_id)
        .where(
            PlaybookExecution.message_id == Message.id,
            PlaybookExecution.user_id == owner,
            Playbook.user_id == owner,
        )
        .order_by(PlaybookExecution.created_at.desc(), PlaybookExecution.id.desc())
        .limit(1)
        .lateral()
    )
    return (
        select(
            Message,
            Thread,
            aliased(AISuggestion, latest_suggestion),
            Action,
            newest_run.c.playbook_id,
            newest_run.c.playbook_name,
            newest_run.c.execution_id,
        )
        .join(Thread, Thread.id == Message.thread_id)
        .outerjoin(latest_suggestion, true())
        .outerjoin(Action, (Action.message_id == Message.id) & (Action.user_id == owner))
        .outerjoin(newest_run, true())
        .where(Message.id == bindparam("message_id"), Message.user_id == owner)
    )


# Built once: a long poll reads it on every wake.
_DETAIL = _detail_statement()


async def _detail(
    session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID
) -> MessageDetail:
    # A single statement needs no transaction around it: autocommit saves a long poll's
    # BEGIN and COMMIT on every wake.
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    found = (
        await session.execute(_DETAIL, {"message_id": message_id, "user_id": user_id})
    ).one_or_none()
    if found is None:
        raise NotFound(f"message {message_id} not found")
    message, thread, suggestion, action, playbook_id, playbook_name, execution_id = found
    return MessageDetail(
        message=MessageOut.model_validate(message, from_attributes=True),
        thread=ThreadOut.model_validate(thread, from_attributes=True),
        suggestion=None
        if suggestion is None
        else SuggestionOut.model_validate(suggestion, from_attributes=True),
        action=None if action is None else ActionOut.model_validate(action, from_attributes=True),
        workflow_id=message.workflow_id,
        playbook=None
        if playbook_id is None
        else MessagePlaybookOut(id=playbook_id, name=playbook_name, execution_id=execution_id),
    )
