"""A Shopify install launched from Shopify's admin with nobody signed in to deskpilot.

Real HTTP end to end: the browser is an httpx client on the API (in-process ASGI, keeping
its cookies), Shopify's consent is the sandbox over loopback, and a real Temporal worker
mails the verification link to the sandbox's mail sink and backfills the store's orders.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.shopify_oauth import INSTALL_COOKIE
from api.web_auth import SESSION_COOKIE
from kernel.enums import ConnectionType
from models import Connection, Event
from models.billing import Subscription
from models.db import unit_of_work
from models.oauth_state import OAuthState
from models.playbook import Playbook
from models.user import User
from sandbox.server import Sandbox
from services.accounts import create_user
from tests.api_support import token_for
from tests.pipeline import running_pipeline
from tests.test_shopify_install import (
    API_KEY,
    API_SECRET,
    PUBLIC_URL,
    install_settings,
    new_shop,
    sign,
    wait_for_orders,
)

WAIT_S = 30
HTML = {"Accept": "text/html"}


@dataclass
class Desk:
    sessions: async_sessionmaker[AsyncSession]
    sandbox: Sandbox
    app: object
    shopify: httpx.AsyncClient  # what a browser does at Shopify: follow the consent

    def browser(self, **headers: str) -> httpx.AsyncClient:
        """A fresh browser: no cookies yet."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
            base_url=PUBLIC_URL,
            headers=headers,
        )

    def add_shop(self, orders: int = 0) -> str:
        shop = new_shop()
        self.sandbox.shopify.add_shop(shop, orders=orders)
        return shop

    def token_of(self, shop: str) -> str:
        """The newest token the sandbox minted for our app at `shop`."""
        tokens = self.sandbox.shopify.state.shops[shop].tokens
        return [t for t, (key, _) in tokens.items() if key == API_KEY][-1]

    async def consent(self, browser: httpx.AsyncClient, shop: str) -> str:
        """Launch from Shopify's admin, approve: the callback's path and query."""
        params = sign({"shop": shop, "timestamp": str(int(time.time())), "host": "YWRtaW4"})
        started = await browser.get("/shopify/install", params=params)
        assert started.status_code == 302, started.text
        approved = await self.shopify.get(started.headers["location"])
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        assert f"{back.scheme}://{back.netloc}" == PUBLIC_URL
        return f"{back.path}?{back.query}"

    async def launch(
        self, browser: httpx.AsyncClient, shop: str, *, html: bool = True
    ) -> httpx.Response:
        callback = await self.consent(browser, shop)
        return await browser.get(callback, headers=HTML if html else {})

    async def connection(self, shop: str) -> Connection | None:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(Connection).where(
                        Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop
                    )
                )
            ).scalar_one_or_none()

    async def user(self, email: str) -> User | None:
        async with self.sessions() as session:
            return (
                await session.execute(select(User).where(func.lower(User.email) == email.lower()))
            ).scalar_one_or_none()

    async def mail_to(self, address: str) -> str:
        """The text of the first email that reached the sink for `address` (waits for it)."""
        sink = self.sandbox.sink
        async with asyncio.timeout(WAIT_S):
            while True:
                for i, delivery in enumerate(sink.deliveries):
                    if address in delivery.recipients:
                        email = message_from_bytes(sink.raw(i), policy=default)
                        body = email.get_body(preferencelist=("plain",))
                        assert body is not None
                        return str(body.get_content())
                await asyncio.sleep(0.1)


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    queue = f"install-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        merchant.sandbox.shopify.state.register_app(
            API_KEY, API_SECRET, scopes="read_orders,write_orders"
        )
        settings = install_settings(merchant.sandbox_url, DESKPILOT_SECRET_KEY="s" * 48)
        app = create_app(engine, temporal_dev.client, settings, task_queue=queue)
        async with httpx.AsyncClient(timeout=10) as shopify:
            yield Desk(own_sessions, merchant.sandbox, app, shopify)


async def test_an_install_begun_at_shopify_opens_an_unverified_account_and_signs_in(
    desk: Desk,
) -> None:
    shop = desk.add_shop(orders=5)
    owner = f"owner@{shop}"
    async with desk.browser() as browser:
        done = await desk.launch(browser, shop)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/inbox"
        assert SESSION_COOKIE in done.cookies
        # The session works on the JSON API and on the pages.
        me = await browser.get("/api/session")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == owner
        page = await browser.get("/connections")
        assert page.status_code == 200 and shop in page.text

    user = await desk.user(owner)
    assert user is not None
    assert user.email_verified_at is None and user.password_hash is None
    connection = await desk.connection(shop)
    assert connection is not None and connection.user_id == user.id
    assert connection.access_token == desk.token_of(shop)
    async with desk.sessions() as session:
        assert await session.scalar(select(Subscription).where(Subscription.user_id == user.id))
        playbooks = await session.scalar(
            select(func.count()).select_from(Playbook).where(Playbook.user_id == user.id)
        )
    assert playbooks and playbooks > 0
    # The verification link went to the shop owner's address.
    assert re.search(r"/verify\?token=[\w-]+", await desk.mail_to(owner))
    # The store's orders were brought in by the backfill, not by any webhook.
    await wait_for_orders(desk.sessions, shop, 5)
    async with desk.sessions() as session:
        backfilled = await session.scalar(
            select(Event.payload).where(
                Event.type == "shopify.orders_backfilled", Event.entity_id == str(connection.id)
            )
        )
    assert backfilled == {"orders": 5}


