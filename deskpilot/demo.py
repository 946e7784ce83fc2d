"""Demo mode: a merchant, a demo store and an inbound alias, ready on every `deskpilot up`.

Idempotent across restarts: the same user, connections and API token come back, and the
month of past support mail (deskpilot.demo_history) is written once.
The sandbox store lives in memory, so it starts from the seed on every run; the
orders table is brought back in line with it through the Admin API, as a real
store's orders would be.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.shopify_oauth import WEBHOOK_PATH, WEBHOOK_TOPICS
from deskpilot.demo_history import seed_demo_history
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ConnectionType
from kernel.settings import Settings
from kernel.values import ShopTarget
from models.api_token import issue_api_token, user_for_token
from models.connection import Connection, CustomEmailMetadata
from models.db import unit_of_work
from models.shopify_sync import upsert_order_snapshots
from models.user import User, set_password, verify_password
from sandbox.server import Sandbox, shop_base
from sandbox.shopify.server import DEMO_SHOP, SECOND_DEMO_ORDERS, SECOND_DEMO_SHOP
from services.accounts import create_user
from services.gmail_connections import complete_connect, google_oauth, redirect_uri

DEMO_EMAIL = "demo@deskpilot.local"
DEMO_FILE = "demo.json"
# The store's support mailbox, a sandbox Gmail account connected as a real one would be.
DEMO_SUPPORT_EMAIL = "support@demo-store.example"
DEMO_GMAIL_TOPIC = "projects/deskpilot-demo/topics/gmail"
DEMO_STORE_NAME = "Demo Store"
# The app the sandbox store has deskpilot installed as (the sandbox keeps it in memory).
DEMO_APP_KEY = "deskpilot-demo"
INBOUND_PATH = "/api/inbound/email"


@dataclass(frozen=True)
class DemoInfo:
    """What a person needs to try the demo; `demo.json` holds all but the user id."""

    api_base: str
    api_token: str
    inbound_url: str
    alias_address: str
    temporal_ui: str | None
    user_id: uuid.UUID
    gmail_address: str | None = None
    gmail_deliver_url: str | None = None  # POST a raw message here to "receive" it in Gmail
    email: str = DEMO_EMAIL  # the web sign-in
    password: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "api_base": self.api_base,
            "api_token": self.api_token,
            "inbound_url": self.inbound_url,
            "alias_address": self.alias_address,
            "temporal_ui": self.temporal_ui,
            "gmail_address": self.gmail_address,
            "gmail_deliver_url": self.gmail_deliver_url,
            "login_url": self.api_base.rstrip("/") + "/login",
            "email": self.email,
            "password": self.password,
        }


def demo_gmail_settings(settings: Settings, sandbox_url: str) -> Settings:
    """Google's endpoints at the sandbox, with a demo OAuth client and push secret."""
    return settings.model_copy(
        update={
            "gmail_client_id": "deskpilot-demo.apps.googleusercontent.com",
            "gmail_client_secret": SecretStr(secrets.token_hex(16)),
            "google_auth_url": f"{sandbox_url}/o/oauth2/v2/auth",
            "google_token_url": f"{sandbox_url}/token",
            "gmail_api_base_url": sandbox_url,
            "gmail_pubsub_topic": DEMO_GMAIL_TOPIC,
            "gmail_push_secret": SecretStr(secrets.token_urlsafe(24)),
        }
    )


async def _demo_gmail(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    sandbox: Sandbox,
    user_id: uuid.UUID,
    api_base: str,
) -> str:
    """Connect the store's sandbox Gmail mailbox through the same consent and callback
    code a merchant's browser goes through, and point the topic's pushes at our API."""
    if not (settings.gmail_client_id and settings.gmail_client_secret):
        raise RuntimeError("the demo's Gmail needs its OAuth client (demo_gmail_settings)")
    if settings.gmail_push_secret is None:
        raise RuntimeError("the demo's Gmail needs a push secret (demo_gmail_settings)")
    if DEMO_SUPPORT_EMAIL not in {m.address for m in sandbox.gmail.mailboxes()}:
        sandbox.gmail.add_mailbox(DEMO_SUPPORT_EMAIL)
    sandbox.google.register_client(
        settings.gmail_client_id, settings.gmail_client_secret.get_secret_value()
    )
    sandbox.gmail.subscribe_push(
        DEMO_GMAIL_TOPIC,
        f"{api_base.rstrip('/')}/gmail/push?"
        + urlencode({"token": settings.gmail_push_secret.get_secret_value()}),
    )
    oauth = google_oauth(settings)
    try:
        consent = oauth.authorization_url(redirect_uri(settings), "demo", DEMO_SUPPORT_EMAIL)
    finally:
        await oauth.aclose()
    async with httpx.AsyncClient(follow_redirects=False, timeout=10) as browser:
        answer = await browser.get(consent)
    code = dict(parse_qsl(urlsplit(answer.headers.get("location", "")).query)).get("code")
    if answer.status_code != 302 or not code:
        raise RuntimeError(f"the sandbox's Google consent did not redirect: {answer.text[:200]}")
    # A new sandbox mailbox on every run: sync from its start, not last run's position.
    _, address = await complete_connect(sessions, settings, user_id, code, keep_position=False)
    return address


