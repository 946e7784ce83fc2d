"""A Gmail REST v1 client for one mailbox (`users/me` behind a bearer token).

Errors are classified for Temporal like the other integrations: transport failures, 429,
5xx and Gmail's rate-limit 403s may pass; a refused token will not (the merchant has to
reconnect Gmail). A history start id Gmail no longer keeps raises `HistoryExpired`, which
tells the caller to resync from `list_message_ids` instead of retrying.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from kernel.errors import IntegrationError
from kernel.http import classify_status, new_http_client, raise_for_transport
from kernel.logs import redact

GMAIL_API = "https://gmail.googleapis.com"
# Gmail answers 403 (not 429) when a per-user or per-project quota is exceeded.
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class HistoryExpired(IntegrationError):
    """The start historyId is older than what Gmail keeps: do a full sync, then store
    the mailbox's current historyId."""

    def __init__(self, start_id: int) -> None:
        super().__init__(
            f"Gmail no longer has history from {start_id}; a full sync is needed", retryable=False
        )
        self.start_id = start_id


@dataclass(frozen=True)
class Profile:
    email_address: str
    history_id: int  # the mailbox's current historyId: where a first sync can start


@dataclass(frozen=True)
class WatchResult:
    history_id: int
    expiration: datetime


@dataclass(frozen=True)
class AddedMessage:
    id: str
    thread_id: str
    label_ids: tuple[str, ...]


@dataclass(frozen=True)
class HistoryPage:
    added: list[AddedMessage]
    # The mailbox's current historyId; store it once every page has been handled.
    history_id: int


@dataclass(frozen=True)
class RawMessage:
    id: str
    thread_id: str
    label_ids: tuple[str, ...]
    history_id: int
    internal_date: datetime
    raw: bytes


