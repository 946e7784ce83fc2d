"""Shopify install: GET /shopify/install and GET /shopify/callback (authorization-code grant).

A signed-in merchant starts the install for a shop; a `state` nonce stored server-side
ties Shopify's callback back to that merchant, once. The callback exchanges the code
for an offline token, stores it (encrypted) in the merchant's SHOPIFY connection,
registers the webhooks deskpilot listens to and starts the backfill of recent orders.

Launched from Shopify's admin (a signed query) with nobody signed in, the state belongs to
nobody and is bound to the browser by a cookie, so a callback URL sent to someone else
signs nobody in. After the checks and the exchange, the callback signs in the shop's
merchant, or opens an account for the shop owner's email when no account has it; when an
account has it, the owner is asked to sign in and add the store from the connections page.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from api.deps import OptionalTemporalDep, OptionalUser, SessionsDep, SettingsDep, TaskQueueDep
from api.form_csrf import same_secret, secure_cookies
from api.rendering import render
from api.schemas import error_responses
from api.web_auth import HOME_PATH, SESSION_COOKIE, set_session_cookie
from domain.account_tokens import TokenPurpose
from integrations.shopify_verify import fresh_timestamp, valid_shop_domain, verify_oauth_query
from kernel.errors import Conflict, IntegrationError, Invalid, Transient, Unauthorized
from kernel.http import new_http_client
from kernel.settings import Settings
from kernel.values import ShopTarget
from models.db import unit_of_work
from models.oauth_state import OAUTH_STATE_TTL, SHOPIFY, create_oauth_state, spend_oauth_state
from models.web_session import start_web_session
from services.account_mail_workflows import send_account_mail
from services.shopify_backfill_workflows import start_order_backfill
from services.shopify_install import (
    AccountExistsError,
    ShopTakenError,
    attach_for_nobody,
    attach_shop,
    register_webhooks,
    shop_owner,
)

logger = logging.getLogger(__name__)
SHOPIFY_ERROR = "shopify_error"

router = APIRouter(prefix="/shopify", tags=["shopify"])

API_VERSION = "2026-10"
WEBHOOK_PATH = "/shopify/webhooks"
# The compliance topics (customers/data_request, customers/redact, shop/redact) are set
# in the app's configuration at Shopify; the API cannot subscribe to them.
WEBHOOK_TOPICS = ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "APP_UNINSTALLED")
# Holds the state of an install begun by nobody signed in: only this browser may finish it.
INSTALL_COOKIE = "deskpilot_shopify_install"
INSTALL_COOKIE_PATH = "/shopify"
INSTALLED_PATH = "/connections?notice=installed"


class Installed(BaseModel):
    connection_id: uuid.UUID
    shop_domain: str
    scope: str
    webhooks: dict[str, str]  # topic → "registered" | "exists" | the error
    # Set when the install was begun at Shopify by nobody signed in: the merchant now
    # signed in (the session cookie is set), and whether their account was just opened.
    signed_in_user_id: uuid.UUID | None = None
    new_account: bool = False


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
        (
            401,
            "not signed in and not launched by Shopify, an API token that is not valid, "
            "or Shopify's hmac or timestamp is wrong",
        ),
        (503, "Shopify is not configured"),
    ),
)
async def install(
    request: Request, user_id: OptionalUser, sessions: SessionsDep, settings: SettingsDep
) -> RedirectResponse:
    api_key, secret = _credentials(settings)
    if "hmac" in request.query_params:
        # Launched from Shopify's admin: the query is Shopify's, signed. Nobody need be
        # signed in: the callback finds or opens the shop's account.
        _, shop = _checked_query(request, secret)
    else:
        # Started by the signed-in merchant from the connections page with a shop
        # domain they typed; Shopify's callback is what gets verified.
        if user_id is None:
            raise Unauthorized(
                "an API token is required: send Authorization: Bearer <token> (or sign in)"
            )
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
    response = RedirectResponse(
        f"{shop_admin_base(settings, shop)}/admin/oauth/authorize?{query}", status_code=302
    )
    if user_id is None:
        response.set_cookie(
            INSTALL_COOKIE,
            state,
            max_age=int(OAUTH_STATE_TTL.total_seconds()),
            path=INSTALL_COOKIE_PATH,
            secure=secure_cookies(request),
            httponly=True,
            samesite="lax",  # sent on Shopify's top-level redirect back to the callback
        )
    return response


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


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _after_install(
    temporal: OptionalTemporalDep,
    task_queue: str,
    connection_id: uuid.UUID,
    new_user: uuid.UUID | None,
) -> None:
    """The order backfill, and the verification link of an account just opened. Neither
    can undo the install: a Temporal that is down is logged (the link can be resent from
    the banner; a reinstall backfills again)."""
    try:
        await start_order_backfill(temporal, connection_id, task_queue=task_queue)
    except Transient as exc:
        logger.warning("order backfill not started", extra={"error": exc.message})
    if new_user is not None:
        try:
            await send_account_mail(
                temporal, TokenPurpose.VERIFY_EMAIL, user_id=new_user, task_queue=task_queue
            )
        except Transient as exc:
            logger.warning("verification email not queued", extra={"error": exc.message})


def _refusal_page(request: Request, exc: Conflict, shop: str) -> Response:
    """The browser's answer to an install refused after Shopify's consent."""
    if isinstance(exc, AccountExistsError):
        title, link = "Sign in to add this store", ("/login?next=/connections", "Sign in")
        message = (
            f"An account with the email of {shop}'s owner already exists, so this install "
            "did not sign anyone in. Sign in to that account, then add the store from the "
            "connections page."
        )
    else:
        title, link = "Store already connected", ("/connections", "Back to connections")
        message = (
            f"{shop} is already connected to another deskpilot account, so it was not added "
            "to this one. Its owner can remove it there first."
        )
    response = render(
        request, "account_notice.html", status_code=409, title=title, message=message, link=link
    )
    response.delete_cookie(INSTALL_COOKIE, path=INSTALL_COOKIE_PATH)
    return response


@router.get(
    "/callback",
    response_model=Installed,
    responses=error_responses(
        (400, "no valid shop, code or state"),
        (
            401,
            "Shopify's hmac or timestamp is wrong, the state is unknown or used, or an "
            "install begun at Shopify is finished in another browser",
        ),
        (
            409,
            "the shop is connected to another merchant, or (begun at Shopify) an account "
            "already has the shop owner's email",
        ),
        (502, "the shop refused the code, or could not be reached"),
        (503, "Shopify is not configured"),
    ),
)
async def callback(
    request: Request,
    sessions: SessionsDep,
    settings: SettingsDep,
    temporal: OptionalTemporalDep,
    task_queue: TaskQueueDep,
) -> Response:
    try:
        return await _finish_install(request, sessions, settings, temporal, task_queue)
    except (ShopTakenError, AccountExistsError) as exc:
        if _wants_html(request):
            return _refusal_page(request, exc, request.query_params.get("shop", ""))
        raise


async def _finish_install(
    request: Request,
    sessions: SessionsDep,
    settings: Settings,
    temporal: OptionalTemporalDep,
    task_queue: str,
) -> Response:
    api_key, secret = _credentials(settings)
    params, shop = _checked_query(request, secret)
    code, state = params.get("code"), params.get("state")
    if not code or not state:
        raise Invalid("the callback needs code and state")
    # Spent in its own transaction, so whatever fails next the state cannot be replayed.
    async with unit_of_work(sessions) as session:
        spent = await spend_oauth_state(session, state, provider=SHOPIFY, shop_domain=shop)
    if spent is None:
        raise Unauthorized("the install state is unknown, expired, used or for another shop")
    user_id = spent.user_id
    if user_id is None and not same_secret(request.cookies.get(INSTALL_COOKIE), state):
        # Someone else's callback URL: finishing it here would sign this browser in to
        # the account of whoever began the install.
        raise Unauthorized("this install was begun in another browser: start it again here")

    if user_id is not None:
        async with unit_of_work(sessions) as session:
            owner = await shop_owner(session, shop)
        if owner is not None and owner != user_id:
            # Checked before the exchange too: no token is fetched for a shop we will refuse.
            raise ShopTakenError(shop)

    base = shop_admin_base(settings, shop)
    async with new_http_client() as http:
        token, scope = await _exchange_code(http, base, api_key, secret, code)
    target = ShopTarget(shop_domain=shop, access_token=token, api_base=base)
    new_account = False
    try:
        if user_id is not None:
            async with unit_of_work(sessions) as session:
                connection_id = await attach_shop(
                    session, user_id, shop, token=token, scope=scope, api_base=base
                )
        else:
            user_id, connection_id, new_account = await attach_for_nobody(sessions, target, scope)
    except IntegrityError as exc:  # another merchant won a race for the same shop
        raise ShopTakenError(shop) from exc

    callback_url = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}"
    webhooks = await register_webhooks(
        sessions, target, WEBHOOK_TOPICS, callback_url, user_id, connection_id
    )
    await _after_install(temporal, task_queue, connection_id, user_id if new_account else None)
    answer = Installed(
        connection_id=connection_id,
        shop_domain=shop,
        scope=scope,
        webhooks=webhooks,
        signed_in_user_id=user_id if spent.user_id is None else None,
        new_account=new_account,
    )
    response: Response
    if _wants_html(request):
        target_path = HOME_PATH if new_account else INSTALLED_PATH
        response = RedirectResponse(target_path, status_code=303)
    else:
        response = Response(answer.model_dump_json(), media_type="application/json")
    if spent.user_id is None:
        async with unit_of_work(sessions) as session:
            cookie = await start_web_session(
                session,
                user_id,
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
        set_session_cookie(request, response, cookie)
        response.delete_cookie(INSTALL_COOKIE, path=INSTALL_COOKIE_PATH)
    return response