async def bootstrap_demo(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    sandbox: Sandbox,
    sandbox_url: str,
    *,
    api_base: str,
    temporal_ui: str | None,
) -> DemoInfo:
    """Create or refresh the demo merchant, register its store in `sandbox`, write demo.json."""
    demo_file = settings.resolved_home() / DEMO_FILE
    saved_token = _read_saved(demo_file, "api_token")
    saved_password = _read_saved(demo_file, "password")
    api_base_of_shop = shop_base(sandbox_url, DEMO_SHOP)
    async with unit_of_work(sessions) as session:
        user = await _demo_user(session)
        # The web sign-in: kept across restarts while demo.json keeps it, like the token.
        password = saved_password
        if password is None or await verify_password(session, DEMO_EMAIL, password) is None:
            password = secrets.token_urlsafe(12)
            await set_password(session, user.id, password)
        shop = await _demo_shop(session, user.id, api_base_of_shop)
        if DEMO_APP_KEY not in sandbox.shopify.state.apps:
            # Signed with the secret the API checks webhooks with, so the demo store's
            # order webhooks reach deskpilot as a real store's would.
            secret = settings.shopify_api_secret
            sandbox.shopify.state.register_app(
                DEMO_APP_KEY, secret.get_secret_value() if secret else secrets.token_hex(16)
            )
        if DEMO_SHOP not in sandbox.shopify.state.shops:
            sandbox.shopify.add_shop(
                DEMO_SHOP, api_key=DEMO_APP_KEY, token=shop.access_token, name=DEMO_STORE_NAME
            )
        if SECOND_DEMO_SHOP not in sandbox.shopify.state.shops:
            # Not installed: whoever signs up can install it through the consent.
            sandbox.shopify.add_shop(
                SECOND_DEMO_SHOP, orders=SECOND_DEMO_ORDERS, name="Second Store"
            )
        alias = await _demo_alias(session, user.id, settings.inbound_domain)
        token = saved_token
        if token is None or await user_for_token(session, token) != user.id:
            token = await issue_api_token(session, user.id, "demo")
        target = ShopTarget(
            shop_domain=DEMO_SHOP, access_token=shop.access_token, api_base=api_base_of_shop
        )
    admin = ShopifyAdmin()
    try:
        orders = await admin.list_orders(target)
        await admin.subscribe_webhooks(target, WEBHOOK_TOPICS, api_base.rstrip("/") + WEBHOOK_PATH)
    finally:
        await admin.aclose()
    async with unit_of_work(sessions) as session:
        shop = await session.get(Connection, shop.id)
        assert shop is not None
        await upsert_order_snapshots(session, shop, orders)
        # A month of past mail, for the playbook backtest: demo data, written once.
        await seed_demo_history(session, user.id, DEMO_SHOP)
    gmail_address = None
    if settings.gmail_client_id:
        gmail_address = await _demo_gmail(sessions, settings, sandbox, user.id, api_base)
    info = DemoInfo(
        password=password,
        gmail_address=gmail_address,
        gmail_deliver_url=(
            f"{sandbox_url}/sandbox/gmail/deliver?" + urlencode({"to": gmail_address})
            if gmail_address
            else None
        ),
        api_base=api_base,
        api_token=token,
        inbound_url=api_base.rstrip("/") + INBOUND_PATH,
        alias_address=alias,
        temporal_ui=temporal_ui,
        user_id=user.id,
    )
    write_demo_file(demo_file, info.public())
    return info


async def _demo_user(session: AsyncSession) -> User:
    existing = (
        await session.execute(select(User).where(func.lower(User.email) == DEMO_EMAIL))
    ).scalar_one_or_none()
    if existing is not None:
        if existing.email_verified_at is None:  # made before addresses were verified
            existing.email_verified_at = datetime.now(UTC)
        return existing
    # The demo's address is ours: nothing to verify.
    return await create_user(session, DEMO_EMAIL, "Demo Merchant", verified=True)


async def _demo_shop(session: AsyncSession, user_id: uuid.UUID, api_base: str) -> Connection:
    shop = (
        await session.execute(
            select(Connection).where(
                Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == DEMO_SHOP
            )
        )
    ).scalar_one_or_none()
    if shop is None:
        shop = Connection(
            user_id=user_id,
            type=ConnectionType.SHOPIFY,
            access_token="shpat_" + secrets.token_hex(16),
            shop_domain=DEMO_SHOP,
        )
        session.add(shop)
    elif shop.user_id != user_id:
        raise RuntimeError(f"{DEMO_SHOP} is connected to another account than {DEMO_EMAIL}")
    # The sandbox may listen on another port than last time.
    shop.metadata_ = {**(shop.metadata_ or {}), "apiBase": api_base}
    await session.flush()
    return shop


async def _demo_alias(session: AsyncSession, user_id: uuid.UUID, inbound_domain: str) -> str:
    """The demo's forwarding address; created once, then kept."""
    connections = (
        await session.execute(
            select(Connection).where(
                Connection.user_id == user_id, Connection.type == ConnectionType.CUSTOM_EMAIL
            )
        )
    ).scalars()
    for connection in connections:
        metadata = CustomEmailMetadata.model_validate(connection.metadata_ or {})
        if metadata.shop_domain == DEMO_SHOP:
            return str(metadata.alias)
    metadata = CustomEmailMetadata(
        alias=f"demo-{secrets.token_hex(3)}@{inbound_domain}",
        domain=inbound_domain,
        shop_domain=DEMO_SHOP,
        support_email=DEMO_SUPPORT_EMAIL,
        store_name=DEMO_STORE_NAME,
    )
    session.add(
        Connection(
            user_id=user_id,
            type=ConnectionType.CUSTOM_EMAIL,
            # An alias has no vendor token; the column is required, so it holds a random one.
            access_token=secrets.token_urlsafe(24),
            shop_domain=DEMO_SHOP,
            metadata_=metadata.to_json(),
        )
    )
    await session.flush()
    return str(metadata.alias)


def _read_saved(path: Path, key: str) -> str | None:
    """A value saved in demo.json by an earlier run, if the file is there and readable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def write_demo_file(path: Path, content: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the start: it holds a bearer token."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(content, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
