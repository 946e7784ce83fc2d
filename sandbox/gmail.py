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

Access tokens expire (401, as Google answers) and carry OAuth scopes: a call outside them
gets Google's 403 "insufficient authentication scopes". A change that passes a mailbox's
`watch` is pushed, Pub/Sub style, to every push subscription on the watched topic, from
the running event loop; `flush_pushes()` waits for those deliveries.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
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
from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse

WATCH_LIFETIME_MS = 7 * 24 * 3600 * 1000  # Gmail lets a watch lapse after 7 days
FIRST_HISTORY_ID = 1000  # real ids are large and arbitrary; clients must not assume 1
DEFAULT_PUSH_SUBSCRIPTION = "projects/deskpilot-sandbox/subscriptions/gmail-push"

MAIL_GOOGLE = "https://mail.google.com/"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
# Any one of these lets a token make the call (a subset of what the discovery document
# lists per method: gmail.metadata is left out, as it cannot fetch a raw message).
READ_SCOPES = frozenset({MAIL_GOOGLE, GMAIL_MODIFY, GMAIL_READONLY})
SEND_SCOPES = frozenset({MAIL_GOOGLE, GMAIL_MODIFY, GMAIL_COMPOSE, GMAIL_SEND})

# Module level: FastAPI resolves the (postponed) annotations in the module's namespace.
Auth = Annotated[str | None, Header(alias="Authorization")]


class GmailApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(
        self,
        code: int,
        message: str,
        status: str,
        reason: str | None = None,
        *,
        domain: str = "usageLimits",
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.reason = reason  # Google's `errors[].reason`, e.g. userRateLimitExceeded
        self.domain = domain
        self.detail = detail or message  # Google's `errors[].message`, often terser

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.reason:
            error["errors"] = [
                {"message": self.detail, "domain": self.domain, "reason": self.reason}
            ]
        return JSONResponse({"error": error}, status_code=self.code)


def _not_found() -> GmailApiError:
    return GmailApiError(404, "Requested entity was not found.", "NOT_FOUND")


def _bad_request(message: str) -> GmailApiError:
    return GmailApiError(400, message, "INVALID_ARGUMENT")


def _unauthenticated() -> GmailApiError:
    return GmailApiError(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential.",
        "UNAUTHENTICATED",
        "authError",
        domain="global",
        detail="Invalid Credentials",
    )


def _insufficient_scopes() -> GmailApiError:
    return GmailApiError(
        403,
        "Request had insufficient authentication scopes.",
        "PERMISSION_DENIED",
        "insufficientPermissions",
        domain="global",
        detail="Insufficient Permission",
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64url_decode(text: str) -> bytes:
    # Gmail accepts padded and unpadded base64url.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Gmail keeps a message in its parent's thread only when the subjects match once the
# reply and forward prefixes are gone. Kept apart from deskpilot's own threading on
# purpose: a stand-in that shared our code would hide a bug in it.
_GMAIL_PREFIX = re.compile(r"^\s*(re|fwd?|aw|wg|sv|tr)\s*:\s*", re.IGNORECASE)


def _subject_key(subject: str) -> str:
    text, previous = subject, None
    while text != previous:
        previous, text = text, _GMAIL_PREFIX.sub("", text, count=1)
    return " ".join(text.split()).lower()


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

    def active(self) -> bool:
        return self.expiration_ms > time.time() * 1000

    def passes(self, label_ids: list[str]) -> bool:
        """Gmail's label filter: no labels means every change is pushed."""
        if not self.label_ids:
            return True
        hit = any(label in label_ids for label in self.label_ids)
        return not hit if self.label_filter_behavior == "exclude" else hit


@dataclass
class PushSubscription:
    name: str  # projects/{project}/subscriptions/{id}
    topic_name: str
    push_endpoint: str  # may carry ?token=SECRET, as a real push subscription URL does


@dataclass
class Push:
    """One notification and what its receiver answered (for tests)."""

    subscription: str
    endpoint: str
    email_address: str
    history_id: int
    status: int | None = None  # of the last attempt; None when it could not connect
    error: str | None = None
    attempts: int = 0
    delivered: bool = False


@dataclass
class AccessToken:
    mailbox: Mailbox
    scopes: frozenset[str]
    expires_at: float | None  # time.monotonic(); None never expires


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
        subject = _subject_key(str(parsed.get("Subject") or ""))
        for message in self.messages.values():
            if requested and message.thread_id != requested:
                continue
            if message.message_id in referenced and _subject_key(message.subject) == subject:
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
        self._by_token: dict[str, AccessToken] = {}
        self._by_address: dict[str, Mailbox] = {}
        self._lock = threading.Lock()
        # Pub/Sub push: subscriptions, the notifications sent, and knobs for tests.
        self.subscriptions: list[PushSubscription] = []
        self.pushes: list[Push] = []
        self.drop_pushes = False  # lose every notification, as Pub/Sub sometimes does
        self.dropped_pushes = 0
        # Pub/Sub retries for days; a sandbox gives up sooner, but not before a busy
        # receiver had some seconds to come back (about 6 s of waits in all).
        self.push_attempts = 8
        self.push_backoff_s = 0.05
        self.push_backoff_cap_s = 2.0
        self.push_timeout_s = 5.0
        self._outbox: list[Push] = []
        self._push_tasks: set[asyncio.Task[None]] = set()

    # set-up helpers for tests and the demo

    def add_mailbox(self, address: str, token: str | None = None) -> Mailbox:
        """A mailbox with a token that never expires and may do anything."""
        mailbox = Mailbox(
            address=address,
            token=token or f"ya29.sandbox-{uuid.uuid4().hex}",
            history_retention=self.history_retention,
        )
        with self._lock:
            self._by_token[mailbox.token] = AccessToken(mailbox, frozenset({MAIL_GOOGLE}), None)
            self._by_address[address.lower()] = mailbox
        return mailbox

    def mailbox(self, address: str) -> Mailbox:
        return self._by_address[address.lower()]

    def mailboxes(self) -> list[Mailbox]:
        return list(self._by_address.values())

    def issue_token(
        self,
        address: str,
        *,
        lifetime_s: float = 3599,
        scopes: tuple[str, ...] = (GMAIL_READONLY, GMAIL_SEND),
    ) -> str:
        """An access token for the mailbox, as Google's token endpoint hands out."""
        token = f"ya29.{secrets.token_urlsafe(32)}"
        with self._lock:
            self._by_token[token] = AccessToken(
                self.mailbox(address), frozenset(scopes), time.monotonic() + lifetime_s
            )
        return token

    def revoke_token(self, token: str) -> bool:
        with self._lock:
            return self._by_token.pop(token, None) is not None

    def expire_tokens(self, address: str) -> int:
        """Let every expiring token of the mailbox lapse now; returns how many."""
        mailbox = self.mailbox(address)
        with self._lock:
            lapsing = [t for t in self._by_token.values() if t.mailbox is mailbox and t.expires_at]
            for issued in lapsing:
                issued.expires_at = 0.0
        return len(lapsing)

    def deliver(
        self, address: str, raw: bytes, label_ids: list[str] | None = None
    ) -> StoredMessage:
        """An inbound message arrives (not a Gmail call): threaded by its headers and subject.

        A watched mailbox's push is queued and sent from the running event loop."""
        with self._lock:
            mailbox = self.mailbox(address)
            message = mailbox.add(raw, label_ids or ["INBOX", "UNREAD"], None, outbound=False)
            self._notify(mailbox, message)
        self._pump()
        return message

    def sent(self, address: str) -> list[StoredMessage]:
        return list(self.mailbox(address).sent)

    # Pub/Sub push

    def subscribe_push(
        self, topic_name: str, push_endpoint: str, *, subscription: str | None = None
    ) -> PushSubscription:
        """A push subscription on the topic a mailbox `watch` names."""
        project, _, _ = topic_name.removeprefix("projects/").partition("/")
        name = subscription or (
            f"projects/{project}/subscriptions/gmail-push-{len(self.subscriptions) + 1}"
        )
        created = PushSubscription(name, topic_name, push_endpoint)
        with self._lock:
            self.subscriptions.append(created)
        return created

    def _notify(self, mailbox: Mailbox, message: StoredMessage) -> None:
        """Queue a push for a change the mailbox's watch covers (under the lock)."""
        watch = mailbox.watch
        if watch is None or not watch.active() or not watch.passes(message.label_ids):
            return
        for sub in self.subscriptions:
            if sub.topic_name != watch.topic_name:
                continue
            if self.drop_pushes:
                self.dropped_pushes += 1
                continue
            self._outbox.append(
                Push(sub.name, sub.push_endpoint, mailbox.address, message.history_id)
            )

    def _pump(self) -> None:
        """Start sending what is queued; outside an event loop, flush_pushes() does it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._lock:
            queued, self._outbox = self._outbox, []
        for push in queued:
            task = loop.create_task(self._send_push(push))
            self._push_tasks.add(task)
            task.add_done_callback(self._push_tasks.discard)

    async def _send_push(self, push: Push) -> None:
        self.pushes.append(push)
        envelope = pubsub_envelope(push.email_address, push.history_id, push.subscription)
        # A client per push: deliver() may run under any event loop that calls it.
        async with httpx.AsyncClient(timeout=self.push_timeout_s) as http:
            for attempt in range(1, self.push_attempts + 1):
                push.attempts = attempt
                try:
                    answer = await http.post(push.endpoint, json=envelope)
                    push.status, push.error = answer.status_code, None
                    if answer.is_success:
                        push.delivered = True
                        return
                except httpx.HTTPError as exc:
                    push.status, push.error = None, f"{type(exc).__name__}: {exc}"
                if attempt < self.push_attempts:
                    wait = self.push_backoff_s * 2 ** (attempt - 1)
                    await asyncio.sleep(min(wait, self.push_backoff_cap_s))

    async def flush_pushes(self) -> None:
        """Wait until every queued push is delivered or given up on."""
        self._pump()
        while self._push_tasks:
            await asyncio.gather(*list(self._push_tasks), return_exceptions=True)
            self._pump()

    async def aclose(self) -> None:
        await self.flush_pushes()

    # the REST API

    def _authorize(self, authorization: str | None, needed: frozenset[str]) -> Mailbox:
        """The mailbox behind the bearer token, if it is live and has one of `needed`."""
        scheme, _, token = (authorization or "").partition(" ")
        issued = self._by_token.get(token) if scheme.lower() == "bearer" else None
        if issued is None or (
            issued.expires_at is not None and issued.expires_at <= time.monotonic()
        ):
            raise _unauthenticated()
        if not issued.scopes & needed:
            raise _insufficient_scopes()
        mailbox = issued.mailbox
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
            finally:
                self._pump()

        @api.get("/profile")
        async def profile(authorization: Auth) -> Any:
            def run() -> dict[str, Any]:
                mailbox = self._authorize(authorization, READ_SCOPES)
                return {
                    "emailAddress": mailbox.address,
                    "messagesTotal": len(mailbox.messages),
                    "threadsTotal": len({m.thread_id for m in mailbox.messages.values()}),
                    "historyId": str(mailbox.history_id),
                }

            return answer(run)

        @api.post("/watch")
        async def watch(authorization: Auth, body: Annotated[dict[str, Any], Body()]) -> Any:
            def run() -> dict[str, str]:
                mailbox = self._authorize(authorization, READ_SCOPES)
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
                self._authorize(authorization, READ_SCOPES).watch = None
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
                mailbox = self._authorize(authorization, READ_SCOPES)
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
                mailbox = self._authorize(authorization, READ_SCOPES)
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
                mailbox = self._authorize(authorization, READ_SCOPES)
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
                mailbox = self._authorize(authorization, SEND_SCOPES)
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
                self._notify(mailbox, sent)
                return {"id": sent.id, "threadId": sent.thread_id, "labelIds": sent.label_ids}

            return answer(run)

        return api

    def helper_router(self) -> APIRouter:
        """Sandbox-only endpoints (no Gmail counterpart) for a person running the demo."""
        api = APIRouter(prefix="/sandbox/gmail")

        @api.post("/deliver")
        async def deliver(
            request: Request, to: str, label_ids: Annotated[list[str] | None, Query()] = None
        ) -> Any:
            raw = await request.body()
            if not raw.strip():
                return JSONResponse({"detail": "the body must be an RFC 5322 message"}, 400)
            if to.lower() not in self._by_address:
                return JSONResponse({"detail": f"no sandbox mailbox {to}"}, status_code=404)
            message = self.deliver(to, raw, label_ids)
            return {"id": message.id, "threadId": message.thread_id}

        @api.get("/pushes")
        async def pushes() -> Any:
            """Every push notification sent so far, and how its delivery went."""
            return [
                {
                    "subscription": p.subscription,
                    "email_address": p.email_address,
                    "history_id": p.history_id,
                    "attempts": p.attempts,
                    "status": p.status,
                    "error": p.error,
                    "delivered": p.delivered,
                }
                for p in self.pushes
            ]

        @api.get("/sent")
        async def sent(address: str) -> Any:
            """What the mailbox sent (deskpilot's replies), newest last, as text."""
            if address.lower() not in self._by_address:
                return JSONResponse({"detail": f"no sandbox mailbox {address}"}, status_code=404)
            return [
                {"id": m.id, "threadId": m.thread_id, "raw": m.raw.decode("utf-8", "replace")}
                for m in self.sent(address)
            ]

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
    """A small part of Gmail's search syntax: in:/label:, rfc822msgid:, their negations,
    after:/before: (epoch seconds or YYYY/MM/DD) and plain words matched in the raw
    message."""
    for term in query.split():
        negate = term.startswith("-")
        term = term.removeprefix("-")
        key, _, value = term.partition(":")
        if key in ("in", "label") and value:
            hit = value.upper() in message.label_ids
        elif key == "rfc822msgid" and value:
            hit = (message.message_id or "").strip("<>") == value.strip("<>")
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


def pubsub_envelope(
    email_address: str, history_id: int | str, subscription: str = DEFAULT_PUSH_SUBSCRIPTION
) -> dict[str, Any]:
    """The body Pub/Sub POSTs to a push endpoint for one Gmail notification."""
    data = json.dumps({"emailAddress": email_address, "historyId": history_id}).encode()
    return {
        "message": {
            "data": b64url(data),
            "messageId": str(secrets.randbelow(10**16)),
            "publishTime": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        },
        "subscription": subscription,
    }


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
    envelope = pubsub_envelope(email_address, history_id, subscription)
    params = {"token": secret} if secret is not None else None
    if http is not None:
        return await http.post(url, json=envelope, params=params)
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(url, json=envelope, params=params)
