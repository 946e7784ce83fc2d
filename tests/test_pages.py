"""The inbox and thread pages over HTTP (in-process ASGI; the SSE stream over loopback) with a
real database: rendering, sign-in redirects, CSRF, tenant isolation, form errors, live events."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import live, pages
from api.app import create_app
from kernel.enums import ActionStatus, ActionType, ConnectionType, MessageDirection
from kernel.settings import Settings
from models import Action, Connection, Message, Order, Thread
from models.db import unit_of_work
from models.event import log_event
from models.suggestion import AISuggestion
from models.thread_state import refresh_needs_decision
from models.user import set_password
from sandbox.server import serve_app
from services.accounts import create_user

PASSWORD = "correct horse battery staple"


def _settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        DESKPILOT_SECRET_KEY="s" * 48,
        DESKPILOT_PUBLIC_URL="http://api.test",
        DESKPILOT_TEMPORAL_UI_PORT=8233,
    )


def build_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    """The app as `deskpilot` builds it, without Temporal (decisions answer 503)."""
    return create_app(sessions.kw["bind"], None, _settings())


def client_for(app: FastAPI, base_url: str = "http://api.test") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app) if base_url == "http://api.test" else None
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def form_csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page)
    assert found, page
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    login = await client.get("/login")
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf": form_csrf(login.text)}
    )
    assert response.status_code == 303, response.text


async def merchant(sessions: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, str]:
    email = f"owner-{uuid.uuid4().hex[:6]}@store.test"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, "Owner")
        await set_password(session, user.id, PASSWORD)
    return user.id, email


@dataclass
class Seeded:
    thread_id: uuid.UUID
    action_id: uuid.UUID | None
    workflow_id: str


async def seed_thread(
    sessions: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    *,
    customer: str = "ava.patel@example.com",
    subject: str = "Broken mug",
    body: str = "My order #1001 arrived broken.",
    quoted: str = "",
    attachments: list[dict[str, Any]] | None = None,
    order_name: str | None = "#1001",
    action: ActionType | None = ActionType.REFUND,
    status: ActionStatus = ActionStatus.PENDING,
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Seeded:
    """A thread with one inbound message, as the pipeline leaves it: order, suggestion, action."""
    at = at or datetime.now(UTC)
    workflow_id = f"msg-{user_id}-{uuid.uuid4().hex[:24]}"
    async with unit_of_work(sessions) as session:
        order_id = None
        if order_name is not None:
            connection = Connection(
                user_id=user_id,
                type=ConnectionType.SHOPIFY,
                access_token="shpat_x",
                shop_domain=f"shop-{uuid.uuid4().hex[:8]}.myshopify.com",
            )
            session.add(connection)
            await session.flush()
            order = Order(
                connection_id=connection.id,
                shop_domain=connection.shop_domain or "",
                shopify_id=f"gid://shopify/Order/{uuid.uuid4().int % 10**12}",
                name=order_name,
                status="open",
                email=customer,
                total_amount=Decimal("59.90"),
                currency="EUR",
                financial_status="PAID",
                fulfillment_status="FULFILLED",
                details={
                    "refundable": "44.90",
                    "line_items": [{"title": "Blue mug", "quantity": 2, "unit_price": "22.45"}],
                },
            )
            session.add(order)
            await session.flush()
            order_id = order.id
        thread = Thread(
            user_id=user_id, customer_email=customer, subject=subject, last_message_at=at
        )
        session.add(thread)
        await session.flush()
        message = Message(
            user_id=user_id,
            thread_id=thread.id,
            order_id=order_id,
            direction=MessageDirection.INBOUND,
            message_id=f"<{uuid.uuid4().hex}@customer.test>",
            from_address=customer,
            to_address="help@store.test",
            subject=subject,
            body_text=body,
            quoted_text=quoted,
            attachments=attachments or [],
            sent_at=at,
            workflow_id=workflow_id,
            workflow_started_at=at,
        )
        session.add(message)
        await session.flush()
        action_id = None
        if action is not None:
            suggestion = AISuggestion(
                message_id=message.id,
                reply="Sorry about the mug! We refunded order #1001.",
                proposed_action=action,
                order_id=order_id,
                confidence=0.87,
                provider="offline-rules",
                intent="refund_request",
                rationale="The customer reports a broken item and asks for money back.",
                guardrails=[{"code": "amount_capped", "detail": "capped at the refundable 44.90"}],
            )
            session.add(suggestion)
            await session.flush()
            row = Action(
                user_id=user_id,
                message_id=message.id,
                suggestion_id=suggestion.id,
                order_id=order_id,
                type=action,
                status=status,
                payload=payload
                if payload is not None
                else {"amount": "44.90", "reply": suggestion.reply, "provider": "offline-rules"},
                executed_at=at if status is ActionStatus.EXECUTED else None,
            )
            session.add(row)
            await session.flush()
            action_id = row.id
            # Rows written by hand keep the inbox flag as the activities do.
            await refresh_needs_decision(session, thread.id)
        return Seeded(thread.id, action_id, workflow_id)


async def action_status(
    sessions: async_sessionmaker[AsyncSession], action_id: uuid.UUID | None
) -> ActionStatus:
    async with sessions() as session:
        return (
            await session.execute(select(Action.status).where(Action.id == action_id))
        ).scalar_one()


def thread_ids(page: str) -> list[str]:
    return re.findall(r'data-thread-id="([0-9a-f-]+)"', page)


def textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea id="{name}"[^>]*>([^<]*)</textarea>', page)
    assert found is not None, name
    return html.unescape(found.group(1))


@pytest.fixture
def app(own_sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return build_app(own_sessions)


@pytest.fixture
async def signed_in(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI
) -> AsyncIterator[tuple[httpx.AsyncClient, uuid.UUID]]:
    user_id, email = await merchant(own_sessions)
    async with client_for(app) as client:
        await sign_in(client, email)
        yield client, user_id


async def test_signed_out_pages_send_the_browser_to_sign_in(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI
) -> None:
    user_id, _ = await merchant(own_sessions)
    seeded = await seed_thread(own_sessions, user_id)
    async with client_for(app) as client:
        for path, location in [
            ("/inbox?view=all&q=mug", "/login?next=/inbox%3Fview%3Dall%26q%3Dmug"),
            (f"/threads/{seeded.thread_id}", f"/login?next=/threads/{seeded.thread_id}"),
            ("/events", "/login?next=/events"),
        ]:
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"] == location
        posted = await client.post(
            f"/threads/{seeded.thread_id}/approve", data={"action_id": str(seeded.action_id)}
        )
        assert posted.status_code == 303 and posted.headers["location"] == "/login"
    assert await action_status(own_sessions, seeded.action_id) is ActionStatus.PENDING


async def test_inbox_tabs_search_and_older_pages(
    own_sessions: async_sessionmaker[AsyncSession],
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, user_id = signed_in
    now = datetime.now(UTC)
    pending = await seed_thread(own_sessions, user_id, at=now - timedelta(minutes=1))
    executed = await seed_thread(
        own_sessions, user_id, customer="bob@example.com", subject="Cancel it",
        body="Please cancel order #1002", order_name="#1002", action=ActionType.CANCEL,
        status=ActionStatus.EXECUTED, at=now - timedelta(minutes=2),
    )  # fmt: skip
    older = await seed_thread(
        own_sessions, user_id, customer="cy@example.com", subject="Thanks",
        body="All good, thank you", order_name=None, action=None, at=now - timedelta(minutes=3),
    )  # fmt: skip

    inbox = await client.get("/inbox")
    assert inbox.status_code == 200
    assert thread_ids(inbox.text) == [str(pending.thread_id)]  # needs decision by default
    assert 'aria-current="page">Needs decision</a>' in inbox.text
    assert "ava.patel@example.com" in inbox.text and "Broken mug" in inbox.text
    assert "My order #1001 arrived broken." in inbox.text and "#1001" in inbox.text
    assert "REFUND · PENDING" in inbox.text
    assert '<main id="main">' in inbox.text and 'role="search"' in inbox.text

    handled = await client.get("/inbox", params={"view": "handled"})
    assert thread_ids(handled.text) == [str(executed.thread_id), str(older.thread_id)]
    assert "CANCEL · EXECUTED" in handled.text
    everything = await client.get("/inbox", params={"view": "all"})
    assert thread_ids(everything.text) == [
        str(pending.thread_id), str(executed.thread_id), str(older.thread_id),
    ]  # fmt: skip

    for q, expected in [("bob", executed), ("#1002", executed), ("1001", pending),
                        ("cy@", older), ("thank you", older), ("Broken", pending)]:  # fmt: skip
        found = await client.get("/inbox", params={"view": "all", "q": q})
        assert found.status_code == 200
        assert thread_ids(found.text) == ([str(expected.thread_id)] if expected else []), q
    nothing = await client.get("/inbox", params={"view": "all", "q": "zebra"})
    assert "No threads match “zebra”." in nothing.text
    nul = await client.get("/inbox", params={"view": "all", "q": "zeb\x00ra"})
    assert nul.status_code == 200 and "No threads match “zebra”." in nul.text

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    first = await client.get("/inbox", params={"view": "all"})
    assert thread_ids(first.text) == [str(pending.thread_id), str(executed.thread_id)]
    older_link = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first.text)
    assert older_link is not None
    second = await client.get(html.unescape(older_link.group(1)))
    assert thread_ids(second.text) == [str(older.thread_id)]
    assert 'rel="next"' not in second.text and ">Newest</a>" in second.text

    broken = await client.get("/inbox", params={"view": "all", "cursor": "not-a-cursor"})
    assert broken.status_code == 400
    assert "the cursor is not one this API issued" in broken.text
    assert len(thread_ids(broken.text)) == 2


async def test_thread_page_shows_messages_order_suggestion_and_workflow_link(
    own_sessions: async_sessionmaker[AsyncSession],
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
) -> None:
    client, user_id = signed_in
    seeded = await seed_thread(
        own_sessions,
        user_id,
        quoted="On Monday the store wrote:\n> Your order has shipped",
        attachments=[{"filename": "mug-photo.jpg", "content_type": "image/jpeg", "size": 20480}],
    )
    page = await client.get(f"/threads/{seeded.thread_id}")
    assert page.status_code == 200, page.text
    text = page.text
    assert "My order #1001 arrived broken." in text
    assert '<details class="quoted"' in text and "&gt; Your order has shipped" in text
    assert "mug-photo.jpg" in text and "(20.0 KB)" in text
    # The order beside it.
    assert ">#1001<" in text and "59.90 EUR" in text and "44.90 EUR" in text
    assert "Blue mug" in text and "22.45" in text and "<td>unfulfilled</td>" in text
    # The suggestion, its reasons, and the editable decision.
    assert "87% confident" in text and "refund_request" in text
    assert "The customer reports a broken item" in text
    assert "amount_capped" in text and "capped at the refundable 44.90" in text
    assert "by offline-rules" in text
    assert '<textarea id="reply" name="reply"' in text
    assert "Sorry about the mug! We refunded order #1001." in text
    assert textarea(text, "payload") == '{\n  "amount": "44.90"\n}'
    assert text.count('name="csrf"') == 4  # approve, reject, sign out, resend verification
    assert 'for="reason"' in text and ">Approve</button>" in text and ">Reject</button>" in text
    assert f'href="http://127.0.0.1:8233/namespaces/default/workflows/{seeded.workflow_id}"' in text
    assert "PENDING" in text
    assert 'src="/static/app.js"' in text and "onclick" not in text.lower()


async def test_another_owners_thread_is_not_found_and_not_listed(
    own_sessions: async_sessionmaker[AsyncSession],
    app: FastAPI,
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
) -> None:
    owner_client, owner_id = signed_in
    mine = await seed_thread(own_sessions, owner_id)
    assert (await owner_client.get(f"/threads/{mine.thread_id}")).status_code == 200

    _, other_email = await merchant(own_sessions)
    async with client_for(app) as other:
        await sign_in(other, other_email)
        page = await other.get(f"/threads/{mine.thread_id}")
        assert page.status_code == 404
        assert "Thread not found" in page.text and "Broken mug" not in page.text
        for missing in (f"/threads/{uuid.uuid4()}", "/threads/not-a-thread"):
            answer = await other.get(missing)
            assert answer.status_code == 404 and "Thread not found" in answer.text
        inbox = await other.get("/inbox", params={"view": "all"})
        assert thread_ids(inbox.text) == [] and "ava.patel" not in inbox.text
        csrf = form_csrf(inbox.text)
        for verb, data in [
            ("approve", {"action_id": str(mine.action_id), "payload": "{}"}),
            ("reject", {"action_id": str(mine.action_id), "reason": "not mine"}),
        ]:
            posted = await other.post(
                f"/threads/{mine.thread_id}/{verb}", data={**data, "csrf": csrf}
            )
            assert posted.status_code == 404, posted.text
    assert await action_status(own_sessions, mine.action_id) is ActionStatus.PENDING


async def test_decision_forms_need_the_csrf_token(
    own_sessions: async_sessionmaker[AsyncSession],
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
) -> None:
    client, user_id = signed_in
    seeded = await seed_thread(own_sessions, user_id)
    for verb, data in [
        ("approve", {"action_id": str(seeded.action_id), "reply": "hi", "payload": "{}"}),
        ("reject", {"action_id": str(seeded.action_id), "reason": "no"}),
    ]:
        for token in ({}, {"csrf": "0" * 64}):
            posted = await client.post(
                f"/threads/{seeded.thread_id}/{verb}", data={**data, **token}
            )
            assert posted.status_code == 403, (verb, token, posted.text)
    assert await action_status(own_sessions, seeded.action_id) is ActionStatus.PENDING


async def test_invalid_input_is_shown_in_the_page_and_keeps_what_was_typed(
    own_sessions: async_sessionmaker[AsyncSession],
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
) -> None:
    client, user_id = signed_in
    seeded = await seed_thread(own_sessions, user_id)
    url = f"/threads/{seeded.thread_id}"
    csrf = form_csrf((await client.get(url)).text)
    reply = "Dear Ava, <b>sorry</b> — here is a full refund."
    typed = '{"amount": "10.00",\n "note": oops}'
    bad = await client.post(
        f"{url}/approve",
        data={"csrf": csrf, "action_id": str(seeded.action_id), "reply": reply, "payload": typed},
    )
    assert bad.status_code == 422
    assert "The action payload is not valid JSON (line 2, column 10: Expecting value)" in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert textarea(bad.text, "reply") == reply  # what was typed, escaped in the page
    assert textarea(bad.text, "payload") == typed
    assert "<b>sorry</b>" not in bad.text
    assert "Traceback" not in bad.text

    array = await client.post(
        f"{url}/approve",
        data={"csrf": csrf, "action_id": str(seeded.action_id), "reply": reply, "payload": "[1]"},
    )
    assert array.status_code == 422 and "it must be a JSON object" in array.text

    # Checked before it reaches the workflow: the reason is shown, the action stays PENDING.
    for edit, shown in (
        ({"reply": "   ", "payload": ""}, "reply: the reply is empty"),
        ({"reply": reply, "payload": '{"order_id": "x"}'}, "payload.order_id: a "),
    ):
        refused = await client.post(
            f"{url}/approve", data={"csrf": csrf, "action_id": str(seeded.action_id), **edit}
        )
        assert refused.status_code == 422 and shown in refused.text, refused.text

    no_reason = await client.post(
        f"{url}/reject", data={"csrf": csrf, "action_id": str(seeded.action_id), "reason": "  "}
    )
    assert no_reason.status_code == 422 and "Say why you reject it" in no_reason.text
    assert await action_status(own_sessions, seeded.action_id) is ActionStatus.PENDING


async def test_decision_errors_are_readable_pages(
    own_sessions: async_sessionmaker[AsyncSession],
    signed_in: tuple[httpx.AsyncClient, uuid.UUID],
) -> None:
    client, user_id = signed_in
    pending = await seed_thread(own_sessions, user_id)
    url = f"/threads/{pending.thread_id}"
    csrf = form_csrf((await client.get(url)).text)
    form = {"csrf": csrf, "action_id": str(pending.action_id), "reply": "ok", "payload": "{}"}

    # This app has no Temporal client: 503, said in words, the typed reply kept.
    away = await client.post(f"{url}/approve", data={**form, "reply": "kept reply"})
    assert away.status_code == 503
    assert 'role="alert" id="decision-error">Temporal is not configured' in away.text
    assert "kept reply" in away.text and "Traceback" not in away.text
    # The page answers a POST: live updates must re-read the thread, not the form's address.
    assert f'<meta name="live-url" content="/threads/{pending.thread_id}">' in away.text

    # A form for a suggestion that is no longer the thread's latest.
    stale = await client.post(f"{url}/approve", data={**form, "action_id": str(uuid.uuid4())})
    assert stale.status_code == 409 and "newer suggestion" in stale.text

    done = await seed_thread(own_sessions, user_id, status=ActionStatus.EXECUTED)
    decided = await client.post(
        f"/threads/{done.thread_id}/reject",
        data={"csrf": csrf, "action_id": str(done.action_id), "reason": "too late"},
    )
    assert decided.status_code == 409
    assert f"action {done.action_id} is already EXECUTED" in decided.text
    assert "nothing is waiting for a decision" in decided.text


async def _read_event(lines: AsyncIterator[str], wanted: str) -> dict[str, str]:
    """The next server-sent event named `wanted`, as its fields."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields.get("event") == wanted:
                return fields
            fields = {}
        elif not line.startswith(":") and ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    raise AssertionError(f"the stream ended before a {wanted!r} event")


