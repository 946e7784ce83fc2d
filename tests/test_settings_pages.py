"""The settings pages and their JSON API over HTTP (in-process ASGI) against a real PostgreSQL:
connections, playbooks, usage and plan, the audit log; two merchants, signed in with the
session cookie (pages) or a bearer token (API)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api import settings_pages
from api.app import create_app
from kernel.enums import ConnectionType
from kernel.settings import Settings
from models.billing import Subscription, UsageRecord
from models.connection import Connection, CustomEmailMetadata
from models.db import unit_of_work
from models.event import Event, log_event
from models.gmail import GmailMetadata
from models.playbook import Playbook
from models.user import set_password
from services.accounts import create_user
from tests.api_support import token_for
from workflows.mailbox_contracts import DISCONNECT_SIGNAL, mailbox_workflow_id

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.browser_support import NewPage, PageProblems, Screenshot, ServeApp

pytest_plugins = ("tests.browser_support",)

PASSWORD = "correct horse battery staple"
SHOP_TOKEN = "shpat_do_not_show_me_4242"
GMAIL_TOKEN = "ya29.do_not_show_me_either"


def _settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        DESKPILOT_SECRET_KEY="s" * 48,
        DESKPILOT_PUBLIC_URL="http://api.test",
        INBOUND_DOMAIN="in.deskpilot.test",
        DESKPILOT_SMTP_PORT=2526,
    )


def build_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_app(sessions.kw["bind"], None, _settings())


@dataclass
class Merchant:
    id: uuid.UUID
    email: str
    token: str
    shop: uuid.UUID
    gmail: uuid.UUID
    alias: uuid.UUID


async def make_merchant(sessions: async_sessionmaker[AsyncSession], name: str) -> Merchant:
    email = f"{name}-{uuid.uuid4().hex[:6]}@store.example"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, name)  # a trial and the default playbooks
        await set_password(session, user.id, PASSWORD)
        shop = Connection(
            user_id=user.id,
            type=ConnectionType.SHOPIFY,
            access_token=SHOP_TOKEN,
            shop_domain=f"{name}-{uuid.uuid4().hex[:6]}.myshopify.com",
            metadata_={"storeName": f"{name.title()} Store"},
        )
        gmail = Connection(
            user_id=user.id,
            type=ConnectionType.GMAIL,
            access_token=GMAIL_TOKEN,
            refresh_token="1//refresh_secret",
            metadata_=GmailMetadata(
                email_address=f"support-{uuid.uuid4().hex[:6]}@gmail.test",
                last_sync_at=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
                last_error="token refresh failed: invalid_grant",
                history_id=77,
            ).to_json(),
        )
        alias = Connection(
            user_id=user.id,
            type=ConnectionType.CUSTOM_EMAIL,
            access_token="",
            metadata_=CustomEmailMetadata(
                alias=f"{name}-{uuid.uuid4().hex[:6]}@in.deskpilot.test",
                domain="in.deskpilot.test",
                support_email=f"help@{name}.example",
            ).to_json(),
        )
        session.add_all([shop, gmail, alias])
        await session.flush()
        ids = (user.id, shop.id, gmail.id, alias.id)
    return Merchant(ids[0], email, await token_for(sessions, ids[0]), *ids[1:])


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    """Signs the client in with the form; returns the session's CSRF token."""
    page = await client.get("/login")
    done = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf": _csrf(page.text)}
    )
    assert done.status_code == 303, done.text
    return (await client.get("/api/session")).json()["csrf_token"]


def _client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


@dataclass
class World:
    app: FastAPI
    a: Merchant
    b: Merchant
    web: httpx.AsyncClient  # signed in as A
    csrf: str
    api: httpx.AsyncClient  # A's bearer token


