"""POST /api/inbound/email: a raw RFC 5322 message in, a durable MessageWorkflow out."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.body import read_limited_body
from api.deps import (
    CurrentUser,
    OptionalTemporalDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    TaskQueueDep,
)
from api.schemas import error_responses
from domain.mail.mime import MAX_EMAIL_BYTES, parse_email
from services.ingest import ingest_parsed

router = APIRouter(prefix="/api/inbound", tags=["inbound"])


class InboundAccepted(BaseModel):
    message_id: uuid.UUID  # messages.id
    workflow_id: str


@router.post(
    "/email",
    status_code=202,
    response_model=InboundAccepted,
    responses=error_responses(
        401, 403, 413, (422, "not an RFC 5322 message deskpilot can read (no From, empty...)")
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def receive_email(
    request: Request,
    user_id: CurrentUser,
    session: SessionDep,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
) -> InboundAccepted:
    raw = await read_limited_body(request, MAX_EMAIL_BYTES)
    # Off the event loop: a 25 MB message takes a while to parse, and the API must not wait.
    # MalformedEmailError answers 422, EmailTooLargeError 413.
    parsed = await asyncio.to_thread(parse_email, raw)

    stored = await ingest_parsed(
        session, sessions, temporal, settings, user_id, raw, parsed, task_queue=task_queue
    )
    return InboundAccepted(message_id=stored.message_id, workflow_id=stored.workflow_id)
