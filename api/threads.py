"""The inbox as JSON: GET /api/threads (a page of threads) and GET /api/threads/{id}."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from api.schemas import (
    ThreadDetail,
    ThreadPage,
    error_responses,
    thread_detail_out,
    thread_page_out,
)
from kernel.values import STORABLE_TEXT
from models.inbox_listing import Cursor, InboxView, list_threads
from models.thread_view import load_thread

router = APIRouter(prefix="/api/threads", tags=["threads"])

MAX_LIMIT = 100


@router.get(
    "",
    response_model=ThreadPage,
    responses=error_responses((400, "the cursor is not one this API issued"), 401, 422),
)
async def get_threads(
    user_id: CurrentUser,
    session: SessionDep,
    view: Annotated[
        InboxView,
        Query(
            description="needs_decision: a PENDING action waits; handled: nothing pending or "
            "approved-and-running (the latest action ended, or none was needed); all"
        ),
    ] = InboxView.all,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=STORABLE_TEXT, description="customer, order or words"),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> ThreadPage:
    after = Cursor.decode(cursor) if cursor else None  # InvalidCursorError answers 400
    page = await list_threads(session, user_id, view=view, q=q, cursor=after, limit=limit)
    return thread_page_out(page)


@router.get("/{thread_id}", response_model=ThreadDetail, responses=error_responses(401, 404, 422))
async def get_thread(
    thread_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> ThreadDetail:
    return thread_detail_out(await load_thread(session, user_id, thread_id))
