"""Shopify install: GET /shopify/install and GET /shopify/callback (authorization-code grant).

A signed-in merchant starts the install for a shop; a `state` nonce stored server-side
ties Shopify's callback back to that merchant, once. The callback exchanges the code
for an offline token, stores it (encrypted) in the merchant's SHOPIFY connection and
registers the webhooks deskpilot listens to.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.deps import CurrentUser, SessionsDep, SettingsDep
from api.schemas import error_responses
from integrations.shopify.admin import ShopifyAdmin
from integrations.shopify_verify import fresh_timestamp, valid_shop_domain, verify_oauth_query
from kernel.enums import ConnectionType
from kernel.errors import Conflict, IntegrationError, Invalid, Transient, Unauthorized
from kernel.http import new_http_client
from kernel.settings import Settings
from kernel.values import ShopTarget
from models.connection import Connection
from models.db import unit_of_work
from models.event import log_event
from models.oauth_state import SHOPIFY, consume_oauth_state, create_oauth_state

logger = logging.getLogger(__name__)
SHOPIFY_ERROR = "shopify_error"

router = APIRouter(prefix="/shopify", tags=["shopify"])

API_VERSION = "2026-10"
WEBHOOK_PATH = "/shopify/webhooks"
# The compliance topics (customers/data_request, customers/redact, shop/redact) are set
# in the app's configuration at Shopify; the API cannot subscribe to them.
WEBHOOK_TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "APP_UNINSTALLED")


class Installed(BaseModel):
    connection_id: uuid.UUID
    shop_domain: str
    scope: str
    webhooks: dict[str, str]  # topic → "registered" | "exists" | the error


def shop_admin_base(settings: Settings, shop: str) -> str:
    """The shop's Admin origin: https://{shop}, or the configured stand-in for it."""
    template = settings.shopify_admin_base_url or "https://{shop}"
    return template.replace("{shop}", shop).rstrip("/")


def _credentials(settings: Settings) -> tuple[str, str]:
    if not settings.shopify_api_key or settings.shopify_api_secret is None:
        raise Transient("Shopify is not configured: set SHOPIFY_API_KEY and SHOPIFY_API_SECRET")
    return settings.shopify_api_key, settings.shopify_api_secret.get_secret_value()


def _checked_query(request: Request, secret: str) -> tuple[dict[str, str], str]:
    """The query parameters once shop, signature and timestamp are all good; the shop."""
    params = dict(request.query_params)
    shop = params.get("shop", "")
    if not valid_shop_domain(shop):
        raise Invalid("shop must be a domain like example.myshopify.com")
    if not verify_oauth_query(params, secret):
        raise Unauthorized("the request's hmac does not match: it was not signed by Shopify")
    if not fresh_timestamp(params.get("timestamp"), datetime.now(UTC)):
        raise Unauthorized("the request's timestamp is missing or too old")
    return params, shop


@router.get(
    "/install",
    status_code=302,
    response_class=RedirectResponse,
    responses=error_responses(
        (400, "shop is not a domain like example.myshopify.com"),
        (401, "no valid API token or session, or Shopify's hmac or timestamp is wrong"),
        (503, "Shopify is not configured"),
    ),
)
async def install(
    request: Request, user_id: CurrentUser, sessions: SessionsDep, settings: SettingsDep
) -> RedirectResponse:
    api_key, secret = _credentials(settings)
    if "hmac" in request.query_params:
        # Launched from Shopify's admin: the query is Shopify's, signed.
        _, shop = _checked_query(request, secret)
    else:
        # Started by the signed-in merchant from the connections page with a shop
        # domain they typed; Shopify's callback is what gets verified.
        shop = request.query_params.get("shop", "").strip().lower()
        if not valid_shop_domain(shop):
            raise Invalid("shop must be a domain like example.myshopify.com")
    async with unit_of_work(sessions) as session:
        state = await create_oauth_state(session, user_id, provider=SHOPIFY, shop_domain=shop)
    query = urlencode(
        {
            "client_id": api_key,
            "scope": settings.shopify_scopes,
            "redirect_uri": f"{settings.public_url.rstrip('/')}/shopify/callback",
            "state": state,
        }
    )
    return RedirectResponse(
        f"{shop_admin_base(settings, shop)}/admin/oauth/authorize?{query}", status_code=302
    )