async def test_the_event_stream_reports_the_owners_changes_only(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI
) -> None:
    user_id, email = await merchant(own_sessions)
    other_id, _ = await merchant(own_sessions)
    seeded = await seed_thread(own_sessions, user_id)
    async with serve_app(app) as base_url, client_for(app, base_url) as client:
        await sign_in(client, email)
        async with client.stream("GET", "/events", timeout=10) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            async with asyncio.timeout(10):
                await _read_event(lines, "ready")
                async with unit_of_work(own_sessions) as session:
                    await log_event(session, "action.approved", user_id=other_id)
                await asyncio.sleep(1.5)  # a poll or two sees only the other owner's event
                async with unit_of_work(own_sessions) as session:
                    row = await session.get(Action, seeded.action_id)
                    assert row is not None
                    row.status = ActionStatus.EXECUTED
                    await log_event(
                        session, "action.executed", user_id=user_id, entity="action",
                        entity_id=seeded.action_id,
                    )  # fmt: skip
                committed = time.perf_counter()
                change = await _read_event(lines, "change")
                latency = time.perf_counter() - committed
    # Polled about once a second: a change reaches the page within about that.
    print(f"live update: change streamed {latency * 1000:.0f} ms after the commit")
    assert latency < 3, latency
    assert change["data"] == (
        f'[{{"type":"action.executed","entity":"action","entity_id":"{seeded.action_id}"}}]'
    )


async def test_the_event_stream_ends_so_a_stopping_server_does_not_wait_for_it(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_LIFETIME_S", 1.5)
    _, email = await merchant(own_sessions)
    async with serve_app(app) as base_url, client_for(app, base_url) as client:
        await sign_in(client, email)
        started = time.perf_counter()
        async with asyncio.timeout(10), client.stream("GET", "/events") as stream:
            body = (await stream.aread()).decode()
        took = time.perf_counter() - started
    # The browser reconnects after `retry` ms and re-fetches the page on `ready`.
    assert body.startswith("retry: 1000\n\nevent: ready\ndata: {}\n\n"), body
    assert 1.5 <= took < 5, took
