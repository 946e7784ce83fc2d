"""Tenant isolation: every route of the app, walked with two merchants.

The app is built with create_app plus every `router` found in the api package (so routes
written but not yet mounted are covered too), and the walk is driven by `app.routes`:

- a route with path parameters is called by merchant B with A's ids (B's session cookie
  with a valid CSRF token, B's bearer token, and no credentials) and must answer 404 to B
  (401/303 without credentials); A's rows are unchanged afterwards;
- a GET route without path parameters is a listing: B's answer must not contain any of A's
  ids or addresses, while A's answer to the same route does (for the known listings);
- a route that takes no id and changes only the caller's own rows (creating one, the
  caller's own settings) is in OWN_ROWS with a body: B's call succeeds and A's rows are
  unchanged afterwards;
- a route without an id that takes one of the caller's rows by name in its body (the shop
  an alias is for) is in CLAIMS: B naming A's row is refused with 422, A's rows unchanged;
- a route public by design is in PUBLIC with the reason.

A route that is neither walked nor in PUBLIC fails the test, so a new route cannot escape.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI, params
from fastapi.routing import APIRoute, APIRouter, iter_route_contexts
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Mount, Route

import api
from api.app import create_app
from api.web_auth import CSRF_HEADER, SESSION_COOKIE
from kernel.enums import ActionStatus, ActionType, ConnectionType, MessageDirection
from kernel.settings import Settings
from models.action import Action
from models.api_token import ApiToken
from models.automation import AutomationSettings, automation_settings
from models.billing import Subscription
from models.connection import Connection, CustomEmailMetadata
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import log_event
from models.gmail import GmailMetadata
from models.order import Order
from models.playbook import Playbook
from models.shopify import ComplianceExport
from models.suggestion import AISuggestion
from models.user import User, set_password
from models.web_session import WebSession, start_web_session
from services.account_security import session_ref
from services.accounts import create_user
from tests.api_support import token_for

PASSWORD = "correct horse battery staple"

# (method, path) -> why it is not walked. Everything else must be.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe, no data",
    ("GET", "/readyz"): "readiness probe, no data",
    ("GET", "/login"): "the sign-in form",
    ("POST", "/login"): "signing in: the credentials are the authentication",
    ("POST", "/logout"): "ends the caller's own session only",
    ("POST", "/api/session"): "signing in for JSON clients",
    ("DELETE", "/api/session"): "ends the caller's own session only",
    ("GET", "/signup"): "the sign-up form",
    ("POST", "/signup"): "makes a new account; takes no id (covered by test_signup)",
    ("GET", "/verify"): "shows a verification link: the token is the authentication",
    ("POST", "/verify"): "uses a verification link: the token names the account",
    ("POST", "/verify/resend"): "mails the caller's own link to the caller's own address "
    "only; needs Temporal (covered by test_signup)",
    ("GET", "/reset"): "the password-reset request form",
    ("POST", "/reset"): "answers the same for every address; the link goes to the account's "
    "own address only",
    ("GET", "/reset/confirm"): "shows a reset link: the token is the authentication",
    ("POST", "/reset/confirm"): "uses a reset link: the token names the account",
    ("POST", "/shopify/webhooks"): "authenticated by Shopify's HMAC; the shop names the owner",
    ("GET", "/shopify/callback"): "OAuth callback: authenticated by the signed state and HMAC",
    ("GET", "/shopify/install"): "starts the caller's own OAuth; the state binds the caller",
    ("GET", "/gmail/callback"): "OAuth callback: authenticated by the state it was given",
    ("GET", "/gmail/connect"): "starts the caller's own OAuth; the state binds the caller",
    ("POST", "/gmail/push"): "Pub/Sub push, authenticated by its token; the mailbox names "
    "the owner",
    ("POST", "/api/inbound/email"): "ingest: the token names the owner; no id is taken from the "
    "caller (covered by test_api_inbound)",
    ("POST", "/billing/webhooks/razorpay"): "authenticated by Razorpay's signature; the "
    "subscription id names the owner (covered by test_billing_webhooks)",
    ("POST", "/billing/webhooks/paddle"): "authenticated by Paddle-Signature; the subscription "
    "id names the owner (covered by test_billing_webhooks)",
}

# (method, path) -> a JSON body it accepts: routes without an id that change the caller's
# own rows only. B calls each; A's rows must be unchanged.
OWN_ROWS: dict[tuple[str, str], Any] = {
    ("POST", "/api/playbooks"): {
        "name": "bravo's own",
        "trigger": {"version": 1, "event": "message.received"},
        "conditions": [],
        "actions": [{"version": 1, "type": "escalate", "reason": "taken over"}],
    },
    ("PATCH", "/api/settings/automation"): {"enabled": False, "daily_execution_cap": 1},
}

# (method, path) -> (kind, fields): billing calls on the caller's own subscription. No gateway
# is configured here, so B's calls are refused about B's own account; A's subscription must be
# unchanged. test_billing_api walks them with the gateways' stand-ins and two merchants.
OWN_BILLING: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("POST", "/api/billing/checkout"): ("json", {"plan": "GROWTH", "gateway": "razorpay"}),
    ("POST", "/api/billing/change"): ("json", {"plan": "PRO", "when": "now"}),
    ("POST", "/api/billing/cancel"): ("json", {"at_period_end": False}),
    ("POST", "/api/billing/resume"): ("json", {}),
    ("POST", "/billing/checkout"): ("form", {"plan": "GROWTH", "gateway": "razorpay"}),
    ("POST", "/billing/change"): ("form", {"plan": "PRO", "when": "now"}),
    ("POST", "/billing/cancel"): ("form", {"at_period_end": "false"}),
    ("POST", "/billing/resume"): ("form", {}),
    # Razorpay's return: with no gateway configured, nothing can be confirmed.
    ("GET", "/billing/razorpay/return"): ("query", {"razorpay_subscription_id": "sub_a"}),
}
# Not configured (400), nothing to change (409): refusals about B's own account.
BILLING_REFUSALS = {400, 409}

# (method, path) -> (kind, fields): routes without an id that name an owned row in the body;
# "{shop_domain}" is filled with A's store. B's call is refused (422: not one of B's stores).
CLAIMS: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("POST", "/api/connections"): (
        "json",
        {
            "type": "CUSTOM_EMAIL",
            "shop_domain": "{shop_domain}",
            "support_email": "bravo@store.example",
            "store_name": "Bravo's alias of A's store",
        },
    ),
    ("POST", "/connections"): (
        "form",
        {
            "shop_domain": "{shop_domain}",
            "support_email": "bravo@store.example",
            "store_name": "Bravo's alias of A's store",
        },
    ),
}

# (method, path) -> form fields: the pages' forms of the same kind. B posts each with its
# own session and CSRF token; A's rows must be unchanged.
OWN_FORMS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/playbooks"): {"name": "bravo's own page playbook"},
    ("POST", "/automation/enabled"): {"enabled": "false"},
    ("POST", "/automation"): {
        "daily_refund_cap": "5",
        "daily_execution_cap": "2",
        "pause_after_failures": "2",
        "timezone": "UTC",
        "business_hours_start": "8",
        "business_hours_end": "18",
        "business_days": "1",
    },
}

# (method, path) -> (kind, fields): the caller's own password, changed with a current password
# that is not B's: refused (403) about B's own account; A's password, address and account
# unchanged.
OWN_ACCOUNT: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("POST", "/api/account/password"): (
        "json",
        {"current_password": "not bravo's", "new_password": "taken over at last"},
    ),
    ("POST", "/account/password"): (
        "form",
        {
            "current_password": "not bravo's",
            "new_password": "taken over at last",
            "confirm_password": "taken over at last",
        },
    ),
    # The caller's own address and account: a wrong password changes and deletes nothing.
    ("POST", "/api/account/email"): (
        "json",
        {"new_email": "taken-over@example.com", "current_password": "not bravo's"},
    ),
    ("POST", "/account/email"): (
        "form",
        {"new_email": "taken-over@example.com", "current_password": "not bravo's"},
    ),
    ("DELETE", "/api/account"): ("json", {"current_password": "not bravo's", "confirm": "DELETE"}),
    ("POST", "/account/delete"): ("form", {"current_password": "not bravo's", "confirm": "DELETE"}),
}

# Starlette routes that are not APIRoutes: the docs and the static files, nothing owned.
NON_API_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}

# JSON bodies that pass validation, so a 404 is the ownership check and not a 422.
JSON_BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/connections/{connection_id}"): {"enabled": False},
    ("PATCH", "/api/playbooks/{playbook_id}"): {"enabled": False},
    ("PUT", "/api/playbooks/{playbook_id}/rules"): {
        "trigger": {"version": 1, "event": "message.received"},
        "conditions": [],
        "actions": [{"version": 1, "type": "escalate", "reason": "taken over"}],
    },
    # B's dry run of A's playbook: refused before the message is looked up.
    ("POST", "/api/playbooks/{playbook_id}/test"): {"message_id": str(uuid.uuid4())},
    # B's backtest of A's playbook, with a draft: refused before the draft is read.
    ("POST", "/api/playbooks/{playbook_id}/backtest"): {
        "days": 30,
        "draft": {
            "trigger": {"version": 2, "event": "message.received"},
            "conditions": [],
            "actions": [{"version": 2, "type": "escalate", "reason": "taken over"}],
        },
    },
    ("POST", "/api/actions/{action_id}/approve"): {"reply": "hijacked"},
    ("POST", "/api/actions/{action_id}/reject"): {"reason": "hijacked"},
}

# The listings A must see its own rows in: proves the data B must not see is there.
KNOWN_LISTINGS = {
    "/api/threads",
    "/api/connections",
    "/api/playbooks",
    "/api/events",
    "/api/compliance/exports",
    "/api/session",
    "/api/account/tokens",
    "/api/account/sessions",
    "/account",
    "/inbox",
    "/connections",
    "/playbooks",
    "/audit",
    "/events",  # the live stream: A's change written while it is open
}


@dataclass
class Merchant:
    id: uuid.UUID
    email: str
    token: str
    ids: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    # Strings only this merchant's pages may show.
    markers: list[str] = field(default_factory=list)
    cookie: str = ""
    csrf: str = ""
    shop_domain: str = ""


def _settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DESKPILOT_SECRET_KEY="s" * 48, DESKPILOT_PUBLIC_URL="http://api.test"
    )


def _routers() -> Iterator[APIRouter]:
    """Every APIRouter defined in a module of the api package, whatever its name."""
    for info in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"api.{info.name}")
        for value in vars(module).values():
            if isinstance(value, APIRouter):
                yield value


def _endpoints(routes: Any) -> set[Any]:
    # FastAPI 0.165 keeps included routers as branches: iter_route_contexts flattens them.
    return {c.endpoint for c in iter_route_contexts(routes)}


def build_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    app = create_app(sessions.kw["bind"], None, _settings())
    # The walk covers the app as served; a router defined in api/ but not mounted is a bug.
    for router in _routers():
        missing = _endpoints(router.routes) - _endpoints(app.routes)
        assert not missing, f"not mounted in create_app: {sorted(e.__name__ for e in missing)}"
    return app


async def make_merchant(sessions: async_sessionmaker[AsyncSession], name: str) -> Merchant:
    tag = uuid.uuid4().hex[:6]
    email = f"{name}-{tag}@store.example"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, name)  # a trial, default playbooks, events
        await set_password(session, user.id, PASSWORD)
        shop = Connection(
            user_id=user.id,
            type=ConnectionType.SHOPIFY,
            access_token="shpat_x",
            shop_domain=f"{name}-{tag}.myshopify.com",
        )
        gmail = Connection(
            user_id=user.id,
            type=ConnectionType.GMAIL,
            access_token="ya29.x",
            metadata_=GmailMetadata(email_address=f"{name}-{tag}@gmail.test").to_json(),
        )
        alias = Connection(
            user_id=user.id,
            type=ConnectionType.CUSTOM_EMAIL,
            access_token="",
            metadata_=CustomEmailMetadata(
                alias=f"{name}-{tag}@in.deskpilot.test", domain="in.deskpilot.test"
            ).to_json(),
        )
        session.add_all([shop, gmail, alias])
        await session.flush()
        order = Order(
            connection_id=shop.id,
            shop_domain=shop.shop_domain,
            shopify_id=f"gid://shopify/Order/{uuid.uuid4().int % 10**12}",
            name=f"#{name}-{tag}",
            status="open",
            email=f"customer-{tag}@example.com",
            total_amount=Decimal("59.90"),
            currency="EUR",
        )
        thread = Thread(
            user_id=user.id,
            customer_email=f"customer-{tag}@example.com",
            subject=f"Parcel {name} {tag}",
            last_message_at=datetime.now(UTC),
        )
        session.add_all([order, thread])
        await session.flush()
        message = Message(
            user_id=user.id,
            thread_id=thread.id,
            order_id=order.id,
            direction=MessageDirection.INBOUND,
            message_id=f"<{tag}@customer.test>",
            from_address=f"customer-{tag}@example.com",
            subject=thread.subject,
            body_text=f"Where is my parcel {tag}?",
            sent_at=datetime.now(UTC),
            workflow_id=f"msg-{user.id}-{tag}",
        )
        session.add(message)
        await session.flush()
        suggestion = AISuggestion(
            message_id=message.id,
            reply=f"Your parcel {tag} is on its way.",
            proposed_action=ActionType.INFO_REQUEST,
            order_id=order.id,
            confidence=0.8,
        )
        session.add(suggestion)
        await session.flush()
        action = Action(
            user_id=user.id,
            message_id=message.id,
            suggestion_id=suggestion.id,
            order_id=order.id,
            type=ActionType.INFO_REQUEST,
            status=ActionStatus.PENDING,
        )
        export = ComplianceExport(
            user_id=user.id,
            shop_domain=shop.shop_domain,
            event_id=f"evt-{tag}",
            customer_email=f"customer-{tag}@example.com",
            data={"orders": []},
        )
        session.add_all([action, export])
        await automation_settings(session, user.id)  # so A's row exists before the walk
        await session.flush()
        event = await log_event(
            session,
            "action.pending",
            user_id=user.id,
            entity="action",
            entity_id=action.id,
            payload={"thread_id": str(thread.id)},
        )
        playbooks = (
            await session.execute(select(Playbook.id).where(Playbook.user_id == user.id))
        ).scalars()
        # A browser of A's besides the one the walk signs in with, named as the API names it.
        await start_web_session(session, user.id, user_agent="alpha's other browser")
        browser = await session.scalar(select(WebSession.id).where(WebSession.user_id == user.id))
        ids = {
            "user_id": [user.id],
            "connection_id": [shop.id, gmail.id, alias.id],
            "order_id": [order.id],
            "thread_id": [thread.id],
            "message_id": [message.id],
            "suggestion_id": [suggestion.id],
            "action_id": [action.id],
            "export_id": [export.id],
            "event_id": [event.id],
            "playbook_id": list(playbooks),
            "session_id": [session_ref(str(browser))],
        }
    merchant = Merchant(user.id, email, await token_for(sessions, user.id), ids)
    async with sessions() as session:
        merchant.ids["token_id"] = list(
            (
                await session.execute(select(ApiToken.id).where(ApiToken.user_id == user.id))
            ).scalars()
        )
    merchant.shop_domain = str(shop.shop_domain)
    merchant.markers = [str(i) for values in ids.values() for i in values] + [
        email,
        str(shop.shop_domain),
        f"{name}-{tag}@gmail.test",
        f"{name}-{tag}@in.deskpilot.test",
        f"customer-{tag}@example.com",
    ]
    return merchant


async def sign_in(app: FastAPI, merchant: Merchant) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        form = await client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', form.text)
        assert csrf, form.text
        done = await client.post(
            "/login",
            data={"email": merchant.email, "password": PASSWORD, "csrf": csrf.group(1)},
        )
        assert done.status_code == 303, done.text
        merchant.cookie = client.cookies[SESSION_COOKIE]
        merchant.csrf = (await client.get("/api/session")).json()["csrf_token"]


# --- calling the app -------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


STREAM_LISTEN_S = 2.5


async def call(
    app: FastAPI,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    while_streaming: Any = None,
) -> Reply:
    """One request straight through ASGI. Unlike httpx's transport it also returns from a
    server-sent-events stream: it listens for a while (running `while_streaming`), then
    hangs up."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"api.test")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("api.test", 80),
    }
    request_sent = False
    hang_up = asyncio.Event()
    started = asyncio.Event()
    finished = asyncio.Event()
    status = 0
    reply_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            reply_headers.update({k.decode(): v.decode() for k, v in message["headers"]})
            started.set()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                finished.set()

    task = asyncio.create_task(app(scope, receive, send))
    try:
        await asyncio.wait_for(started.wait(), timeout=30)
        if reply_headers.get("content-type", "").startswith("text/event-stream"):
            if while_streaming is not None:
                await asyncio.sleep(0.3)
                await while_streaming()
            await asyncio.sleep(STREAM_LISTEN_S)
            hang_up.set()  # the app ends the stream without a last body message
        else:
            await asyncio.wait_for(finished.wait(), timeout=30)
    finally:
        hang_up.set()
        try:
            await asyncio.wait_for(task, timeout=5)
        except TimeoutError:
            task.cancel()
    return Reply(status, reply_headers, b"".join(chunks).decode("utf-8", "replace"))


