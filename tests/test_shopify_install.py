"""The Shopify install over HTTP: /shopify/install → the shop's consent → /shopify/callback.

The shops are the sandbox Shopify over loopback (OAuth token endpoint, Admin GraphQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from kernel.enums import ConnectionType
from kernel.settings import Settings
from models import Connection, Event, Order
from models.db import unit_of_work
from services.accounts import create_user
from tests.api_support import api_client, token_for
from tests.conftest import _asyncpg_dsn
from tests.shopify_sandbox_shops import SandboxShops, serving_sandbox_shops

API_KEY = "test-api-key"
API_SECRET = "test-api-secret"
PUBLIC_URL = "https://deskpilot.test"


def install_settings(admin_origin: str, **extra: str) -> Settings:
    """Settings of an app installed as API_KEY, whose shops' Admin is served at
    `admin_origin` (a sandbox: `{admin_origin}/shops/{shop}`); `extra` adds variables."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        SHOPIFY_API_KEY=API_KEY,
        SHOPIFY_API_SECRET=API_SECRET,
        SHOPIFY_ADMIN_BASE_URL=f"{admin_origin}/shops/{{shop}}",
        DESKPILOT_PUBLIC_URL=PUBLIC_URL,
        **extra,
    )


async def wait_for_orders(
    sessions: async_sessionmaker[AsyncSession], shop: str, wanted: int, within: float = 30
) -> None:
    """Waits until the shop has `wanted` Order rows (the backfill ran); fails after `within` s."""
    async with asyncio.timeout(within):
        while True:
            async with sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(Order).where(Order.shop_domain == shop)
                )
            if count == wanted:
                return
            await asyncio.sleep(0.1)


def sign(params: dict[str, str], secret: str = API_SECRET) -> dict[str, str]:
    message = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return params | {
        "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    }


@dataclass
class Installer:
    sessions: async_sessionmaker[AsyncSession]
    shops: SandboxShops
    api: httpx.AsyncClient
    user_id: uuid.UUID
    token: str
    database_url: str

    async def start(self, shop: str, *, token: str | None = None) -> httpx.Response:
        params = sign({"shop": shop, "timestamp": str(int(time.time())), "host": "YWRtaW4"})
        return await self.api.get(
            "/shopify/install",
            params=params,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    async def state_for(self, shop: str, *, token: str | None = None) -> str:
        response = await self.start(shop, token=token)
        assert response.status_code == 302, response.text
        return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]

    async def callback(
        self, shop: str, state: str, *, code: str | None = None, **overrides: str
    ) -> httpx.Response:
        params = {
            "code": code or self.shops.issue_code(shop),
            "host": "YWRtaW4",
            "shop": shop,
            "state": state,
            "timestamp": str(int(time.time())),
        }
        signed = sign(params) | overrides
        return await self.api.get("/shopify/callback", params=signed)

    async def new_merchant(self) -> tuple[uuid.UUID, str]:
        async with unit_of_work(self.sessions) as session:
            user = await create_user(session, f"m-{uuid.uuid4().hex[:6]}@store.test", "M")
        return user.id, await token_for(self.sessions, user.id)


def new_shop() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}.myshopify.com"


@pytest.fixture
async def installer(
    own_sessions: async_sessionmaker[AsyncSession], own_database: str
) -> AsyncIterator[Installer]:
    async with serving_sandbox_shops(API_KEY, API_SECRET) as shops:
        settings = install_settings(shops.base_url)
        app = create_app(own_sessions.kw["bind"], None, settings)
        async with unit_of_work(own_sessions) as session:
            user = await create_user(session, f"owner-{uuid.uuid4().hex[:6]}@store.test", "O")
        token = await token_for(own_sessions, user.id)
        async with api_client(app) as api:
            yield Installer(own_sessions, shops, api, user.id, token, own_database)


async def _connection(sessions: async_sessionmaker[AsyncSession], shop: str) -> Connection | None:
    async with sessions() as session:
        return (
            await session.execute(select(Connection).where(Connection.shop_domain == shop))
        ).scalar_one_or_none()