async def test_a_json_client_gets_the_installed_answer_and_a_session(desk: Desk) -> None:
    shop = desk.add_shop()
    async with desk.browser() as client:
        done = await desk.launch(client, shop, html=False)
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["shop_domain"] == shop and body["new_account"] is True
        user = await desk.user(f"owner@{shop}")
        assert user is not None and body["signed_in_user_id"] == str(user.id)
        assert (await client.get("/api/session")).json()["user"]["id"] == str(user.id)


async def test_launching_an_installed_shop_again_signs_in_its_merchant(desk: Desk) -> None:
    shop = desk.add_shop()
    # Installed by a merchant signed in with an API token (from the connections page).
    async with unit_of_work(desk.sessions) as session:
        merchant = await create_user(session, f"m-{uuid.uuid4().hex[:6]}@store.test")
    token = await token_for(desk.sessions, merchant.id)
    async with desk.browser(Authorization=f"Bearer {token}") as signed_in:
        started = await signed_in.get("/shopify/install", params={"shop": shop})
        assert started.status_code == 302
        assert INSTALL_COOKIE not in started.cookies  # a merchant's state needs no cookie
        approved = await desk.shopify.get(started.headers["location"])
        back = urlsplit(approved.headers["location"])
        installed = await signed_in.get(f"{back.path}?{back.query}", headers=HTML)
        assert installed.status_code == 303, installed.text
        assert installed.headers["location"] == "/connections?notice=installed"
    first_token = desk.token_of(shop)

    # Later, from Shopify's admin, in a browser signed in to nothing.
    async with desk.browser() as browser:
        done = await desk.launch(browser, shop)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/connections?notice=installed"
        me = await browser.get("/api/session")
        assert me.json()["user"]["id"] == str(merchant.id)
        page = await browser.get("/connections?notice=installed")
        assert "Store connected" in page.text
    connection = await desk.connection(shop)
    assert connection is not None and connection.user_id == merchant.id
    assert connection.access_token == desk.token_of(shop) != first_token
    # No account was opened for the shop's owner address.
    assert await desk.user(f"owner@{shop}") is None


async def test_an_owner_email_an_account_has_is_not_signed_in(desk: Desk) -> None:
    shop = desk.add_shop()
    async with unit_of_work(desk.sessions) as session:
        existing = await create_user(session, f"Owner@{shop}")
    async with desk.browser() as browser:
        refused = await desk.launch(browser, shop)
        assert refused.status_code == 409
        assert "text/html" in refused.headers["content-type"]
        assert "already exists" in refused.text and "/login?next=/connections" in refused.text
        assert SESSION_COOKIE not in refused.cookies
        assert (await browser.get("/api/session")).status_code == 401
    async with desk.browser() as client:
        refused = await desk.launch(client, shop, html=False)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "account_exists"
        assert (await client.get("/api/session")).status_code == 401
    assert await desk.connection(shop) is None
    user = await desk.user(f"owner@{shop}")
    assert user is not None and user.id == existing.id


async def test_a_forged_or_stale_launch_is_refused(desk: Desk) -> None:
    shop = desk.add_shop()
    now = str(int(time.time()))
    async with desk.browser() as browser:
        forged = sign({"shop": shop, "timestamp": now, "host": "x"}, "not-the-secret")
        response = await browser.get("/shopify/install", params=forged)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        stale = sign({"shop": shop, "timestamp": str(int(time.time()) - 600), "host": "x"})
        assert (await browser.get("/shopify/install", params=stale)).status_code == 401
        # A parameter changed after Shopify signed breaks the signature too.
        signed = sign({"shop": shop, "timestamp": now, "host": "x"})
        tampered = signed | {"shop": new_shop()}
        assert (await browser.get("/shopify/install", params=tampered)).status_code == 401
        assert INSTALL_COOKIE not in browser.cookies
    async with desk.sessions() as session:
        states = await session.scalar(
            select(func.count()).select_from(OAuthState).where(OAuthState.shop_domain == shop)
        )
    assert states == 0


async def test_a_callback_opened_in_another_browser_signs_nobody_in(desk: Desk) -> None:
    shop = desk.add_shop()
    async with desk.browser() as attacker:
        callback = await desk.consent(attacker, shop)
    # The callback URL of someone else's install, e.g. sent in a link.
    async with desk.browser() as victim:
        response = await victim.get(callback, headers=HTML)
        assert response.status_code == 401
        assert SESSION_COOKIE not in response.cookies
        assert (await victim.get("/api/session")).status_code == 401
    assert await desk.connection(shop) is None
    assert await desk.user(f"owner@{shop}") is None


async def test_a_second_merchant_claiming_an_installed_shop_gets_a_page(desk: Desk) -> None:
    shop = desk.add_shop()
    async with desk.browser() as browser:
        assert (await desk.launch(browser, shop)).status_code == 303
    owner = await desk.user(f"owner@{shop}")
    assert owner is not None
    async with unit_of_work(desk.sessions) as session:
        other = await create_user(session, f"m-{uuid.uuid4().hex[:6]}@store.test")
    token = await token_for(desk.sessions, other.id)
    async with desk.browser(Authorization=f"Bearer {token}") as claimer:
        started = await claimer.get("/shopify/install", params={"shop": shop})
        approved = await desk.shopify.get(started.headers["location"])
        back = urlsplit(approved.headers["location"])
        refused = await claimer.get(f"{back.path}?{back.query}", headers=HTML)
        assert refused.status_code == 409
        assert "text/html" in refused.headers["content-type"]
        assert "already connected to another deskpilot account" in refused.text
    connection = await desk.connection(shop)
    assert connection is not None and connection.user_id == owner.id