def _auth_headers(merchant: Merchant | None, how: str) -> dict[str, str]:
    if merchant is None:
        return {}
    if how == "bearer":
        return {"authorization": f"Bearer {merchant.token}"}
    return {"cookie": f"{SESSION_COOKIE}={merchant.cookie}", CSRF_HEADER: merchant.csrf}


def _form_fields(route: APIRoute) -> list[str]:
    return [f.alias for f in route.dependant.body_params if isinstance(f.field_info, params.Form)]


def _form_value(name: str, owner: Merchant, csrf: str) -> str:
    """A value that passes the form's validation, naming `owner`'s rows where it takes ids."""
    values = {
        "csrf": csrf,
        "enabled": "false",
        "reason": "hijacked",
        "reply": "hijacked",
        "payload": "{}",
        "original_payload": "{}",
        "trigger": json.dumps({"version": 1, "event": "message.received"}),
        "conditions": "[]",
        "actions": json.dumps([{"version": 1, "type": "escalate", "reason": "taken over"}]),
        "confidence_threshold": "0.5",
        "requires_approval": "on",
        "confirm": "yes",  # a deletion's confirmation: so the 404 is the ownership check
    }
    if name in owner.ids:
        return str(owner.ids[name][0])
    return values.get(name, "x")


def _request_body(
    walked: Walked, owner: Merchant, caller: Merchant | None
) -> tuple[bytes, dict[str, str]]:
    route, method = walked.route, walked.method
    fields = _form_fields(route)
    if fields:
        csrf = caller.csrf if caller else ""
        data = {name: _form_value(name, owner, csrf) for name in fields}
        return urlencode(data).encode(), {"content-type": "application/x-www-form-urlencoded"}
    if route.body_field is not None or (method, walked.path) in JSON_BODIES:
        body = JSON_BODIES.get((method, walked.path), {})
        return json.dumps(body).encode(), {"content-type": "application/json"}
    return b"", {}