async def _exchange_code(
    http: httpx.AsyncClient, base: str, api_key: str, secret: str, code: str
) -> tuple[str, str]:
    try:
        response = await http.post(
            f"{base}/admin/oauth/access_token",
            json={"client_id": api_key, "client_secret": secret, "code": code},
            headers={"Accept": "application/json"},
        )
    except httpx.TransportError as exc:
        raise IntegrationError(
            f"could not reach the shop to finish the install: {type(exc).__name__}",
            retryable=True,
            code=SHOPIFY_ERROR,
        ) from exc
    if not response.is_success:
        raise IntegrationError(
            f"Shopify refused the authorization code (HTTP {response.status_code})",
            retryable=False,
            code=SHOPIFY_ERROR,
        )
    body = response.json()
    token, scope = body.get("access_token"), body.get("scope", "")
    if not isinstance(token, str) or not token:
        raise IntegrationError(
            "Shopify's token answer has no access_token", retryable=False, code=SHOPIFY_ERROR
        )
    return token, str(scope)


async def _store_connection(
    sessions: SessionsDep, user_id: uuid.UUID, shop: str, token: str, scope: str, base: str
) -> uuid.UUID:
    async with unit_of_work(sessions) as session:
        connection = (
            await session.execute(
                select(Connection)
                .where(Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if connection is not None and connection.user_id != user_id:
            raise Conflict(f"{shop} is already connected to another deskpilot account")
        reinstall = connection is not None
        if connection is None:
            connection = Connection(user_id=user_id, type=ConnectionType.SHOPIFY, shop_domain=shop)
            session.add(connection)
        metadata = {k: v for k, v in (connection.metadata_ or {}).items() if k != "disabled"}
        connection.access_token = token
        connection.metadata_ = metadata | {"scope": scope, "apiBase": base}
        await session.flush()
        await log_event(
            session,
            "shopify.installed",
            user_id=user_id,
            entity="connection",
            entity_id=connection.id,
            payload={"shop_domain": shop, "scope": scope, "reinstall": reinstall},
        )
        return connection.id


@router.get(
    "/callback",
    response_model=Installed,
    responses=error_responses(
        (400, "no valid shop, code or state"),
        (401, "Shopify's hmac or timestamp is wrong, or the state is unknown or used"),
        (409, "the shop is connected to another merchant"),
        (502, "the shop refused the code, or could not be reached"),
        (503, "Shopify is not configured"),
    ),
)
async def callback(request: Request, sessions: SessionsDep, settings: SettingsDep) -> Installed:
    api_key, secret = _credentials(settings)
    params, shop = _checked_query(request, secret)
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        raise Invalid("the callback needs code and state")
    # Spent in its own transaction, so whatever fails next the state cannot be replayed.
    async with unit_of_work(sessions) as session:
        user_id = await consume_oauth_state(session, state, provider=SHOPIFY, shop_domain=shop)
    if user_id is None:
        raise Unauthorized("the install state is unknown, expired, used or for another shop")

    async with unit_of_work(sessions) as session:
        owner = (
            await session.execute(
                select(Connection.user_id).where(
                    Connection.type == ConnectionType.SHOPIFY, Connection.shop_domain == shop
                )
            )
        ).scalar_one_or_none()
    if owner is not None and owner != user_id:
        # Checked before the exchange too: no token is fetched for a shop we will refuse.
        raise Conflict(f"{shop} is already connected to another deskpilot account")

    base = shop_admin_base(settings, shop)
    async with new_http_client() as http:
        token, scope = await _exchange_code(http, base, api_key, secret, code)
        try:
            connection_id = await _store_connection(sessions, user_id, shop, token, scope, base)
        except IntegrityError as exc:  # another merchant won a race for the same shop
            raise Conflict(f"{shop} is already connected to another deskpilot account") from exc
    callback_url = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}"
    admin = ShopifyAdmin()
    try:
        webhooks = await admin.subscribe_webhooks(
            ShopTarget(shop_domain=shop, access_token=token, api_base=base),
            WEBHOOK_TOPICS,
            callback_url,
        )
    finally:
        await admin.aclose()

    failed = {t: o for t, o in webhooks.items() if o not in ("registered", "exists")}
    async with unit_of_work(sessions) as session:
        await log_event(
            session,
            "shopify.webhooks_failed" if failed else "shopify.webhooks_registered",
            user_id=user_id,
            entity="connection",
            entity_id=connection_id,
            payload={"outcomes": webhooks},
        )
    if failed:
        logger.warning("some webhooks were not registered", extra={"shop": shop, **failed})
    return Installed(connection_id=connection_id, shop_domain=shop, scope=scope, webhooks=webhooks)
