"""The Gmail REST sandbox: its field names against Google's discovery document for Gmail
v1 (shipped in google-api-python-client), its error answers, and the Pub/Sub push sender."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import googleapiclient
import httpx
import pytest
from fastapi import FastAPI, Request

from sandbox.gmail import push_notification
from sandbox.server import serve_app
from tests.gmail_support import MERCHANT, Served, email_bytes, served_gmail


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