def _note_leaks(
    problems: list[str], owner: Merchant, reply: Reply, what: str, path: str = ""
) -> None:
    """Note `owner`'s markers found in `reply` (those in `path` are the caller's own words)."""
    leaked = [m for m in owner.markers if m in reply.body and m not in path]
    if leaked:
        problems.append(f"{what} A's {leaked}")


async def _call_billing(
    app: FastAPI, key: tuple[str, str], who: Merchant | None, how: str
) -> Reply:
    method, path = key
    kind, fields = OWN_BILLING[key]
    headers = _auth_headers(who, how)
    if kind == "json":
        headers |= {"content-type": "application/json"}
        return await call(app, method, path, headers, json.dumps(fields).encode())
    if kind == "form":
        headers |= {"content-type": "application/x-www-form-urlencoded"}
        body = urlencode(fields | {"csrf": who.csrf if who else ""}).encode()
        return await call(app, method, path, headers, body)
    return await call(app, method, f"{path}?{urlencode(fields)}", headers)


async def _call_claim(
    app: FastAPI, key: tuple[str, str], owner: Merchant, who: Merchant | None, how: str
) -> Reply:
    method, path = key
    kind, template = CLAIMS[key]
    fields = {k: v.replace("{shop_domain}", owner.shop_domain) for k, v in template.items()}
    headers = _auth_headers(who, how)
    if kind == "json":
        headers |= {"content-type": "application/json"}
        return await call(app, method, path, headers, json.dumps(fields).encode())
    headers |= {"content-type": "application/x-www-form-urlencoded"}
    body = urlencode(fields | {"csrf": who.csrf if who else ""}).encode()
    return await call(app, method, path, headers, body)