@dataclass(frozen=True)
class SentMessage:
    id: str
    thread_id: str


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GmailClient:
    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = GMAIL_API,
        http: httpx.AsyncClient | None = None,
        page_size: int = 100,
    ) -> None:
        self._base = f"{base_url.rstrip('/')}/gmail/v1/users/me"
        self._token = access_token
        self._http = http or new_http_client(timeout=30)
        self._page_size = page_size

    async def aclose(self) -> None:
        await self._http.aclose()

    async def profile(self) -> Profile:
        """Which mailbox the token opens, and its current historyId."""
        body = await self._request("GET", "/profile", "profile")
        return Profile(email_address=body["emailAddress"], history_id=int(body["historyId"]))

    async def watch(
        self,
        topic_name: str,
        label_ids: list[str] | None = None,
        label_filter_behavior: str = "include",
    ) -> WatchResult:
        body = await self._request(
            "POST",
            "/watch",
            "watch",
            json={
                "topicName": topic_name,
                "labelIds": label_ids or ["INBOX"],
                "labelFilterBehavior": label_filter_behavior,
            },
        )
        return WatchResult(
            history_id=int(body["historyId"]),
            expiration=datetime.fromtimestamp(int(body["expiration"]) / 1000, UTC),
        )

    async def stop(self) -> None:
        await self._request("POST", "/stop", "stop watch")

    async def history(self, start_id: int) -> AsyncIterator[HistoryPage]:
        """Messages added after `start_id`, one page at a time; raises HistoryExpired."""
        page_token: str | None = None
        while True:
            params: dict[str, Any] = {
                "startHistoryId": str(start_id),
                "historyTypes": "messageAdded",
                "maxResults": self._page_size,
            }
            if page_token:
                params["pageToken"] = page_token
            try:
                body = await self._request("GET", "/history", "history", params=params)
            except _NotFound as exc:
                raise HistoryExpired(start_id) from exc
            added = [
                AddedMessage(
                    id=item["message"]["id"],
                    thread_id=item["message"]["threadId"],
                    label_ids=tuple(item["message"].get("labelIds") or ()),
                )
                for record in body.get("history") or []
                for item in record.get("messagesAdded") or []
            ]
            yield HistoryPage(added=added, history_id=int(body["historyId"]))
            page_token = body.get("nextPageToken")
            if not page_token:
                return

    async def list_message_ids(
        self, query: str = "", *, label_ids: list[str] | None = None, limit: int = 500
    ) -> list[str]:
        """Ids of matching messages, newest first, at most `limit` (for a full resync)."""
        ids: list[str] = []
        page_token: str | None = None
        while len(ids) < limit:
            params: dict[str, Any] = {"maxResults": min(self._page_size, limit - len(ids))}
            if query:
                params["q"] = query
            if label_ids:
                params["labelIds"] = label_ids
            if page_token:
                params["pageToken"] = page_token
            body = await self._request("GET", "/messages", "list messages", params=params)
            ids.extend(m["id"] for m in body.get("messages") or [])
            page_token = body.get("nextPageToken")
            if not page_token:
                break
        return ids[:limit]

    async def find_by_message_id(
        self, rfc_message_id: str, *, label_ids: list[str] | None = None
    ) -> SentMessage | None:
        """The message carrying this RFC 5322 Message-ID (Gmail's `rfc822msgid:` search),
        e.g. to learn whether a send that was cut off went out after all."""
        params: dict[str, Any] = {"q": f"rfc822msgid:{rfc_message_id.strip('<>')}", "maxResults": 1}
        if label_ids:
            params["labelIds"] = label_ids
        body = await self._request("GET", "/messages", "find message", params=params)
        found = body.get("messages") or []
        return SentMessage(id=found[0]["id"], thread_id=found[0]["threadId"]) if found else None

    async def get_raw(self, message_id: str) -> RawMessage:
        try:
            body = await self._request(
                "GET", f"/messages/{message_id}", "get message", params={"format": "raw"}
            )
        except _NotFound as exc:
            # Deleted between the history record and this fetch: nothing to retry.
            raise IntegrationError(
                f"Gmail message {message_id} no longer exists", retryable=False
            ) from exc
        return RawMessage(
            id=body["id"],
            thread_id=body["threadId"],
            label_ids=tuple(body.get("labelIds") or ()),
            history_id=int(body["historyId"]),
            internal_date=datetime.fromtimestamp(int(body["internalDate"]) / 1000, UTC),
            raw=_b64url_decode(body["raw"]),
        )

    async def send(self, raw: bytes, thread_id: str | None = None) -> SentMessage:
        """Send a complete RFC 5322 message. To stay in the customer's thread it needs the
        thread id, a matching subject and In-Reply-To/References; Gmail reads the
        recipients from the headers."""
        payload: dict[str, Any] = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        if thread_id:
            payload["threadId"] = thread_id
        body = await self._request("POST", "/messages/send", "send", json=payload)
        return SentMessage(id=body["id"], thread_id=body["threadId"])

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        label = f"Gmail {what}"
        try:
            response = await self._http.request(
                method,
                f"{self._base}{path}",
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, label) from exc
        if response.status_code == 404:
            raise _NotFound(f"{label}: HTTP 404: {redact(response.text[:300])}", retryable=False)
        if response.status_code == 401:
            raise AccessTokenRejected(f"{label}: Google refused the access token (HTTP 401)")
        if response.status_code == 403 and not _rate_limited(response):
            raise IntegrationError(
                f"{label}: Google refused the access token (HTTP {response.status_code}); "
                "the merchant may need to reconnect Gmail",
                retryable=False,
            )
        if response.status_code == 403:
            raise IntegrationError(f"{label}: rate limited (HTTP 403)", retryable=True)
        classify_status(response, label)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationError(f"{label}: answer is not JSON", retryable=True) from exc
        if not isinstance(body, dict):
            raise IntegrationError(f"{label}: unexpected answer shape", retryable=True)
        return body


class AccessTokenRejected(IntegrationError):
    """HTTP 401: the token was revoked or rotated before its expiry. Not retryable as it
    is; whoever holds the refresh token gets a new one and tries again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class _NotFound(IntegrationError):
    """A 404, which each call interprets: an expired history id, a deleted message."""


def _rate_limited(response: httpx.Response) -> bool:
    try:
        errors = response.json()["error"].get("errors") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return any(e.get("reason") in _RATE_LIMIT_REASONS for e in errors if isinstance(e, dict))