@pytest.fixture
async def world(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    app = build_app(own_sessions)
    a = await make_merchant(own_sessions, "alpha")
    b = await make_merchant(own_sessions, "bravo")
    async with _client(app) as web, _client(app, Authorization=f"Bearer {a.token}") as api:
        csrf = await sign_in(web, a.email)
        yield World(app, a, b, web, csrf, api)


async def _metadata(sessions: async_sessionmaker[AsyncSession], cid: uuid.UUID) -> dict:
    async with sessions() as session:
        row = await session.get(Connection, cid)
        assert row is not None
        return row.metadata_ or {}


# --- connections -----------------------------------------------------------------------------


async def test_connections_page_shows_each_kind_and_never_a_token(world: World) -> None:
    page = await world.web.get("/connections")
    assert page.status_code == 200
    html = page.text
    assert "Alpha Store" in html and 'action="/shopify/install"' in html
    assert 'name="shop"' in html and 'href="/gmail/connect"' in html
    assert "Connect Gmail" in html and "Install Shopify" in html
    assert "2026-11-20 08:30 UTC" in html and "invalid_grant" in html
    # Forwarding instructions name the alias and the receiver.
    assert "@in.deskpilot.test" in html and ":2526" in html
    for secret in (SHOP_TOKEN, GMAIL_TOKEN, "refresh_secret"):
        assert secret not in html
    # Only A's rows: none of B's connection ids.
    for cid in (world.b.shop, world.b.gmail, world.b.alias):
        assert str(cid) not in html
    # Every POST form carries the CSRF field.
    assert html.count('method="post"') == html.count('name="csrf"')


async def test_disable_and_enable_a_connection_with_the_form(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    for cid in (world.a.shop, world.a.gmail, world.a.alias):
        done = await world.web.post(
            f"/connections/{cid}/enabled", data={"enabled": "false", "csrf": world.csrf}
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("/connections?notice=disabled")
        assert (await _metadata(own_sessions, cid))["disabled"] is True
    # The Gmail sync state survives the switch.
    assert (await _metadata(own_sessions, world.a.gmail))["historyId"] == 77
    page = (await world.web.get("/connections?notice=disabled")).text
    assert "Disabled." in page and page.count('aria-label="Enable ') == 3
    assert page.count("badge off") == 3

    again = await world.web.post(
        f"/connections/{world.a.gmail}/enabled", data={"enabled": "true", "csrf": world.csrf}
    )
    assert again.status_code == 303
    assert (await _metadata(own_sessions, world.a.gmail))["disabled"] is False
    async with own_sessions() as session:
        types = (
            await session.execute(
                select(Event.type).where(
                    Event.user_id == world.a.id, Event.entity_id == str(world.a.gmail)
                )
            )
        ).scalars()
        assert list(types) == ["connection.disabled", "connection.enabled"]


async def test_connection_form_needs_the_csrf_token_and_owner(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    missing = await world.web.post(f"/connections/{world.a.shop}/enabled", data={"enabled": "0"})
    assert missing.status_code == 403
    theirs = await world.web.post(
        f"/connections/{world.b.shop}/enabled", data={"enabled": "false", "csrf": world.csrf}
    )
    assert theirs.status_code == 404
    # A page answers with a page: A's own list, and why nothing changed.
    assert "That connection was not found" in theirs.text and "Alpha Store" in theirs.text
    assert str(world.b.shop) not in theirs.text
    assert "disabled" not in await _metadata(own_sessions, world.b.shop)
    assert "disabled" not in await _metadata(own_sessions, world.a.shop)


async def test_connections_api_lists_and_patches(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    listed = await world.api.get("/api/connections")
    assert listed.status_code == 200
    body = listed.json()
    assert {c["id"] for c in body} == {str(world.a.shop), str(world.a.gmail), str(world.a.alias)}
    assert SHOP_TOKEN not in listed.text and GMAIL_TOKEN not in listed.text
    gmail = next(c for c in body if c["type"] == "GMAIL")
    assert gmail["enabled"] is True and gmail["last_error"].endswith("invalid_grant")

    off = await world.api.patch(f"/api/connections/{world.a.alias}", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert (await _metadata(own_sessions, world.a.alias))["disabled"] is True
    theirs = await world.api.patch(f"/api/connections/{world.b.alias}", json={"enabled": False})
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
    # The cookie needs the CSRF header on a PATCH; with it, it works.
    assert (
        await world.web.patch(f"/api/connections/{world.a.alias}", json={"enabled": True})
    ).status_code == 403
    on = await world.web.patch(
        f"/api/connections/{world.a.alias}",
        json={"enabled": True},
        headers={"X-CSRF-Token": world.csrf},
    )
    assert on.status_code == 200 and on.json()["enabled"] is True


# --- playbooks -------------------------------------------------------------------------------


async def _a_playbook(sessions: async_sessionmaker[AsyncSession], owner: uuid.UUID) -> Playbook:
    async with sessions() as session:
        return (
            await session.execute(
                select(Playbook).where(
                    Playbook.user_id == owner, Playbook.template_key == "refund-damaged-item"
                )
            )
        ).scalar_one()


async def test_playbooks_list_and_enable_disable(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    page = await world.web.get("/playbooks")
    assert page.status_code == 200 and "Refund damaged items" in page.text
    mine = await _a_playbook(own_sessions, world.a.id)
    theirs = await _a_playbook(own_sessions, world.b.id)
    assert str(mine.id) in page.text and str(theirs.id) not in page.text

    done = await world.web.post(
        f"/playbooks/{mine.id}/enabled", data={"enabled": "false", "csrf": world.csrf}
    )
    assert done.status_code == 303
    assert (await _a_playbook(own_sessions, world.a.id)).enabled is False
    assert (await _a_playbook(own_sessions, world.b.id)).enabled is True
    blocked = await world.web.post(
        f"/playbooks/{theirs.id}/enabled", data={"enabled": "false", "csrf": world.csrf}
    )
    assert blocked.status_code == 404

    api = await world.api.patch(f"/api/playbooks/{mine.id}", json={"enabled": True})
    assert api.status_code == 200 and api.json()["enabled"] is True
    assert (await world.api.get(f"/api/playbooks/{theirs.id}")).status_code == 404
    listed = (await world.api.get("/api/playbooks")).json()
    assert str(mine.id) in {p["id"] for p in listed}
    assert str(theirs.id) not in {p["id"] for p in listed}


async def test_playbook_edit_shows_errors_and_keeps_what_was_typed(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    playbook = await _a_playbook(own_sessions, world.a.id)
    edit = await world.web.get(f"/playbooks/{playbook.id}")
    assert edit.status_code == 200 and "message.received" in edit.text
    good_trigger = json.dumps(playbook.trigger)
    good_actions = json.dumps(playbook.actions)

    broken = '[{"version": 1, "field": "order.total_amount", "operator": "lt", "value": 5'
    bad_json = await world.web.post(
        f"/playbooks/{playbook.id}",
        data={
            "csrf": world.csrf,
            "trigger": good_trigger,
            "conditions": broken,
            "actions": good_actions,
            "confidence_threshold": "0.8",
        },
    )
    assert bad_json.status_code == 422
    assert "conditions: not valid JSON" in bad_json.text
    # Only the part in error is marked invalid.
    assert re.search(r'id="conditions"[^>]*aria-invalid="true"', bad_json.text)
    assert not re.search(r'id="trigger"[^>]*aria-invalid', bad_json.text)
    assert 'role="alert"' in bad_json.text
    # What was typed is in the textarea, escaped.
    assert "&#34;order.total_amount&#34;, &#34;operator&#34;: &#34;lt&#34;" in bad_json.text

    unknown_field = json.dumps(
        [{"version": 1, "field": "order.colour", "operator": "eq", "value": "red"}]
    )
    invalid = await world.web.post(
        f"/playbooks/{playbook.id}",
        data={
            "csrf": world.csrf,
            "trigger": good_trigger,
            "conditions": unknown_field,
            "actions": good_actions,
            "confidence_threshold": "1.5",
        },
    )
    assert invalid.status_code == 422
    assert "confidence threshold: a number from 0 to 1" in invalid.text
    assert 'value="1.5"' in invalid.text
    stored = await _a_playbook(own_sessions, world.a.id)
    assert stored.conditions == playbook.conditions and stored.confidence_threshold == 0.9

    rule_error = await world.web.post(
        f"/playbooks/{playbook.id}",
        data={
            "csrf": world.csrf,
            "trigger": good_trigger,
            "conditions": unknown_field,
            "actions": good_actions,
            "confidence_threshold": "0.8",
        },
    )
    assert rule_error.status_code == 422
    assert "unknown field &#39;order.colour&#39;" in rule_error.text

    conditions = [{"version": 1, "field": "order.total_amount", "operator": "lt", "value": 50}]
    saved = await world.web.post(
        f"/playbooks/{playbook.id}",
        data={
            "csrf": world.csrf,
            "trigger": good_trigger,
            "conditions": json.dumps(conditions),
            "actions": good_actions,
            "confidence_threshold": "0.75",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/playbooks/{playbook.id}?notice=saved"
    stored = await _a_playbook(own_sessions, world.a.id)
    # Normalised: written as version 2, the number as Decimal text.
    assert stored.conditions == [{**conditions[0], "version": 2, "value": "50"}]
    assert stored.confidence_threshold == 0.75
    assert stored.requires_approval is False  # the checkbox was not sent

    theirs = await _a_playbook(own_sessions, world.b.id)
    missing = await world.web.get(f"/playbooks/{theirs.id}")
    assert missing.status_code == 404 and "That playbook was not found" in missing.text
    assert str(theirs.id) not in missing.text and str(playbook.id) in missing.text
    blocked = await world.web.post(
        f"/playbooks/{theirs.id}",
        data={
            "csrf": world.csrf,
            "trigger": good_trigger,
            "conditions": "[]",
            "actions": good_actions,
            "confidence_threshold": "0.5",
        },
    )
    assert blocked.status_code == 404
    assert (await _a_playbook(own_sessions, world.b.id)).confidence_threshold == 0.9


async def test_playbook_rules_api_answers_422_with_a_message(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    playbook = await _a_playbook(own_sessions, world.a.id)
    body = {"trigger": playbook.trigger, "conditions": [], "actions": []}
    bad = await world.api.put(f"/api/playbooks/{playbook.id}/rules", json=body)
    assert bad.status_code == 422
    assert bad.json()["error"] == {
        "code": "invalid_playbook",
        "message": "actions: a playbook needs at least one action",
    }
    body["actions"] = [{"version": 1, "type": "escalate", "reason": "a person looks first"}]
    good = await world.api.put(f"/api/playbooks/{playbook.id}/rules", json=body)
    assert good.status_code == 200, good.text
    # A version-1 document is accepted and stored as version 2.
    assert good.json()["actions"] == [{**body["actions"][0], "version": 2}]
    assert good.json()["conditions"] == []
    theirs = await _a_playbook(own_sessions, world.b.id)
    assert (await world.api.put(f"/api/playbooks/{theirs.id}/rules", json=body)).status_code == 404


# --- usage -----------------------------------------------------------------------------------


async def test_usage_page_and_api_show_counters_against_limits(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(own_sessions) as session:
        sub = (
            await session.execute(select(Subscription).where(Subscription.user_id == world.a.id))
        ).scalar_one()
        session.add(
            UsageRecord(
                subscription_id=sub.id,
                period_start=sub.current_period_start,
                period_end=sub.current_period_end,
                emails_sent=7,
                emails_received=260,
                ai_suggestions=25,
            )
        )
        session.add(
            UsageRecord(
                subscription_id=sub.id,
                period_start=sub.current_period_start - timedelta(days=30),
                period_end=sub.current_period_start,
                emails_sent=3,
            )
        )
    page = await world.web.get("/usage")
    assert page.status_code == 200
    assert "Trial plan" in page.text
    assert "7 of 100" in page.text and "25 of 100" in page.text
    # Past the limit: the bar is full, the count says how far.
    assert "260 of 250" in page.text and 'max="250" value="250"' in page.text
    assert page.text.count("<tr>") == 1 + 2  # the header and two periods

    api = (await world.api.get("/api/usage")).json()
    assert api["summary"]["usage"] == {
        "emails_sent": 7,
        "emails_received": 260,
        "ai_suggestions": 25,
    }
    assert api["summary"]["limits"]["emails_sent"] == 100
    assert [p["usage"]["emails_sent"] for p in api["history"]] == [7, 3]
    other = await _client(world.app, Authorization=f"Bearer {world.b.token}").get("/api/usage")
    assert other.json()["summary"]["usage"]["emails_sent"] == 0 and other.json()["history"] == []


# --- audit log -------------------------------------------------------------------------------


async def _events(sessions: async_sessionmaker[AsyncSession], owner: uuid.UUID, n: int) -> None:
    t0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    async with unit_of_work(sessions) as session:
        for i in range(n):
            event = await log_event(
                session,
                "action.executed" if i % 2 else "message.received",
                user_id=owner,
                entity="action" if i % 2 else "message",
                entity_id=f"e-{i}",
                payload={"i": i},
            )
            event.created_at = t0 + timedelta(hours=i)
        # Two at the very same instant: the id breaks the tie, none is skipped or repeated.
        await session.flush()
        await session.execute(
            update(Event)
            .where(Event.user_id == owner, Event.entity_id.in_(["e-4", "e-5"]))
            .values(created_at=t0 + timedelta(hours=4))
        )


async def test_events_api_filters_and_pages_newest_first(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _events(own_sessions, world.a.id, 9)
    await _events(own_sessions, world.b.id, 3)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        # The window leaves out what signing up logged today.
        params = {"limit": "2", "since": "2026-11-10T00:00:00Z", "until": "2026-11-20T00:00:00Z"}
        if cursor:
            params["cursor"] = cursor
        page = (await world.api.get("/api/events", params=params)).json()
        seen += [e["entity_id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 9 and len(set(seen)) == 9  # B's events never appear
    assert seen[:3] == ["e-8", "e-7", "e-6"] and seen[-1] == "e-0"

    actions = (await world.api.get("/api/events", params={"entity": "action"})).json()
    assert [e["entity_id"] for e in actions["events"]] == ["e-7", "e-5", "e-3", "e-1"]
    typed = (await world.api.get("/api/events", params={"type": "message.*"})).json()
    assert {e["type"] for e in typed["events"]} == {"message.received"}
    ranged = await world.api.get(
        "/api/events",
        params={"since": "2026-11-10T13:00:00+00:00", "until": "2026-11-10T15:00:00+00:00"},
    )
    assert [e["entity_id"] for e in ranged.json()["events"]] == ["e-2", "e-1"]
    one = (await world.api.get("/api/events", params={"entity_id": "e-3"})).json()
    assert [e["payload"] for e in one["events"]] == [{"i": 3}]
    bad = await world.api.get("/api/events", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["message"]


async def test_audit_page_filters_and_paginates(
    world: World, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _events(own_sessions, world.a.id, 55)
    first = await world.web.get("/audit", params={"since": "2026-11-10", "until": "2026-11-19"})
    assert first.status_code == 200
    assert first.text.count("<tr>") == 1 + settings_pages.AUDIT_PAGE_SIZE  # header + a page
    older = re.search(r'href="(/audit\?[^"]+)" rel="next"', first.text)
    assert older, first.text
    second = await world.web.get(older.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert second.text.count("<tr>") == 1 + 55 - settings_pages.AUDIT_PAGE_SIZE
    assert "e-0" in second.text and 'rel="next"' not in second.text
    assert 'href="/audit?since=2026-11-10&amp;until=2026-11-19">Newest' in second.text

    filtered = await world.web.get("/audit", params={"type": "action.executed"})
    assert "message.received</td>" not in filtered.text
    assert '<option value="action.executed" selected>' in filtered.text
    nul = await world.web.get("/audit", params={"type": "action.exec\x00uted", "entity_id": "\x00"})
    assert nul.status_code == 200 and '<option value="action.executed" selected>' in nul.text
    day = await world.web.get("/audit", params={"since": "2026-11-11", "until": "2026-11-11"})
    assert day.text.count("<tr>") == 1 + 24
    wrong = await world.web.get("/audit", params={"since": "yesterday"})
    assert wrong.status_code == 400 and "is not a date" in wrong.text


async def test_the_json_api_is_in_the_openapi_document_and_the_pages_are_not(
    world: World,
) -> None:
    paths = (await world.api.get("/openapi.json")).json()["paths"]
    assert "patch" in paths["/api/connections/{connection_id}"]
    assert "put" in paths["/api/playbooks/{playbook_id}/rules"]
    assert "get" in paths["/api/events"] and "get" in paths["/api/usage"]
    assert "/connections" not in paths and "/audit" not in paths


async def test_pages_send_a_signed_out_browser_to_sign_in(world: World) -> None:
    async with _client(world.app) as anonymous:
        for path in ("/connections", "/playbooks", "/usage", "/audit"):
            response = await anonymous.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/login?next={path}"
        assert (await anonymous.get("/api/events")).status_code == 401


# --- in a real browser, on a phone -----------------------------------------------------------


async def _no_sideways_scroll(page: Page) -> None:
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], f"{page.url}: the page scrolls sideways: {widths}"


async def test_settings_pages_on_a_phone(
    own_sessions: async_sessionmaker[AsyncSession],
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    app = build_app(own_sessions)
    me = await make_merchant(own_sessions, "phone")
    async with unit_of_work(own_sessions) as session:
        for i in range(30):
            await log_event(
                session,
                "connection.a_rather_long_event_type_name_without_breaks",
                user_id=me.id,
                entity="connection",
                entity_id=me.gmail,
                payload={"i": i, "detail": "x" * 300},
            )
    playbook = await _a_playbook(own_sessions, me.id)
    async with served_app(app) as base_url:
        phone = await new_page("phone", base_url=base_url)
        await phone.goto("/connections")
        await phone.fill("#email", me.email)
        await phone.fill("#password", PASSWORD)
        await phone.click("button[type=submit]")
        await phone.wait_for_url("**/connections")
        for path, name in (
            ("/connections", "settings-connections-phone"),
            ("/playbooks", "settings-playbooks-phone"),
            (f"/playbooks/{playbook.id}", "settings-playbook-edit-phone"),
            ("/usage", "settings-usage-phone"),
            ("/audit", "settings-audit-phone"),
        ):
            response = await phone.goto(path)
            assert response is not None and response.status == 200, path
            await _no_sideways_scroll(phone)
            await screenshot(phone, name)
        await screenshot(phone, "settings-audit-phone-top", full_page=False)  # type: ignore[call-arg]

        # Disable the mailbox with its button; the page says so.
        await phone.goto("/connections")
        await phone.get_by_role("button", name=re.compile(r"^Disable support-")).click()
        await phone.wait_for_url("**/connections?notice=disabled*")
        assert await phone.get_by_role("status").inner_text() == "Disabled."
        assert (await _metadata(own_sessions, me.gmail))["disabled"] is True

        # A typo in the rules: the error is shown and the text typed stays.
        await phone.goto(f"/playbooks/{playbook.id}")
        await phone.locator("#advanced-json > summary").click()
        await phone.fill("#conditions", '[{"version": 1,')
        await phone.get_by_role("button", name="Save the JSON").click()
        await phone.wait_for_load_state()
        assert "conditions: not valid JSON" in await phone.get_by_role("alert").inner_text()
        assert await phone.input_value("#conditions") == '[{"version": 1,'
        await _no_sideways_scroll(phone)
        await screenshot(phone, "settings-playbook-error-phone")
    page_problems.assert_none(allow_status=[422])


async def test_a_mailbox_switched_on_starts_its_sync_and_switched_off_is_told_to_stop(
    own_sessions: async_sessionmaker[AsyncSession], temporal_dev: WorkflowEnvironment
) -> None:
    # No worker polls this queue: the workflow stays as started, with what it was sent.
    queue = f"settings-{uuid.uuid4().hex[:8]}"
    app = create_app(own_sessions.kw["bind"], temporal_dev.client, _settings(), task_queue=queue)
    me = await make_merchant(own_sessions, "temporal")
    handle = temporal_dev.client.get_workflow_handle(mailbox_workflow_id(me.gmail))
    async with _client(app, Authorization=f"Bearer {me.token}") as api:
        # Off while nothing runs: nothing to tell, and the switch still succeeds.
        off = await api.patch(f"/api/connections/{me.gmail}", json={"enabled": False})
        assert off.status_code == 200
        with pytest.raises(RPCError):
            await handle.describe()

        on = await api.patch(f"/api/connections/{me.gmail}", json={"enabled": True})
        assert on.status_code == 200
        description = await handle.describe()
        assert description.status is WorkflowExecutionStatus.RUNNING
        assert description.task_queue == queue

        off = await api.patch(f"/api/connections/{me.gmail}", json={"enabled": False})
        assert off.status_code == 200
        signals = [
            e.workflow_execution_signaled_event_attributes.signal_name
            async for e in handle.fetch_history_events()
            if e.HasField("workflow_execution_signaled_event_attributes")
        ]
        assert signals == [DISCONNECT_SIGNAL]
        # Other kinds of connection have no sync to start.
        assert (
            await api.patch(f"/api/connections/{me.alias}", json={"enabled": True})
        ).status_code == 200
    await handle.terminate("test over")