def _paths(template: str, owner: Merchant) -> list[str]:
    """The path once per combination of `owner`'s ids for its parameters."""
    names = re.findall(r"{(\w+)(?::\w+)?}", template)
    missing = [n for n in names if n not in owner.ids]
    assert not missing, (
        f"{template}: no test id for {missing}; add the owned resource to make_merchant"
    )
    paths = [template]
    for name in names:
        paths = [
            re.sub(r"{" + name + r"(?::\w+)?}", str(value), p)
            for p in paths
            for value in owner.ids[name]
        ]
    return paths


def _login_redirect(reply: Reply) -> bool:
    return reply.status == 303 and reply.headers.get("location", "").startswith("/login")


# --- the walk --------------------------------------------------------------------------------


@pytest.fixture
async def merchants(
    own_sessions: async_sessionmaker[AsyncSession],
) -> tuple[FastAPI, Merchant, Merchant]:
    app = build_app(own_sessions)
    a = await make_merchant(own_sessions, "alpha")
    b = await make_merchant(own_sessions, "bravo")
    await sign_in(app, a)
    await sign_in(app, b)
    return app, a, b


async def _state_of(sessions: async_sessionmaker[AsyncSession], owner: Merchant) -> list[Any]:
    """What B's requests would change if they reached A's rows."""
    async with sessions() as session:
        actions = (
            await session.execute(select(Action.status).where(Action.user_id == owner.id))
        ).all()
        connections = (
            await session.execute(
                select(Connection.id, Connection.metadata_)
                .where(Connection.user_id == owner.id)
                .order_by(Connection.id)
            )
        ).all()
        playbooks = (
            await session.execute(
                select(
                    Playbook.id,
                    Playbook.enabled,
                    Playbook.requires_approval,
                    Playbook.confidence_threshold,
                    Playbook.trigger,
                    Playbook.conditions,
                    Playbook.actions,
                )
                .where(Playbook.user_id == owner.id)
                .order_by(Playbook.id)
            )
        ).all()
        automation = (
            await session.execute(
                select(
                    AutomationSettings.enabled,
                    AutomationSettings.daily_refund_cap,
                    AutomationSettings.daily_execution_cap,
                    AutomationSettings.updated_at,
                ).where(AutomationSettings.user_id == owner.id)
            )
        ).all()
        subscription = (
            await session.execute(
                select(
                    Subscription.plan_type,
                    Subscription.status,
                    Subscription.payment_gateway,
                    Subscription.gateway_subscription_id,
                    Subscription.current_period_end,
                    Subscription.metadata_,
                ).where(Subscription.user_id == owner.id)
            )
        ).all()
        account = (
            await session.execute(select(User.password_hash).where(User.id == owner.id))
        ).all()
        tokens = (
            await session.execute(
                select(ApiToken.id).where(ApiToken.user_id == owner.id).order_by(ApiToken.id)
            )
        ).all()
        browsers = (
            await session.execute(
                select(WebSession.id).where(WebSession.user_id == owner.id).order_by(WebSession.id)
            )
        ).all()
    return [
        list(actions),
        list(connections),
        list(playbooks),
        list(automation),
        list(subscription),
        list(account),
        list(tokens),
        list(browsers),
    ]


