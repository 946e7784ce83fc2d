"""The Gmail REST sandbox: its field names against Google's discovery document for Gmail
v1 (shipped in google-api-python-client), its error answers, access token expiry and scopes,
the Pub/Sub push sender, and the whole sandbox server with Gmail and Google sign-in."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import googleapiclient
import httpx
import pytest
from fastapi import FastAPI, Request

from integrations.gmail.client import GmailClient, Profile
from integrations.gmail.oauth import GoogleOAuth
from kernel.errors import IntegrationError
from sandbox.gmail import READ_SCOPES, SEND_SCOPES, push_notification
from sandbox.server import Sandbox, serve_app, serving
from tests.gmail_support import MERCHANT, Served, email_bytes, follow_consent, served_gmail


@pytest.fixture
async def gmail() -> AsyncIterator[Served]:
    async with served_gmail() as served:
        yield served


async def test_push_sender_posts_the_pubsub_envelope() -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    receiver = FastAPI()

    @receiver.post("/gmail/push")
    async def push(request: Request) -> dict[str, str]:
        received.append((await request.json(), request.query_params.get("token")))
        return {}

    async with serve_app(receiver) as url:
        response = await push_notification(
            f"{url}/gmail/push", email_address=MERCHANT, history_id=1234, secret="s3cret"
        )
    assert response.status_code == 200
    [(body, token)] = received
    assert token == "s3cret"
    assert set(body) == {"message", "subscription"}
    assert set(body["message"]) == {"data", "messageId", "publishTime"}
    data = json.loads(base64.urlsafe_b64decode(body["message"]["data"]))
    assert data == {"emailAddress": MERCHANT, "historyId": 1234}
    assert body["message"]["publishTime"].endswith("Z")


# --- the shapes against Google's discovery document -----------------------------------------


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "gmail.v1.json"
    return json.loads(path.read_text())["schemas"]


def assert_fields(body: dict[str, Any], schema: str, schemas: dict[str, Any]) -> None:
    """Every field is in the schema, and nested objects in theirs (following $ref)."""
    properties = schemas[schema]["properties"]
    unknown = set(body) - set(properties)
    assert not unknown, f"{schema} has no {sorted(unknown)}"
    for name, value in body.items():
        spec = properties[name]
        if spec.get("type") == "string" and spec.get("format") in ("int64", "uint64"):
            assert isinstance(value, str), f"{schema}.{name} is an int64: Google sends a string"
        if "$ref" in spec and isinstance(value, dict):
            assert_fields(value, spec["$ref"], schemas)
        items = spec.get("items", {})
        if "$ref" in items and isinstance(value, list):
            for item in value:
                assert_fields(item, items["$ref"], schemas)


async def test_sandbox_fields_match_the_discovery_document(
    gmail: Served, schemas: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {gmail.token}"}
    base = f"{gmail.url}/gmail/v1/users/me"
    watch_request = {
        "topicName": "projects/p/topics/gmail",
        "labelIds": ["INBOX"],
        "labelFilterBehavior": "include",
    }
    assert_fields(watch_request, "WatchRequest", schemas)
    async with httpx.AsyncClient(headers=headers) as http:
        watched = (await http.post(f"{base}/watch", json=watch_request)).json()
        assert_fields(watched, "WatchResponse", schemas)
        raw, customer_id = email_bytes("Hello")
        delivered = gmail.sandbox.deliver(MERCHANT, raw)

        history = await http.get(
            f"{base}/history",
            params={"startHistoryId": watched["historyId"], "historyTypes": "messageAdded"},
        )
        assert history.json()["history"][0]["messagesAdded"]
        assert_fields(history.json(), "ListHistoryResponse", schemas)

        listed = (await http.get(f"{base}/messages", params={"maxResults": 1})).json()
        assert_fields(listed, "ListMessagesResponse", schemas)
        message = (await http.get(f"{base}/messages/{delivered.id}?format=raw")).json()
        assert message["raw"]
        assert_fields(message, "Message", schemas)

        reply, _ = email_bytes("Re: Hello", sender=MERCHANT, in_reply_to=customer_id)
        send_request = {
            "raw": base64.urlsafe_b64encode(reply).decode(),
            "threadId": message["threadId"],
        }
        assert_fields(send_request, "Message", schemas)
        sent = (await http.post(f"{base}/messages/send", json=send_request)).json()
        assert sent["labelIds"] == ["SENT"]
        assert_fields(sent, "Message", schemas)

        expired = await http.get(f"{base}/history", params={"startHistoryId": "1"})
        assert expired.status_code == 404
        assert expired.json() == {
            "error": {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
            }
        }
        assert (await http.post(f"{base}/stop")).status_code == 204
        unauthorized = await http.get(f"{base}/messages", headers={"Authorization": "Bearer x"})
        assert unauthorized.status_code == 401
        assert unauthorized.json()["error"]["status"] == "UNAUTHENTICATED"


# --- access tokens: expiry and scopes --------------------------------------------------------

READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
MODIFY = "https://www.googleapis.com/auth/gmail.modify"
COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
FULL = "https://mail.google.com/"


def test_sandbox_scopes_are_ones_google_accepts() -> None:
    """The sandbox may be stricter than Gmail, never laxer."""
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "gmail.v1.json"
    users = json.loads(path.read_text())["resources"]["users"]
    messages = users["resources"]["messages"]["methods"]
    reading = [
        users["methods"]["getProfile"],
        users["methods"]["watch"],
        users["methods"]["stop"],
        users["resources"]["history"]["methods"]["list"],
        messages["list"],
        messages["get"],
    ]
    for method in reading:
        assert set(READ_SCOPES) <= set(method["scopes"]), method["id"]
    assert set(SEND_SCOPES) <= set(messages["send"]["scopes"])


async def test_each_call_needs_a_scope_that_covers_it(gmail: Served) -> None:
    base = f"{gmail.url}/gmail/v1/users/me"
    raw = base64.urlsafe_b64encode(email_bytes("Hi", sender=MERCHANT)[0]).decode()

    async def can(scopes: tuple[str, ...]) -> tuple[bool, bool]:
        token = gmail.sandbox.issue_token(MERCHANT, scopes=scopes)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            read = await http.get(f"{base}/profile")
            send = await http.post(f"{base}/messages/send", json={"raw": raw})
        for answer in (read, send):
            if answer.status_code == 403:
                assert answer.json() == INSUFFICIENT_SCOPES
            else:
                assert answer.status_code == 200, answer.text
        return read.status_code == 200, send.status_code == 200

    assert await can((READONLY, SEND)) == (True, True)
    assert await can((READONLY,)) == (True, False)
    assert await can((SEND,)) == (False, True)
    assert await can((COMPOSE,)) == (False, True)
    assert await can((MODIFY,)) == (True, True)
    assert await can((FULL,)) == (True, True)
    assert await can(("https://www.googleapis.com/auth/gmail.labels",)) == (False, False)

    client = GmailClient(gmail.sandbox.issue_token(MERCHANT, scopes=(SEND,)), base_url=gmail.url)
    try:
        with pytest.raises(IntegrationError, match="reconnect Gmail") as caught:
            await client.list_message_ids()
        assert caught.value.retryable is False
    finally:
        await client.aclose()


INSUFFICIENT_SCOPES = {
    "error": {
        "code": 403,
        "message": "Request had insufficient authentication scopes.",
        "status": "PERMISSION_DENIED",
        "errors": [
            {
                "message": "Insufficient Permission",
                "domain": "global",
                "reason": "insufficientPermissions",
            }
        ],
    }
}


async def test_an_issued_token_expires(gmail: Served) -> None:
    token = gmail.sandbox.issue_token(MERCHANT, lifetime_s=1.0)
    lasting = gmail.sandbox.issue_token(MERCHANT)
    url = f"{gmail.url}/gmail/v1/users/me/profile"
    async with httpx.AsyncClient() as http:
        assert (await http.get(url, headers={"Authorization": f"Bearer {token}"})).is_success
        await asyncio.sleep(1.1)
        expired = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert (await http.get(url, headers={"Authorization": f"Bearer {lasting}"})).is_success
        # add_mailbox's token never expires, even when the others are made to.
        assert gmail.sandbox.expire_tokens(MERCHANT) == 2
        assert (await http.get(url, headers={"Authorization": f"Bearer {gmail.token}"})).is_success
    assert expired.status_code == 401
    assert expired.json()["error"]["status"] == "UNAUTHENTICATED"
    assert expired.json()["error"]["errors"][0]["reason"] == "authError"


# --- profile -----------------------------------------------------------------------------------


async def test_profile_matches_the_discovery_document(
    gmail: Served, schemas: dict[str, Any]
) -> None:
    first, first_id = email_bytes("Order 1001")
    gmail.sandbox.deliver(MERCHANT, first)
    gmail.sandbox.deliver(MERCHANT, email_bytes("Re: Order 1001", in_reply_to=first_id)[0])
    gmail.sandbox.deliver(MERCHANT, email_bytes("Another question")[0])
    headers = {"Authorization": f"Bearer {gmail.token}"}
    async with httpx.AsyncClient(headers=headers) as http:
        body = (await http.get(f"{gmail.url}/gmail/v1/users/me/profile")).json()
    assert_fields(body, "Profile", schemas)
    assert set(body) == set(schemas["Profile"]["properties"])
    assert isinstance(body["messagesTotal"], int)
    assert isinstance(body["threadsTotal"], int)
    mailbox = gmail.sandbox.mailbox(MERCHANT)
    assert body == {
        "emailAddress": MERCHANT,
        "messagesTotal": 3,
        "threadsTotal": 2,
        "historyId": str(mailbox.history_id),
    }

    client = GmailClient(gmail.token, base_url=gmail.url)
    try:
        assert await client.profile() == Profile(MERCHANT, mailbox.history_id)
    finally:
        await client.aclose()


# --- the whole sandbox server --------------------------------------------------------------


async def test_the_sandbox_server_serves_gmail_google_and_a_deliver_helper() -> None:
    sandbox = Sandbox()
    sandbox.gmail.add_mailbox(MERCHANT)
    received: list[dict[str, Any]] = []
    receiver = FastAPI()

    @receiver.post("/push")
    async def push(request: Request) -> dict[str, str]:
        await asyncio.sleep(0.2)  # still in flight when the sandbox shuts down
        received.append(await request.json())
        return {}

    async with serve_app(receiver) as receiver_url:
        async with serving(sandbox) as url:
            sandbox.gmail.subscribe_push("projects/p/topics/gmail", f"{receiver_url}/push")
            sandbox.google.register_client("demo", "demo-secret")
            oauth = GoogleOAuth(
                "demo",
                "demo-secret",
                auth_url=f"{url}/o/oauth2/v2/auth",
                token_url=f"{url}/token",
            )
            try:
                _, params = await follow_consent(
                    oauth.authorization_url("http://127.0.0.1:1/cb", "s")
                )
                grant = await oauth.exchange_code(params["code"], "http://127.0.0.1:1/cb")
            finally:
                await oauth.aclose()
            client = GmailClient(grant.access_token, base_url=url)
            try:
                await client.watch("projects/p/topics/gmail")
                async with httpx.AsyncClient(base_url=url) as http:
                    raw, _ = email_bytes("Dropped in with curl")
                    answer = await http.post(
                        "/sandbox/gmail/deliver", params={"to": MERCHANT}, content=raw
                    )
                    missing = await http.post(
                        "/sandbox/gmail/deliver", params={"to": "x@y.example"}, content=raw
                    )
                assert missing.status_code == 404
                assert answer.status_code == 200
                assert set(answer.json()) == {"id", "threadId"}
                fetched = await client.get_raw(answer.json()["id"])
                assert fetched.raw == raw
                assert fetched.label_ids == ("INBOX", "UNREAD")
            finally:
                await client.aclose()
        # Leaving `serving` waited for the push that was still in flight.
        assert len(received) == 1
