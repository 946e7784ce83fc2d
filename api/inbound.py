"""POST /api/inbound/email: a raw RFC 5322 message in, a durable MessageWorkflow out."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import (
    CurrentUser,
    OptionalTemporalDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    TaskQueueDep,
)
from api.errors import MalformedEmailApiError, PayloadTooLargeError
from api.ingest import ingest_parsed
from integrations.mime import MAX_EMAIL_BYTES, EmailTooLargeError, MalformedEmailError, parse_email

router = APIRouter(prefix="/api/inbound", tags=["inbound"])


class InboundAccepted(BaseModel):
    message_id: uuid.UUID  # messages.id
    workflow_id: str


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes the limit instead of buffering it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the message is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"the message is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/email",
    status_code=202,
    response_model=InboundAccepted,
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
    raw = await _read_body(request, MAX_EMAIL_BYTES)
    try:
        parsed = parse_email(raw)
    except EmailTooLargeError as exc:
        raise PayloadTooLargeError(str(exc)) from exc
    except MalformedEmailError as exc:
        raise MalformedEmailApiError(str(exc)) from exc

    stored = await ingest_parsed(
        session, sessions, temporal, settings, user_id, raw, parsed, task_queue=task_queue
    )
    return InboundAccepted(message_id=stored.message_id, workflow_id=stored.workflow_id)