async def test_install_stores_an_encrypted_token_and_registers_webhooks(
    installer: Installer,
) -> None:
    shop = new_shop()
    response = await installer.start(shop)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{installer.shops.base_url}/shops/{shop}/admin/oauth/authorize"
    )
    query = parse_qs(location.query)
    assert query["client_id"] == [API_KEY]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/shopify/callback"]
    assert query["scope"] == [Settings(_env_file=None).shopify_scopes]  # type: ignore[call-arg]
    state = query["state"][0]

    response = await installer.callback(shop, state)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["shop_domain"] == shop
    assert body["webhooks"] == {
        t: "registered"
        for t in ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "APP_UNINSTALLED")
    }

    connection = await _connection(installer.sessions, shop)
    assert connection is not None
    assert connection.user_id == installer.user_id
    assert connection.type == ConnectionType.SHOPIFY
    assert connection.access_token == installer.shops.tokens[shop]
    assert connection.metadata_ == {
        "scope": installer.shops.scope,
        "apiBase": f"{installer.shops.base_url}/shops/{shop}",
    }
    # At rest the column holds ciphertext, never the token.
    db = await asyncpg.connect(**_asyncpg_dsn(installer.database_url))
    try:
        stored = await db.fetchval(
            "SELECT access_token FROM connections WHERE id = $1", connection.id
        )
    finally:
        await db.close()
    assert installer.shops.tokens[shop] not in stored

    subscribed = [s for s in installer.shops.subscriptions if s["shop"] == shop]
    assert sorted(s["topic"] for s in subscribed) == [
        "APP_UNINSTALLED",
        "ORDERS_CANCELLED",
        "ORDERS_CREATE",
        "ORDERS_UPDATED",
    ]
    assert {s["webhookSubscription"]["uri"] for s in subscribed} == {
        f"{PUBLIC_URL}/shopify/webhooks"
    }
    async with installer.sessions() as session:
        types = set(
            (
                await session.execute(
                    select(Event.type).where(Event.entity_id == str(connection.id))
                )
            ).scalars()
        )
    assert types == {"shopify.installed", "shopify.webhooks_registered"}


async def test_reinstall_updates_the_token_and_reenables(installer: Installer) -> None:
    shop = new_shop()
    assert (await installer.callback(shop, await installer.state_for(shop))).status_code == 200
    first = await _connection(installer.sessions, shop)
    assert first is not None
    async with unit_of_work(installer.sessions) as session:
        row = await session.get(Connection, first.id)
        assert row is not None
        row.metadata_ = (row.metadata_ or {}) | {"disabled": True}
    assert (await installer.callback(shop, await installer.state_for(shop))).status_code == 200
    second = await _connection(installer.sessions, shop)
    assert second is not None and second.id == first.id
    assert second.access_token == installer.shops.tokens[shop] != first.access_token
    assert "disabled" not in (second.metadata_ or {})


async def test_install_needs_a_merchant_or_shopifys_signature(installer: Installer) -> None:
    shop = new_shop()
    # Not launched by Shopify (no hmac) and nobody signed in.
    response = await installer.api.get("/shopify/install", params={"shop": shop})
    assert response.status_code == 401
    # A token that is not valid is refused, even on a query Shopify signed: it is never
    # taken for an install begun by nobody.
    response = await installer.start(shop, token="dpk_not-a-token")
    assert response.status_code == 401