@dataclass(frozen=True)
class Walked:
    method: str
    path: str  # with its router's prefix
    route: APIRoute


def _walked_routes(app: FastAPI) -> list[Walked]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute):
            assert path is not None
            routes += [Walked(m, path, route) for m in sorted(context.methods or ()) if m != "HEAD"]
        elif isinstance(route, Mount | Route):
            assert path in NON_API_ROUTES, f"{path}: a route the walk cannot see"
        else:
            raise AssertionError(f"{route!r}: a kind of route the walk does not know")
    return routes


async def test_every_route_keeps_merchants_apart(
    merchants: tuple[FastAPI, Merchant, Merchant], own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    app, a, b = merchants
    before = await _state_of(own_sessions, a)
    problems: list[str] = []
    owned_walked: set[str] = set()
    listings_seen_by_owner: set[str] = set()
    unwalked: list[str] = []

    async def new_events() -> None:
        # While B's live stream is open, both merchants change something.
        async with unit_of_work(own_sessions) as session:
            for owner in (a, b):
                await log_event(
                    session,
                    "action.pending",
                    user_id=owner.id,
                    entity="thread",
                    entity_id=owner.ids["thread_id"][0],
                )

    for walked in _walked_routes(app):
        method, template = walked.method, walked.path
        key = (method, template)
        if key in PUBLIC:
            assert PUBLIC[key].strip(), key
            continue
        label = f"{method} {template}"
        if "{" in template:
            for path in _paths(template, a):
                for who, how in ((b, "cookie"), (b, "bearer"), (None, "none")):
                    body, extra = _request_body(walked, a, who)
                    reply = await call(app, method, path, _auth_headers(who, how) | extra, body)
                    if who is None:
                        ok = reply.status == 401 or _login_redirect(reply)
                    elif how == "cookie":
                        ok = reply.status == 404
                    else:  # a page does not take a bearer token: it sends B to sign in
                        ok = reply.status == 404 or _login_redirect(reply)
                    if not ok:
                        problems.append(
                            f"{method} {path} as {how} B: {reply.status} {reply.body[:200]}"
                        )
                    # A's id in the path may be echoed back: that is not a leak.
                    _note_leaks(problems, a, reply, f"{method} {path} as {how} B shows", path)
                if method == "GET":
                    # The id is A's and real: A sees it, so B's 404 is the ownership check.
                    mine = await call(app, method, path, _auth_headers(a, "cookie"))
                    if mine.status != 200:
                        problems.append(f"GET {path} as A: {mine.status} {mine.body[:200]}")
            owned_walked.add(label)
        elif key in OWN_BILLING:
            for who, how in ((b, "cookie"), (b, "bearer"), (None, "none")):
                reply = await _call_billing(app, key, who, how)
                pages_refuse_bearer = how == "bearer" and "/api/" not in template
                if who is None or pages_refuse_bearer:
                    ok = reply.status == 401 or _login_redirect(reply) or reply.status == 403
                else:
                    ok = reply.status in BILLING_REFUSALS
                if not ok:
                    problems.append(f"{label} as {how} B: {reply.status} {reply.body[:200]}")
                _note_leaks(problems, a, reply, f"{label} as {how} B shows")
            owned_walked.add(label)
        elif method == "GET":
            for how in ("cookie", "bearer"):
                reply = await call(
                    app, method, template, _auth_headers(b, how), while_streaming=new_events
                )
                # A page, and the session route, do not take a bearer token.
                refused = reply.status == 401 or _login_redirect(reply)
                if reply.status != 200 and not (how == "bearer" and refused):
                    problems.append(f"GET {template} as {how} B: {reply.status}")
                _note_leaks(problems, a, reply, f"GET {template} as {how} B lists")
            anonymous = await call(app, method, template, {})
            if not (anonymous.status == 401 or _login_redirect(anonymous)):
                problems.append(f"GET {template} without credentials: {anonymous.status}")
            mine = await call(
                app, method, template, _auth_headers(a, "cookie"), while_streaming=new_events
            )
            if any(m in mine.body for m in a.markers):
                listings_seen_by_owner.add(template)
        elif key in OWN_ACCOUNT:
            kind, fields = OWN_ACCOUNT[key]
            for who, how in ((b, "cookie"), (b, "bearer"), (None, "none")):
                headers = _auth_headers(who, how)
                if kind == "json":
                    headers |= {"content-type": "application/json"}
                    body = json.dumps(fields).encode()
                else:
                    headers |= {"content-type": "application/x-www-form-urlencoded"}
                    body = urlencode(fields | {"csrf": who.csrf if who else ""}).encode()
                reply = await call(app, method, template, headers, body)
                pages_refuse_bearer = how == "bearer" and "/api/" not in template
                if who is None or pages_refuse_bearer:
                    ok = reply.status == 401 or _login_redirect(reply)
                else:
                    # 429: B's wrong passwords so far are throttled; 503: this app has no
                    # Temporal to queue the new address's link. Each refuses about B alone.
                    ok = reply.status in (403, 429, 503)
                if not ok:
                    problems.append(f"{label} as {how} B: {reply.status} {reply.body[:200]}")
                _note_leaks(problems, a, reply, f"{label} as {how} B shows")
            owned_walked.add(label)
        elif key in CLAIMS:
            for who, how in ((b, "cookie"), (b, "bearer"), (None, "none")):
                reply = await _call_claim(app, key, a, who, how)
                pages_refuse_bearer = how == "bearer" and "/api/" not in template
                if who is None or pages_refuse_bearer:
                    ok = reply.status in (401, 403) or _login_redirect(reply)
                else:
                    ok = reply.status == 422
                if not ok:
                    problems.append(f"{label} as {how} B: {reply.status} {reply.body[:200]}")
                # A's shop domain is in B's own request: B may see it echoed back.
                leaked = [m for m in a.markers if m in reply.body and m != a.shop_domain]
                if leaked:
                    problems.append(f"{label} as {how} B shows A's {leaked}")
            owned_walked.add(label)
        elif key in OWN_ROWS:
            body = json.dumps(OWN_ROWS[key]).encode()
            json_type = {"content-type": "application/json"}
            for who, how in ((b, "cookie"), (b, "bearer"), (None, "none")):
                reply = await call(app, method, template, _auth_headers(who, how) | json_type, body)
                ok = reply.status == 401 if who is None else 200 <= reply.status < 300
                if not ok:
                    problems.append(f"{label} as {how} B: {reply.status} {reply.body[:200]}")
                _note_leaks(problems, a, reply, f"{label} as {how} B shows")
            owned_walked.add(label)
        elif key in OWN_FORMS:
            form_type = {"content-type": "application/x-www-form-urlencoded"}
            for who in (b, None):
                fields = OWN_FORMS[key] | {"csrf": who.csrf if who else ""}
                body = urlencode(fields).encode()
                reply = await call(
                    app, method, template, _auth_headers(who, "cookie") | form_type, body
                )
                ok = (
                    _login_redirect(reply) or reply.status in (401, 403)
                    if who is None
                    else (reply.status in (200, 303))
                )
                if not ok:
                    problems.append(f"{label} as {'B' if who else 'nobody'}: {reply.status}")
                _note_leaks(problems, a, reply, f"{label} shows")
            owned_walked.add(label)
        else:
            unwalked.append(label)

    assert not unwalked, (
        f"routes neither walked nor in PUBLIC (say why they are public): {unwalked}"
    )
    assert not problems, "\n".join(problems)
    # The walk saw the routes that take owned ids, and A's data where B must not see it.
    present = {w.path for w in _walked_routes(app)}
    assert KNOWN_LISTINGS & present <= listings_seen_by_owner, (
        KNOWN_LISTINGS & present
    ) - listings_seen_by_owner
    for label in (
        "GET /api/threads/{thread_id}",
        "GET /api/messages/{message_id}",
        "POST /api/actions/{action_id}/approve",
        "PATCH /api/connections/{connection_id}",
        "DELETE /api/connections/{connection_id}",
        "POST /connections/{connection_id}/delete",
        "POST /api/connections/{connection_id}/test-email",
        "POST /connections/{connection_id}/test-email",
        "POST /api/connections",
        "POST /connections",
        "PUT /api/playbooks/{playbook_id}/rules",
        "POST /api/playbooks/{playbook_id}/backtest",
        "POST /playbooks/{playbook_id}/backtest",
        "GET /api/compliance/exports/{export_id}",
        "DELETE /api/account/tokens/{token_id}",
        "DELETE /api/account/sessions/{session_id}",
        "POST /account/tokens/{token_id}/revoke",
        "POST /account/sessions/{session_id}/revoke",
        "POST /api/account/password",
        "POST /account/password",
    ):
        assert label in owned_walked, label

    # Nothing B sent changed A's rows.
    assert await _state_of(own_sessions, a) == before


async def test_the_walk_fails_for_a_route_it_cannot_name(
    merchants: tuple[FastAPI, Merchant, Merchant],
) -> None:
    """A new route with an id the walk does not know is reported, not silently skipped."""
    _, a, _ = merchants
    with pytest.raises(AssertionError, match="no test id for"):
        _paths("/api/widgets/{widget_id}", a)
