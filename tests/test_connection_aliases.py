"""Forwarding aliases made from the connections page and the JSON API, over HTTP (in-process
ASGI) against a real PostgreSQL, and the built-in SMTP receiver on loopback: creating one for
an own store only, disabling and re-enabling it at the receiver, deleting it while its mail
stays in the inbox; two merchants, the refusals for each."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtplib.errors import SMTPRecipientRefused
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from deskpilot.smtp_receiver import smtp_receiver
from domain.alias_address import alias_address, alias_slug
from kernel.enums import ConnectionType
from models.connection import Connection
from models.conversation import Message, Thread
from models.event import Event
from tests.api_support import raw_email
from tests.test_settings_pages import Merchant, _settings, build_app, make_merchant, sign_in

DOMAIN = "in.deskpilot.test"  # the inbound domain of test_settings_pages._settings()


@dataclass
class Desk:
    app: FastAPI
    a: Merchant
    b: Merchant
    web: httpx.AsyncClient  # signed in as A
    csrf: str
    api: httpx.AsyncClient  # A's bearer token
    sessions: async_sessionmaker[AsyncSession]

    async def shop_domain(self, merchant: Merchant) -> str:
        async with self.sessions() as session:
            shop = await session.get(Connection, merchant.shop)
            assert shop is not None and shop.shop_domain
            return shop.shop_domain

    async def alias_rows(self, merchant: Merchant) -> list[Connection]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Connection).where(
                    Connection.user_id == merchant.id,
                    Connection.type == ConnectionType.CUSTOM_EMAIL,
                )
            )
            return list(rows.scalars())


def _client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


@pytest.fixture
async def desk(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Desk]:
    app = build_app(own_sessions)
    a = await make_merchant(own_sessions, "alpha")
    b = await make_merchant(own_sessions, "bravo")
    async with _client(app) as web, _client(app, Authorization=f"Bearer {a.token}") as api:
        csrf = await sign_in(web, a.email)
        yield Desk(app, a, b, web, csrf, api, own_sessions)


async def _create(desk: Desk, **fields: Any) -> httpx.Response:
    body = {
        "type": "CUSTOM_EMAIL",
        "shop_domain": await desk.shop_domain(desk.a),
        "support_email": "help@alpha.example",
        "store_name": "Alpha Store",
    } | fields
    return await desk.api.post("/api/connections", json=body)


async def _rcpt(port: int, address: str) -> tuple[int, str]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=10)
    await client.connect()
    try:
        await client.mail("customer@example.com")
        try:
            reply = await client.rcpt(address)
        except SMTPRecipientRefused as exc:
            return exc.code, exc.message
        return reply.code, reply.message
    finally:
        await client.quit()


# --- the address -----------------------------------------------------------------------------


def test_the_alias_is_the_store_name_and_a_random_tail() -> None:
    assert alias_address("Ümlaut & Co. Shop!", "In.Example", tail="00ff") == (
        "mlaut-co-shop-00ff@in.example"
    )
    assert alias_slug("!!!") == "support"  # nothing usable in the name
    assert len(alias_slug("x" * 80)) == 24
    assert alias_address("A", DOMAIN) != alias_address("A", DOMAIN)


# --- the JSON API ----------------------------------------------------------------------------


async def test_api_creates_an_alias_for_an_own_store(desk: Desk) -> None:
    shop = await desk.shop_domain(desk.a)
    made = await _create(desk, shop_domain=shop.upper())  # a domain's case does not matter
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["type"] == "CUSTOM_EMAIL" and body["enabled"] is True
    assert re.fullmatch(r"alpha-store-[0-9a-f]{8}@in\.deskpilot\.test", body["alias"])
    assert body["label"] == body["alias"]
    assert body["shop_domain"] == shop  # as the store is stored
    assert body["support_email"] == "help@alpha.example"
    assert body["store_name"] == "Alpha Store"
    assert "access_token" not in made.text

    listed = (await desk.api.get("/api/connections")).json()
    assert next(c for c in listed if c["id"] == body["id"]) == body
    again = await _create(desk)
    assert again.status_code == 201 and again.json()["alias"] != body["alias"]
    async with desk.sessions() as session:
        created = (
            await session.execute(
                select(Event.entity_id).where(
                    Event.user_id == desk.a.id, Event.type == "connection.created"
                )
            )
        ).scalars()
        assert set(created) == {body["id"], again.json()["id"]}


async def test_api_refuses_other_types_stores_that_are_not_yours_and_bad_fields(
    desk: Desk,
) -> None:
    before = len(await desk.alias_rows(desk.a))
    shopify = await _create(desk, type="SHOPIFY")
    assert shopify.status_code == 422
    error = shopify.json()["error"]
    assert error["code"] == "unsupported_type" and "CUSTOM_EMAIL" in error["message"]
    assert (await _create(desk, type="FAX")).status_code == 422

    theirs = await _create(desk, shop_domain=await desk.shop_domain(desk.b))
    nobodys = await _create(desk, shop_domain="nobody.myshopify.com")
    for refused in (theirs, nobodys):
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "unknown_shop"
        assert "not one of your connected Shopify stores" in refused.json()["error"]["message"]

    assert (await _create(desk, support_email="not an address")).status_code == 422
    header_forgery = await _create(desk, store_name="Alpha\r\nBcc: all@example.com")
    assert header_forgery.status_code == 422
    assert (await _create(desk, store_name="   ")).status_code == 422
    # The session cookie needs the CSRF header, like every other change.
    no_csrf = await desk.web.post(
        "/api/connections",
        json={
            "type": "CUSTOM_EMAIL",
            "shop_domain": await desk.shop_domain(desk.a),
            "support_email": "help@alpha.example",
            "store_name": "Alpha Store",
        },
    )
    assert no_csrf.status_code == 403
    assert len(await desk.alias_rows(desk.a)) == before
    assert len(await desk.alias_rows(desk.b)) == 1


async def test_disabling_an_alias_closes_it_at_the_receiver_and_enabling_reopens_it(
    desk: Desk,
) -> None:
    made = (await _create(desk)).json()
    async with smtp_receiver(desk.sessions, None, _settings(), port=0) as port:
        assert (await _rcpt(port, made["alias"]))[0] == 250
        off = await desk.api.patch(f"/api/connections/{made['id']}", json={"enabled": False})
        assert off.status_code == 200 and off.json()["enabled"] is False
        code, text = await _rcpt(port, made["alias"])
        assert code == 550 and "disabled" in text
        on = await desk.api.patch(f"/api/connections/{made['id']}", json={"enabled": True})
        assert on.status_code == 200 and on.json()["enabled"] is True
        assert (await _rcpt(port, made["alias"]))[0] == 250


async def test_deleting_an_alias_keeps_its_messages(desk: Desk) -> None:
    made = (await _create(desk)).json()
    cid = uuid.UUID(made["id"])
    async with smtp_receiver(desk.sessions, None, _settings(), port=0) as port:
        # Real mail through the alias: stored with the alias as its connection.
        await aiosmtplib.send(
            raw_email(to=made["alias"], subject="Forwarded to the new alias"),
            sender="ava.patel@example.com",
            recipients=[made["alias"]],
            hostname="127.0.0.1",
            port=port,
        )
        async with desk.sessions() as session:
            message = (
                await session.execute(select(Message).where(Message.connection_id == cid))
            ).scalar_one()
            message_id, thread_id = message.id, message.thread_id

        # B cannot delete A's alias, and a store or a mailbox is not deleted from here.
        b_api = _client(desk.app, Authorization=f"Bearer {desk.b.token}")
        async with b_api:
            theirs = await b_api.delete(f"/api/connections/{cid}")
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
        for other in (desk.a.shop, desk.a.gmail):
            kept = await desk.api.delete(f"/api/connections/{other}")
            assert kept.status_code == 409 and "disabled, not deleted" in kept.text
        assert (await desk.web.delete(f"/api/connections/{cid}")).status_code == 403  # no CSRF

        gone = await desk.api.delete(f"/api/connections/{cid}")
        assert gone.status_code == 204 and gone.content == b""
        assert (await desk.api.delete(f"/api/connections/{cid}")).status_code == 404
        listed = (await desk.api.get("/api/connections")).json()
        assert made["id"] not in {c["id"] for c in listed}
        # The alias no longer takes mail.
        assert (await _rcpt(port, made["alias"]))[0] == 550

    async with desk.sessions() as session:
        kept_message = await session.get(Message, message_id)
        assert kept_message is not None and kept_message.connection_id is None
        assert kept_message.subject == "Forwarded to the new alias"
        assert await session.get(Thread, thread_id) is not None
        assert await session.get(Connection, desk.a.shop) is not None
        deleted = (
            await session.execute(
                select(func.count())
                .select_from(Event)
                .where(
                    Event.user_id == desk.a.id,
                    Event.type == "connection.deleted",
                    Event.entity_id == str(cid),
                )
            )
        ).scalar_one()
        assert deleted == 1
    thread = await desk.api.get(f"/api/threads/{thread_id}")
    assert thread.status_code == 200 and "Forwarded to the new alias" in thread.text


# --- the connections page --------------------------------------------------------------------


async def test_the_page_creates_an_alias_and_explains_forwarding(desk: Desk) -> None:
    page = (await desk.web.get("/connections")).text
    shop = await desk.shop_domain(desk.a)
    assert 'action="/connections"' in page and f'value="{shop}"' in page
    assert await desk.shop_domain(desk.b) not in page  # only A's stores to choose from

    done = await desk.web.post(
        "/connections",
        data={
            "shop_domain": shop,
            "support_email": "care@alpha.example",
            "store_name": "Alpha Care",
            "csrf": desk.csrf,
        },
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith("/connections?notice=created#c-")
    rows = [r for r in await desk.alias_rows(desk.a) if r.metadata_["storeName"] == "Alpha Care"]
    assert len(rows) == 1
    alias = rows[0].metadata_["alias"]
    assert alias.startswith("alpha-care-") and rows[0].shop_domain == shop
    assert rows[0].metadata_["supportEmail"] == "care@alpha.example"

    page = (await desk.web.get(done.headers["location"])).text
    assert "Forwarding address created" in page
    assert f"<code>{alias}</code>" in page and "Replies are sent as care@alpha.example" in page
    # How to forward, in Gmail (with its confirmation arriving in the inbox) and Outlook.
    assert "Forwarding and POP/IMAP" in page and "forwarding-noreply@google.com" in page
    assert "Outlook on the web" in page and "Enable forwarding" in page
    assert f'action="/connections/{rows[0].id}/delete"' in page
    assert f'action="/connections/{rows[0].id}/enabled"' in page
    assert page.count('method="post"') == page.count('name="csrf"')


async def test_the_create_form_needs_csrf_and_an_own_store(desk: Desk) -> None:
    fields = {"support_email": "care@alpha.example", "store_name": "Alpha Care"}
    before = len(await desk.alias_rows(desk.a))
    missing = await desk.web.post(
        "/connections", data=fields | {"shop_domain": await desk.shop_domain(desk.a)}
    )
    assert missing.status_code == 403
    theirs = await desk.web.post(
        "/connections",
        data=fields | {"shop_domain": await desk.shop_domain(desk.b), "csrf": desk.csrf},
    )
    assert theirs.status_code == 422
    assert "not one of your connected Shopify stores" in theirs.text
    assert 'value="care@alpha.example"' in theirs.text  # the form keeps what was typed
    bad = await desk.web.post(
        "/connections",
        data=fields
        | {
            "shop_domain": await desk.shop_domain(desk.a),
            "support_email": "nope",
            "csrf": desk.csrf,
        },
    )
    assert bad.status_code == 422 and "support_email" in bad.text
    assert len(await desk.alias_rows(desk.a)) == before
    assert len(await desk.alias_rows(desk.b)) == 1


async def test_the_delete_form_asks_for_confirmation_and_the_owner(desk: Desk) -> None:
    made = (await _create(desk)).json()
    unconfirmed = await desk.web.post(f"/connections/{made['id']}/delete", data={"csrf": desk.csrf})
    assert unconfirmed.status_code == 400 and "Tick the confirmation" in unconfirmed.text
    no_csrf = await desk.web.post(f"/connections/{made['id']}/delete", data={"confirm": "yes"})
    assert no_csrf.status_code == 403
    theirs = await desk.web.post(
        f"/connections/{desk.b.alias}/delete", data={"confirm": "yes", "csrf": desk.csrf}
    )
    assert theirs.status_code == 404 and "That connection was not found" in theirs.text
    shop = await desk.web.post(
        f"/connections/{desk.a.shop}/delete", data={"confirm": "yes", "csrf": desk.csrf}
    )
    assert shop.status_code == 409
    assert {str(r.id) for r in await desk.alias_rows(desk.a)} >= {made["id"]}
    assert len(await desk.alias_rows(desk.b)) == 1

    done = await desk.web.post(
        f"/connections/{made['id']}/delete", data={"confirm": "yes", "csrf": desk.csrf}
    )
    assert done.status_code == 303 and "notice=deleted" in done.headers["location"]
    assert made["id"] not in {str(r.id) for r in await desk.alias_rows(desk.a)}
    page = (await desk.web.get(done.headers["location"])).text
    assert "the mail it brought in stays in the inbox" in page and made["alias"] not in page