async def test_forged_hmac_is_refused_on_install_and_callback(installer: Installer) -> None:
    shop = new_shop()
    forged = sign({"shop": shop, "timestamp": str(int(time.time())), "host": "x"}, "wrong")
    response = await installer.api.get(
        "/shopify/install", params=forged, headers={"Authorization": f"Bearer {installer.token}"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"

    state = await installer.state_for(shop)
    response = await installer.callback(shop, state, hmac="0" * 64)
    assert response.status_code == 401
    # A parameter changed after signing breaks the signature too.
    params = {"code": installer.shops.issue_code(shop), "host": "x", "shop": shop}
    params = sign(params | {"state": state, "timestamp": str(int(time.time()))})
    response = await installer.api.get("/shopify/callback", params=params | {"code": "other"})
    assert response.status_code == 401
    assert await _connection(installer.sessions, shop) is None
    # None of this spent the state: the genuine callback still works.
    assert (await installer.callback(shop, state)).status_code == 200


async def test_stale_timestamp_is_refused(installer: Installer) -> None:
    shop = new_shop()
    old = str(int(time.time()) - 600)
    response = await installer.api.get(
        "/shopify/install",
        params=sign({"shop": shop, "timestamp": old, "host": "x"}),
        headers={"Authorization": f"Bearer {installer.token}"},
    )
    assert response.status_code == 401
    assert "timestamp" in response.json()["error"]["message"]

    state = await installer.state_for(shop)
    params = {"code": installer.shops.issue_code(shop), "host": "x", "shop": shop}
    params |= {"state": state, "timestamp": old}
    response = await installer.api.get("/shopify/callback", params=sign(params))
    assert response.status_code == 401
    assert await _connection(installer.sessions, shop) is None


async def test_bad_state_is_refused(installer: Installer) -> None:
    shop = new_shop()
    await installer.state_for(shop)
    response = await installer.callback(shop, "made-up-state")
    assert response.status_code == 401
    assert "state" in response.json()["error"]["message"]
    # A state issued for another shop does not install this one.
    other_state = await installer.state_for(new_shop())
    assert (await installer.callback(shop, other_state)).status_code == 401
    assert await _connection(installer.sessions, shop) is None


async def test_a_state_works_once(installer: Installer) -> None:
    shop = new_shop()
    state = await installer.state_for(shop)
    assert (await installer.callback(shop, state)).status_code == 200
    token = installer.shops.tokens[shop]
    response = await installer.callback(shop, state)
    assert response.status_code == 401
    connection = await _connection(installer.sessions, shop)
    assert connection is not None and connection.access_token == token


async def test_bad_shop_domain_is_refused(installer: Installer) -> None:
    for shop in ("evil.example.com", "shop.myshopify.com.evil.test", "-x.myshopify.com"):
        response = await installer.start(shop)
        assert response.status_code == 400, shop
        assert response.json()["error"]["code"] == "bad_request"
        response = await installer.callback(shop, "state")
        assert response.status_code == 400, shop


async def test_a_shop_of_another_merchant_is_a_conflict(installer: Installer) -> None:
    shop = new_shop()
    assert (await installer.callback(shop, await installer.state_for(shop))).status_code == 200
    _, other_token = await installer.new_merchant()
    state = await installer.state_for(shop, token=other_token)
    issued = installer.shops.issue_code(shop)
    response = await installer.callback(shop, state, code=issued)
    assert response.status_code == 409
    # Refused before the code was exchanged: no new token was minted for the shop.
    assert issued in installer.shops.codes
    connection = await _connection(installer.sessions, shop)
    assert connection is not None and connection.user_id == installer.user_id


async def test_a_signed_in_merchant_can_start_an_install_from_the_connections_page(
    installer: Installer,
) -> None:
    """No HMAC (the merchant typed the shop, Shopify did not launch us): the consent is
    reached, and Shopify's signed callback is what completes the install."""
    shop = new_shop()
    started = await installer.api.get(
        "/shopify/install",
        params={"shop": f"  {shop.upper()} "},
        headers={"Authorization": f"Bearer {installer.token}"},
    )
    assert started.status_code == 302, started.text
    location = urlsplit(started.headers["location"])
    assert location.path.endswith(f"/shops/{shop}/admin/oauth/authorize")
    state = parse_qs(location.query)["state"][0]
    assert (await installer.callback(shop, state)).status_code == 200
    assert await _connection(installer.sessions, shop) is not None
    # Still only for a signed-in merchant, and only for a Shopify domain.
    anonymous = await installer.api.get("/shopify/install", params={"shop": shop})
    assert anonymous.status_code == 401
    evil = await installer.api.get(
        "/shopify/install",
        params={"shop": "evil.example.com"},
        headers={"Authorization": f"Bearer {installer.token}"},
    )
    assert evil.status_code == 400
