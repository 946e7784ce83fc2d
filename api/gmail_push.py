"""POST /gmail/push: Gmail's change notifications, delivered by a Pub/Sub push subscription.

A push subscription can only be given a URL, so the shared secret travels in it
(`?token=`). The push only says "this mailbox changed": it wakes the mailbox's
MailboxSyncWorkflow, which syncs from the history id we stored. Answering 2xx
acknowledges the message; any other answer makes Pub/Sub deliver it again, which is
what we want only when we could not hand it on (Temporal unreachable).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.body import read_limited_body
from api.deps import SessionsDep, SettingsDep, TaskQueueDep, TemporalDep
from api.schemas import error_responses
from kernel.errors import Invalid, Transient, Unauthorized
from models.gmail import GmailMetadata, find_gmail_by_address
from services.mailbox_workflows import ensure_mailbox_sync

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/gmail", tags=["gmail"])

MAX_PUSH_BYTES = 64 * 1024  # an envelope is a few hundred bytes


def parse_push(body: bytes) -> tuple[str, int]:
    """(emailAddress, historyId) from a Pub/Sub push envelope; Invalid (400) says what is wrong."""
    try:
        envelope: Any = json.loads(body)
        data = envelope["message"]["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Invalid("the body is not a Pub/Sub push envelope with message.data") from exc
    if not isinstance(data, str):
        raise Invalid("message.data must be a base64 string")
    try:
        decoded = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        notice = json.loads(decoded)
    except (binascii.Error, ValueError) as exc:
        raise Invalid("message.data is not base64-encoded JSON") from exc
    if not isinstance(notice, dict):
        raise Invalid("message.data must hold a JSON object")
    address, history_id = notice.get("emailAddress"), notice.get("historyId")
    # A NUL cannot be in any stored address, and PostgreSQL refuses to even compare one.
    if not isinstance(address, str) or "@" not in address or "\x00" in address:
        raise Invalid("message.data has no emailAddress")
    # Gmail sends a number; some relays turn it into a string.
    if isinstance(history_id, str) and history_id.isdigit():
        history_id = int(history_id)
    if not isinstance(history_id, int) or isinstance(history_id, bool) or history_id < 0:
        raise Invalid("message.data has no usable historyId")
    return address, history_id


@router.post(
    "/push",
    status_code=204,
    response_class=Response,
    responses=error_responses(
        (400, "not a Pub/Sub push envelope of a Gmail notification"),
        (401, "the token is not GMAIL_PUSH_SECRET"),
        413,
        422,
        (503, "Gmail push is not configured, or Temporal is unreachable: deliver again"),
    ),
)
async def push(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    task_queue: TaskQueueDep,
    token: Annotated[str | None, Query(description="the GMAIL_PUSH_SECRET")] = None,
) -> Response:
    secret = settings.gmail_push_secret
    if secret is None:
        raise Transient("Gmail push is not configured: set GMAIL_PUSH_SECRET")
    if token is None or not hmac.compare_digest(token.encode(), secret.get_secret_value().encode()):
        raise Unauthorized("the push token does not match GMAIL_PUSH_SECRET")
    body = await read_limited_body(request, MAX_PUSH_BYTES)
    address, history_id = parse_push(body)

    async with sessions() as session:
        connection = await find_gmail_by_address(session, address)
        owner = (connection.id, connection.user_id) if connection else None
        disabled = bool(connection and GmailMetadata.model_validate(connection.metadata_).disabled)
    if owner is None or disabled:
        # Acknowledged all the same: redelivering it would not make the mailbox ours.
        logger.info("gmail push for a mailbox not syncing", extra={"disabled": disabled})
        return Response(status_code=204)
    try:
        await ensure_mailbox_sync(
            temporal,
            settings,
            owner[0],
            owner[1],
            pushed_history_id=history_id,
            task_queue=task_queue,
        )
    except Exception as exc:
        # Not acknowledged: Pub/Sub delivers it again, and polling covers us meanwhile.
        logger.exception("could not signal the mailbox sync")
        raise Transient("could not reach Temporal; deliver again later") from exc
    return Response(status_code=204)
