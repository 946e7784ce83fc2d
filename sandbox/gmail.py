"""An in-memory stand-in for the Gmail REST API (v1), plus a Pub/Sub-style push sender.

It speaks the subset deskpilot uses, with the request and response field names of
Google's discovery document (a test checks them): `watch`, `stop`, `history`,
`messages` (list, get with format=raw or minimal, send). Mailboxes are found by the
bearer token, as Google finds the account behind `users/me`.

Threading follows Gmail's documented rule: a sent message joins a thread only when the
request names the `threadId`, the subject matches the thread's (after Re:/Fwd:), and
In-Reply-To or References name a message already in the thread; an inbound message joins
by the same headers and subject. Anything else starts a new thread.

History is kept for the last `history_retention` changes of each mailbox; a
`startHistoryId` older than that gets the 404 Gmail answers, so clients do a full sync.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse

from integrations.mail_threading import normalize_subject

WATCH_LIFETIME_MS = 7 * 24 * 3600 * 1000  # Gmail lets a watch lapse after 7 days
FIRST_HISTORY_ID = 1000  # real ids are large and arbitrary; clients must not assume 1
DEFAULT_PUSH_SUBSCRIPTION = "projects/deskpilot-sandbox/subscriptions/gmail-push"

# Module level: FastAPI resolves the (postponed) annotations in the module's namespace.
Auth = Annotated[str | None, Header(alias="Authorization")]


class GmailApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, code: int, message: str, status: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason  # Google's `errors[].reason`, e.g. userRateLimitExceeded

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.reason:
            error["errors"] = [
                {"message": self.message, "domain": "usageLimits", "reason": self.reason}
            ]
        return JSONResponse({"error": error}, status_code=self.code)


def _not_found() -> GmailApiError:
    return GmailApiError(404, "Requested entity was not found.", "NOT_FOUND")


def _bad_request(message: str) -> GmailApiError:
    return GmailApiError(400, message, "INVALID_ARGUMENT")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64url_decode(text: str) -> bytes:
    # Gmail accepts padded and unpadded base64url.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ids(header_value: str | None) -> list[str]:
    return [part for part in (header_value or "").split() if part.startswith("<")]


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    label_ids: list[str]
    raw: bytes
    history_id: int
    internal_date_ms: int
    message_id: str | None  # the RFC 5322 Message-ID header
    subject: str

    @property
    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=default)

    def snippet(self) -> str:
        parsed = self.parsed
        body = (
            parsed.get_body(preferencelist=("plain", "html")) if parsed.is_multipart() else parsed
        )
        try:
            text = body.get_content() if body is not None else ""
        except (LookupError, KeyError, AttributeError):
            text = ""
        return " ".join(str(text).split())[:200]

    def resource(self, fmt: str) -> dict[str, Any]:
        """The `Message` resource; int64 fields are strings, as Google serialises them."""
        body: dict[str, Any] = {
            "id": self.id,
            "threadId": self.thread_id,
            "labelIds": list(self.label_ids),
            "snippet": self.snippet(),
            "historyId": str(self.history_id),
            "internalDate": str(self.internal_date_ms),
            "sizeEstimate": len(self.raw),
        }
        if fmt == "raw":
            body["raw"] = b64url(self.raw)
        return body


@dataclass
class Watch:
    topic_name: str
    label_ids: list[str]
    label_filter_behavior: str
    expiration_ms: int


@dataclass
class Mailbox:
    address: str
    token: str
    history_retention: int
    history_id: int = FIRST_HISTORY_ID
    # Changes older than this id were dropped: a start id below it gets a 404.
    oldest_history_id: int = FIRST_HISTORY_ID
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    history: list[tuple[int, str]] = field(default_factory=list)  # (history id, message id)
    sent: list[StoredMessage] = field(default_factory=list)
    watch: Watch | None = None
    # Statuses (optionally with a reason) to answer the next requests with, to exercise a
    # client's error handling; Gmail's quota errors are 403 with reason userRateLimitExceeded.
    fail_next: list[int | tuple[int, str]] = field(default_factory=list)

    def _record(self, message_id: str) -> int:
        self.history_id += 1
        self.history.append((self.history_id, message_id))
        if len(self.history) > self.history_retention:
            dropped = self.history[: len(self.history) - self.history_retention]
            del self.history[: len(dropped)]
            self.oldest_history_id = dropped[-1][0]
        return self.history_id

    def _thread_for(self, parsed: EmailMessage, requested: str | None, *, outbound: bool) -> str:
        """The thread a new message joins, or "" for a new one (see the module docstring)."""
        if outbound and not requested:
            return ""
        referenced = set(_ids(parsed.get("References"))) | set(_ids(parsed.get("In-Reply-To")))
        if not referenced:
            return ""
        subject = normalize_subject(str(parsed.get("Subject") or ""))
        for message in self.messages.values():
            if requested and message.thread_id != requested:
                continue
            if message.message_id in referenced and normalize_subject(message.subject) == subject:
                return message.thread_id
        return ""

    def add(
        self, raw: bytes, label_ids: list[str], requested_thread: str | None, *, outbound: bool
    ) -> StoredMessage:
        parsed = message_from_bytes(raw, policy=default)
        gmail_id = secrets.token_hex(8)
        thread_id = self._thread_for(parsed, requested_thread, outbound=outbound) or gmail_id
        try:
            dated = parsedate_to_datetime(str(parsed["Date"])) if parsed["Date"] else None
        except (TypeError, ValueError):
            dated = None
        internal = int((dated.timestamp() if dated else time.time()) * 1000)
        if outbound:
            internal = int(time.time() * 1000)  # Gmail stamps a sent message with the send time
        message = StoredMessage(
            id=gmail_id,
            thread_id=thread_id,
            label_ids=label_ids,
            raw=raw,
            history_id=0,
            internal_date_ms=internal,
            message_id=(_ids(parsed.get("Message-ID")) or [None])[0],
            subject=str(parsed.get("Subject") or ""),
        )
        self.messages[gmail_id] = message
        message.history_id = self._record(gmail_id)
        if outbound:
            self.sent.append(message)
        return message


class GmailSandbox:
    """Mailboxes by bearer token; `router()` serves them, the rest are test helpers."""

    def __init__(self, *, history_retention: int = 1000) -> None:
        self.history_retention = history_retention
        self._by_token: dict[str, Mailbox] = {}
        self._by_address: dict[str, Mailbox] = {}
        self._lock = threading.Lock()

    def add_mailbox(self, address: str, token: str | None = None) -> Mailbox:
        mailbox = Mailbox(
            address=address,
            token=token or f"ya29.sandbox-{uuid.uuid4().hex}",
            history_retention=self.history_retention,
        )
        with self._lock:
            self._by_token[mailbox.token] = mailbox
            self._by_address[address.lower()] = mailbox
        return mailbox

    def mailbox(self, address: str) -> Mailbox:
        return self._by_address[address.lower()]

    def deliver(
        self, address: str, raw: bytes, label_ids: list[str] | None = None
    ) -> StoredMessage:
        """An inbound message arrives (not a Gmail call): threaded by its headers and subject."""
        with self._lock:
            return self.mailbox(address).add(
                raw, label_ids or ["INBOX", "UNREAD"], None, outbound=False
            )

    def sent(self, address: str) -> list[StoredMessage]:
        return list(self.mailbox(address).sent)

    def _authorize(self, authorization: str | None) -> Mailbox:
        scheme, _, token = (authorization or "").partition(" ")
        mailbox = self._by_token.get(token) if scheme.lower() == "bearer" else None
        if mailbox is None:
            raise GmailApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "UNAUTHENTICATED",
            )
        if mailbox.fail_next:
            failure = mailbox.fail_next.pop(0)
            code, reason = failure if isinstance(failure, tuple) else (failure, None)
            status = {429: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED"}.get(code, "UNAVAILABLE")
            raise GmailApiError(code, f"sandbox failure injected: HTTP {code}", status, reason)
        return mailbox

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/gmail/v1/users/me")

        def answer(work: Any) -> Any:
            try:
                with self._lock:
                    return work()
            except GmailApiError as exc:
                return exc.response()

        @api.post("/watch")
        async def watch(authorization: Auth, body: Annotated[dict[str, Any], Body()]) -> Any:
            def run() -> dict[str, str]:
                mailbox = self._authorize(authorization)
                topic = body.get("topicName")
                if not isinstance(topic, str) or not topic.startswith("projects/"):
                    raise _bad_request("Invalid topicName does not match projects/*/topics/*")
                behavior = body.get("labelFilterBehavior") or body.get("labelFilterAction")
                expiration = int(time.time() * 1000) + WATCH_LIFETIME_MS
                mailbox.watch = Watch(
                    topic_name=topic,
                    label_ids=list(body.get("labelIds") or []),
                    label_filter_behavior=str(behavior or "include").lower(),
                    expiration_ms=expiration,
                )
                return {"historyId": str(mailbox.history_id), "expiration": str(expiration)}

            return answer(run)

        @api.post("/stop")
        async def stop(authorization: Auth) -> Any:
            def run() -> Response:
                self._authorize(authorization).watch = None
                return Response(status_code=204)

            return answer(run)

        @api.get("/history")
        async def history(
            authorization: Auth,
            start_history_id: Annotated[str | None, Query(alias="startHistoryId")] = None,
            history_types: Annotated[list[str] | None, Query(alias="historyTypes")] = None,
            page_token: Annotated[str | None, Query(alias="pageToken")] = None,
            max_results: Annotated[int, Query(alias="maxResults", ge=1, le=500)] = 100,
        ) -> Any:
            def run() -> dict[str, Any]:
                mailbox = self._authorize(authorization)
                if not start_history_id or not start_history_id.isdigit():
                    raise _bad_request("Invalid startHistoryId")
                if history_types and set(history_types) - {"messageAdded"}:
                    raise _bad_request("the sandbox only records messageAdded history")
                start = int(start_history_id)
                if start < mailbox.oldest_history_id:
                    raise _not_found()
                records = [(hid, mid) for hid, mid in mailbox.history if hid > start]
                offset = _offset(page_token)
                page = records[offset : offset + max_results]
                body: dict[str, Any] = {"historyId": str(mailbox.history_id)}
                if page:
                    body["history"] = [
                        {
                            "id": str(hid),
                            "messages": [_summary(mailbox.messages[mid])],
                            "messagesAdded": [{"message": _summary(mailbox.messages[mid])}],
                        }
                        for hid, mid in page
                    ]
                if offset + max_results < len(records):
                    body["nextPageToken"] = _token(offset + max_results)
                return body

            return answer(run)

        @api.get("/messages")
        async def list_messages(
            authorization: Auth,
            q: str | None = None,
            label_ids: Annotated[list[str] | None, Query(alias="labelIds")] = None,
            page_token: Annotated[str | None, Query(alias="pageToken")] = None,
            max_results: Annotated[int, Query(alias="maxResults", ge=1, le=500)] = 100,
        ) -> Any:
            def run() -> dict[str, Any]:
                mailbox = self._authorize(authorization)
                matches = [
                    m
                    for m in sorted(mailbox.messages.values(), key=lambda m: -m.history_id)
                    if all(label in m.label_ids for label in label_ids or [])
                    and _matches_query(m, q or "")
                ]
                offset = _offset(page_token)
                page = matches[offset : offset + max_results]
                body: dict[str, Any] = {"resultSizeEstimate": len(matches)}
                if page:
                    body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
                if offset + max_results < len(matches):
                    body["nextPageToken"] = _token(offset + max_results)
                return body

            return answer(run)

        @api.get("/messages/{message_id}")
        async def get_message(authorization: Auth, message_id: str, format: str = "full") -> Any:
            def run() -> dict[str, Any]:
                mailbox = self._authorize(authorization)
                if format not in ("raw", "minimal"):
                    raise _bad_request("the sandbox serves format=raw and format=minimal only")
                message = mailbox.messages.get(message_id)
                if message is None:
                    raise _not_found()
                return message.resource(format)

            return answer(run)

        @api.post("/messages/send")
        async def send(authorization: Auth, body: Annotated[dict[str, Any], Body()]) -> Any:
            def run() -> dict[str, Any]:
                mailbox = self._authorize(authorization)
                raw = body.get("raw")
                if not isinstance(raw, str) or not raw:
                    raise _bad_request(
                        "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
                    )
                try:
                    decoded = _b64url_decode(raw)
                except (binascii.Error, ValueError) as exc:
                    raise _bad_request("Invalid value for ByteString") from exc
                thread = body.get("threadId")
                if thread is not None and not any(
                    m.thread_id == thread for m in mailbox.messages.values()
                ):
                    raise _not_found()
                sent = mailbox.add(decoded, ["SENT"], thread, outbound=True)
                return {"id": sent.id, "threadId": sent.thread_id, "labelIds": sent.label_ids}

            return answer(run)

        return api


def _summary(message: StoredMessage) -> dict[str, Any]:
    return {"id": message.id, "threadId": message.thread_id, "labelIds": list(message.label_ids)}


# Page tokens are opaque to clients; an offset is enough for an in-memory list.
def _token(offset: int) -> str:
    return b64url(f"o:{offset}".encode())


def _offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        return int(_b64url_decode(page_token).decode().removeprefix("o:"))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise _bad_request("Invalid pageToken") from exc


def _matches_query(message: StoredMessage, query: str) -> bool:
    """A small part of Gmail's search syntax: in:/label:, their negations, after:/before:
    (epoch seconds or YYYY/MM/DD) and plain words matched in the raw message."""
    for term in query.split():
        negate = term.startswith("-")
        term = term.removeprefix("-")
        key, _, value = term.partition(":")
        if key in ("in", "label") and value:
            hit = value.upper() in message.label_ids
        elif key in ("after", "before") and value:
            if value.isdigit():
                bound = int(value) * 1000
            else:
                bound = int(datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC).timestamp())
                bound *= 1000
            hit = (
                message.internal_date_ms > bound
                if key == "after"
                else message.internal_date_ms < bound
            )
        else:
            hit = term.lower().encode() in message.raw.lower()
        if hit == negate:
            return False
    return True


async def push_notification(
    url: str,
    *,
    email_address: str,
    history_id: int | str,
    secret: str | None = None,
    subscription: str = DEFAULT_PUSH_SUBSCRIPTION,
    http: httpx.AsyncClient | None = None,
) -> httpx.Response:
    """POST a Pub/Sub push envelope for a Gmail change, as Google's push subscription does.

    The secret travels as the `token` query parameter: a Pub/Sub push subscription can
    only be given a URL (or OIDC), not custom headers, so the endpoint URL carries it.
    `historyId` is a number in real pushes; pass a string to test a lenient receiver.
    """
    data = json.dumps({"emailAddress": email_address, "historyId": history_id}).encode()
    envelope = {
        "message": {
            "data": b64url(data),
            "messageId": str(secrets.randbelow(10**16)),
            "publishTime": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        },
        "subscription": subscription,
    }
    params = {"token": secret} if secret is not None else None
    if http is not None:
        return await http.post(url, json=envelope, params=params)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, json=envelope, params=params)
