"""Gmail push through the sandbox's Pub/Sub stand-in: a watched mailbox's changes reach a
push endpoint (a small app on loopback) in the background, filtered by the watch's labels,
retried on failure, and not at all without a live watch."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from sandbox.gmail import WATCH_LIFETIME_MS, GmailSandbox, Watch
from sandbox.server import serve_app
from tests.gmail_support import MERCHANT, Served, email_bytes, served_gmail

TOPIC = "projects/deskpilot-test/topics/gmail"


class Receiver:
    """A push endpoint that records each POST and answers the statuses it is given, then 204."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.answers: list[int] = []
        self.arrived = asyncio.Event()

    def notifications(self) -> list[dict[str, Any]]:
        return [
            json.loads(base64.urlsafe_b64decode(b["message"]["data"])) for b, _ in self.received
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = FastAPI()
    holder: list[Receiver] = []

    @app.post("/gmail/push")
    async def push(request: Request) -> Response:
        target = holder[0]
        target.received.append((await request.json(), request.query_params.get("token")))
        target.arrived.set()
        return Response(status_code=target.answers.pop(0) if target.answers else 204)

    async with serve_app(app) as url:
        holder.append(Receiver(f"{url}/gmail/push"))
        yield holder[0]


@pytest.fixture
async def gmail() -> AsyncIterator[Served]:
    async with served_gmail() as served:
        served.sandbox.push_backoff_s = 0.01
        yield served
        await served.sandbox.aclose()


async def watch(gmail: Served, **request: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {gmail.token}"}) as http:
        answer = await http.post(
            f"{gmail.url}/gmail/v1/users/me/watch", json={"topicName": TOPIC, **request}
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_watched_mailbox_pushes_in_the_background(
    gmail: Served, receiver: Receiver
) -> None:
    subscription = gmail.sandbox.subscribe_push(TOPIC, f"{receiver.url}?token=s3cret")
    await watch(gmail, labelIds=["INBOX"], labelFilterBehavior="include")

    delivered = gmail.sandbox.deliver(MERCHANT, email_bytes("Where is my parcel?")[0])
    await asyncio.wait_for(receiver.arrived.wait(), 5)  # nobody flushed: the loop sent it

    [(envelope, token)] = receiver.received
    assert token == "s3cret"
    assert set(envelope) == {"message", "subscription"}
    assert envelope["subscription"] == subscription.name
    assert subscription.name.startswith("projects/deskpilot-test/subscriptions/")
    assert set(envelope["message"]) == {"data", "messageId", "publishTime"}
    assert receiver.notifications() == [
        {"emailAddress": MERCHANT, "historyId": delivered.history_id}
    ]
    assert delivered.history_id == gmail.sandbox.mailbox(MERCHANT).history_id
    await gmail.sandbox.flush_pushes()
    [push] = gmail.sandbox.pushes
    assert (push.status, push.attempts, push.delivered) == (204, 1, True)


async def test_the_label_filter_decides(gmail: Served, receiver: Receiver) -> None:
    gmail.sandbox.subscribe_push(TOPIC, receiver.url)
    sandbox = gmail.sandbox

    async def pushed_for(labels: list[str]) -> bool:
        before = len(receiver.received)
        sandbox.deliver(MERCHANT, email_bytes("x")[0], labels)
        await sandbox.flush_pushes()
        return len(receiver.received) > before

    await watch(gmail, labelIds=["INBOX"], labelFilterBehavior="include")
    assert await pushed_for(["INBOX", "UNREAD"])
    assert not await pushed_for(["SPAM"])
    # Our own reply lands in SENT, which an INBOX watch does not cover.
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {gmail.token}"}) as http:
        raw = base64.urlsafe_b64encode(email_bytes("Re: x", sender=MERCHANT)[0]).decode()
        await http.post(f"{gmail.url}/gmail/v1/users/me/messages/send", json={"raw": raw})
    await sandbox.flush_pushes()
    assert len(receiver.received) == 1

    await watch(gmail, labelIds=["SPAM"], labelFilterBehavior="exclude")
    assert not await pushed_for(["SPAM"])
    assert await pushed_for(["INBOX"])

    await watch(gmail)  # no labels: every change
    assert await pushed_for(["SPAM"])
    assert len(receiver.received) == 3


async def test_no_push_without_a_live_watch_on_the_topic(gmail: Served, receiver: Receiver) -> None:
    sandbox = gmail.sandbox
    sandbox.subscribe_push("projects/deskpilot-test/topics/other", receiver.url)
    sandbox.subscribe_push(TOPIC, receiver.url)

    sandbox.deliver(MERCHANT, email_bytes("before any watch")[0])
    await watch(gmail)
    sandbox.deliver(MERCHANT, email_bytes("watched")[0])
    watched = sandbox.mailbox(MERCHANT).watch
    assert watched is not None
    watched.expiration_ms = int(time.time() * 1000) - 1  # not renewed within 7 days
    sandbox.deliver(MERCHANT, email_bytes("after expiry")[0])
    await watch(gmail)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {gmail.token}"}) as http:
        assert (await http.post(f"{gmail.url}/gmail/v1/users/me/stop")).status_code == 204
    sandbox.deliver(MERCHANT, email_bytes("after stop")[0])
    await sandbox.flush_pushes()

    # One push only: the watched message, on the watched topic's subscription.
    assert len(receiver.received) == 1
    assert receiver.received[0][0]["subscription"] == sandbox.subscriptions[1].name


async def test_dropped_pushes_are_counted_not_sent(gmail: Served, receiver: Receiver) -> None:
    gmail.sandbox.subscribe_push(TOPIC, receiver.url)
    await watch(gmail)
    gmail.sandbox.drop_pushes = True
    gmail.sandbox.deliver(MERCHANT, email_bytes("lost")[0])
    gmail.sandbox.drop_pushes = False
    delivered = gmail.sandbox.deliver(MERCHANT, email_bytes("found")[0])
    await gmail.sandbox.flush_pushes()
    assert gmail.sandbox.dropped_pushes == 1
    assert receiver.notifications() == [
        {"emailAddress": MERCHANT, "historyId": delivered.history_id}
    ]


async def test_a_failing_endpoint_is_retried_then_given_up_on(
    gmail: Served, receiver: Receiver
) -> None:
    gmail.sandbox.subscribe_push(TOPIC, receiver.url)
    await watch(gmail)

    receiver.answers = [500, 503]
    gmail.sandbox.deliver(MERCHANT, email_bytes("third time lucky")[0])
    await gmail.sandbox.flush_pushes()
    [push] = gmail.sandbox.pushes
    assert (push.attempts, push.status, push.delivered) == (3, 204, True)
    assert len(receiver.received) == 3
    assert len({json.dumps(body) for body, _ in receiver.received}) == 1  # the same message

    receiver.answers = [500] * gmail.sandbox.push_attempts
    gmail.sandbox.deliver(MERCHANT, email_bytes("never acknowledged")[0])
    await gmail.sandbox.flush_pushes()
    given_up = gmail.sandbox.pushes[1]
    assert (given_up.attempts, given_up.status, given_up.delivered) == (
        gmail.sandbox.push_attempts,
        500,
        False,
    )


async def test_an_unreachable_endpoint_is_recorded() -> None:
    sandbox = GmailSandbox()
    sandbox.push_backoff_s = 0.01
    sandbox.push_attempts = 2
    sandbox.add_mailbox(MERCHANT)
    app = FastAPI()
    app.include_router(sandbox.router())
    sandbox.subscribe_push(TOPIC, "http://127.0.0.1:9/push")
    async with serve_app(app) as url:
        token = sandbox.mailbox(MERCHANT).token
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            await http.post(f"{url}/gmail/v1/users/me/watch", json={"topicName": TOPIC})
        sandbox.deliver(MERCHANT, email_bytes("nowhere")[0])
        await sandbox.aclose()
    [push] = sandbox.pushes
    assert (push.attempts, push.status, push.delivered) == (2, None, False)
    assert push.error and "ConnectError" in push.error


def test_deliver_outside_an_event_loop_queues_until_flushed() -> None:
    sandbox = GmailSandbox()
    sandbox.add_mailbox(MERCHANT)
    sandbox.subscribe_push(TOPIC, "http://127.0.0.1:9/push")
    sandbox.push_attempts = 1
    expiration = int(time.time() * 1000) + WATCH_LIFETIME_MS
    sandbox.mailbox(MERCHANT).watch = Watch(TOPIC, [], "include", expiration)
    sandbox.deliver(MERCHANT, email_bytes("from a thread")[0])
    assert sandbox.pushes == []  # nothing could send it yet
    asyncio.run(sandbox.flush_pushes())
    assert [p.attempts for p in sandbox.pushes] == [1]
