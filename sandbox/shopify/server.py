"""The Shopify sandbox over HTTP: Admin GraphQL, OAuth, and a ledger for tests.

Many shops share one port; a shop's base URL is `{sandbox}/shops/{shop_domain}`:

    POST {base}/admin/api/2026-10/graphql.json     X-Shopify-Access-Token
    GET  {base}/admin/oauth/authorize              -> 302 to redirect_uri with code and hmac
    POST {base}/admin/oauth/access_token           {client_id, client_secret, code}
    GET  {base}/_sandbox/ledger                    every effect, in order (not Shopify)
    GET  {base}/_sandbox/usage                     the rate limit's tally (not Shopify)
    POST {base}/_sandbox/orders                    a new order, with orders/create (not Shopify)

Every GraphQL request is parsed, validated and executed against Shopify's own schema,
so a document Shopify would refuse is refused here with the same kind of `errors`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.language import FragmentDefinitionNode

from sandbox.shopify import seed
from sandbox.shopify.cost import SINGLE_QUERY_LIMIT, actual_cost, requested_cost
from sandbox.shopify.resolvers import Context, Root, resolve_type
from sandbox.shopify.schema import API_VERSION, admin_schema
from sandbox.shopify.state import Order, Refusal, Shop, ShopifyState
from sandbox.shopify.webhooks import WebhookDispatcher

DEMO_SHOP = "demo-store.myshopify.com"
# A second demo store with deskpilot not installed: a new merchant can install it.
SECOND_DEMO_SHOP = "second-store.myshopify.com"
SECOND_DEMO_ORDERS = 8
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def oauth_hmac(params: dict[str, str], secret: str) -> str:
    """Shopify's query-string signature: drop hmac/signature, sort, join k=v with &, hex."""
    message = "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(x for x in (parts.query, urlencode(params)) if x)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@functools.lru_cache(maxsize=256)
def _checked(query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
    """The parsed document, or None and why it is not valid. Cached: a client sends the
    same few documents again and again, and validating one against the full Admin schema
    takes milliseconds. The AST is never changed by executing it."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (exc.formatted,)
    problems = validate(admin_schema(), document)
    if problems:
        return None, tuple(e.formatted for e in problems)
    return document, ()


@dataclass
class ApiUsage:
    """One shop's Admin API tally, for benchmarks: what the requests asked of the leaky
    bucket, what they cost once answered, and how many were refused as THROTTLED."""

    requests: int = 0
    requested_points: int = 0
    actual_points: int = 0
    throttled: int = 0

    def count(self, requested: int | None, actual: int | None, *, throttled: bool) -> None:
        self.requests += 1
        self.requested_points += requested or 0
        self.actual_points += actual or 0
        self.throttled += throttled


@dataclass
class ShopifySandbox:
    """The whole fake Shopify: state, webhook delivery, and the HTTP routes over them."""

    state: ShopifyState = field(default_factory=ShopifyState)
    dispatcher: WebhookDispatcher = field(init=False)
    # Awaited with each GraphQL request body before it is answered: crash tests slow
    # the store down with it, to kill a worker while its requests are in flight.
    before_graphql: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    usage: dict[str, ApiUsage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dispatcher = WebhookDispatcher(self.state)

    # set-up helpers for tests and the demo

    def add_shop(
        self,
        domain: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        orders: int = 60,
        **options: Any,
    ) -> Shop:
        """A seeded shop; with `api_key`, that app is installed under `token` (or a new one)."""
        shop = self.state.add_shop(domain, **options)
        seed.seed_shop(shop, count=orders)
        if api_key is not None:
            self.state.install(shop, api_key, token=token)
        return shop

    def shop(self, domain: str) -> Shop:
        return self.state.shops[domain]

    def create_order(self, domain: str, **details: Any) -> Order:
        order = seed.create_order(self.shop(domain), **details)
        self.dispatcher.pump()
        return order

    # the GraphQL endpoint

    def graphql(self, shop: Shop, scope: str, body: dict[str, Any]) -> dict[str, Any]:
        """One Admin API request, answered as Shopify would (HTTP 200 in every case here)."""
        answer = self._answer(shop, scope, body)
        cost = answer["extensions"]["cost"]
        throttled = any(
            (e.get("extensions") or {}).get("code") == "THROTTLED"
            for e in answer.get("errors") or []
        )
        self.usage.setdefault(shop.domain, ApiUsage()).count(
            cost["requestedQueryCost"], cost["actualQueryCost"], throttled=throttled
        )
        return answer

    def _answer(self, shop: Shop, scope: str, body: dict[str, Any]) -> dict[str, Any]:
        shop.run_due_jobs()
        bucket = shop.bucket
        bucket.refill(self.state.clock())

        def throttle(requested: int | None, actual: int | None) -> dict[str, Any]:
            return {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": {
                        "maximumAvailable": bucket.maximum,
                        "currentlyAvailable": int(bucket.available),
                        "restoreRate": bucket.restore_rate,
                    },
                }
            }

        query = body.get("query")
        variables = body.get("variables") or {}
        operation_name = body.get("operationName")
        document, problems = _checked(query if isinstance(query, str) else "")
        if document is None:
            return {"errors": list(problems), "extensions": throttle(None, None)}
        operation = get_operation_ast(document, operation_name)
        if not isinstance(operation, OperationDefinitionNode):
            error = GraphQLError("An operation name is required when the document has several")
            return {"errors": [error.formatted], "extensions": throttle(None, None)}
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        requested = requested_cost(admin_schema(), operation, fragments, variables)
        if requested > SINGLE_QUERY_LIMIT:
            message = (
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({SINGLE_QUERY_LIMIT})."
            )
            return {
                "errors": [
                    {
                        "message": message,
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": SINGLE_QUERY_LIMIT,
                        },
                    }
                ],
                "extensions": throttle(requested, None),
            }
        if requested > bucket.available:
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": throttle(requested, None),
            }
        bucket.available -= requested
        context = Context(shop, frozenset(s.strip() for s in scope.split(",") if s.strip()), [])
        result = execute(
            admin_schema(),
            document,
            root_value=Root(context),
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            type_resolver=resolve_type,
        )
        assert isinstance(result, ExecutionResult)  # every resolver here is synchronous
        mutations = (
            len(operation.selection_set.selections)
            if operation.operation == OperationType.MUTATION
            else 0
        )
        actual = min(requested, actual_cost(result.data, mutation_fields=mutations))
        bucket.available = min(bucket.maximum, bucket.available + requested - actual)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["extensions"] = throttle(requested, actual)
        if context.search_warnings:
            answer["extensions"]["search"] = context.search_warnings
        return answer

    def _after_request(self, shop: Shop) -> None:
        """Deliver queued webhooks, and finish queued jobs when they fall due."""
        self.dispatcher.pump()
        pending = [j for j in shop.jobs.values() if not j.done]
        if pending:
            loop = asyncio.get_running_loop()
            delay = max((min(j.due_at for j in pending) - self.state.clock()).total_seconds(), 0)

            def finish() -> None:
                shop.run_due_jobs()
                self.dispatcher.pump()

            loop.call_later(delay + 0.001, finish)

    # HTTP

    def router(self) -> APIRouter:
        api = APIRouter(prefix="/shops/{shop_domain}")

        def find(shop_domain: str) -> Shop | None:
            return self.state.shops.get(shop_domain)

        @api.post("/admin/api/{version}/graphql.json")
        async def graphql(shop_domain: str, version: str, request: Request) -> Response:
            shop = find(shop_domain)
            if shop is None or version != API_VERSION:
                return JSONResponse({"errors": "Not Found"}, 404)
            entry = shop.tokens.get(request.headers.get("x-shopify-access-token", ""))
            if entry is None:
                return JSONResponse({"errors": INVALID_TOKEN}, 401)
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                return JSONResponse(
                    {"errors": {"query": "Required parameter missing or invalid"}}, 400
                )
            if self.before_graphql is not None:
                await self.before_graphql(body)
            answer = self.graphql(shop, entry[1], body)
            self._after_request(shop)
            return JSONResponse(answer)

        @api.get("/admin/oauth/authorize")
        async def authorize(shop_domain: str, request: Request) -> Response:
            shop = find(shop_domain)
            if shop is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            params = request.query_params
            app = self.state.apps.get(params.get("client_id", ""))
            if app is None:
                return JSONResponse(
                    {"error": "invalid_request", "error_description": "The client_id is invalid"},
                    400,
                )
            redirect_uri = params.get("redirect_uri", "")
            if not redirect_uri or (app.redirect_urls and redirect_uri not in app.redirect_urls):
                return JSONResponse(
                    {
                        "error": "invalid_request",
                        "error_description": "The redirect_uri is missing or not whitelisted",
                    },
                    400,
                )
            # A real merchant sees a consent screen here; the sandbox approves at once.
            scope = params.get("scope", app.scopes)
            answer = {
                "code": self.state.issue_code(shop, app.api_key, scope),
                "host": base64.b64encode(f"admin.shopify.com/store/{shop.name}".encode())
                .decode()
                .rstrip("="),
                "shop": shop.domain,
                "state": params.get("state", ""),
                "timestamp": str(int(time.time())),
            }
            answer["hmac"] = oauth_hmac(answer, app.secret)
            return RedirectResponse(_with_query(redirect_uri, answer), 302)

        @api.post("/admin/oauth/access_token")
        async def access_token(shop_domain: str, request: Request) -> Response:
            shop = find(shop_domain)
            if shop is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            if request.headers.get("content-type", "").startswith("application/json"):
                given = await request.json()
            else:
                given = dict(await request.form())
            try:
                token, scope = self.state.redeem_code(
                    shop,
                    str(given.get("client_id", "")),
                    str(given.get("client_secret", "")),
                    str(given.get("code", "")),
                )
            except Refusal as refusal:
                status = 401 if refusal.code == "invalid_client" else 400
                return JSONResponse(
                    {"error": refusal.code, "error_description": refusal.message}, status
                )
            return JSONResponse({"access_token": token, "scope": scope})

        @api.get("/_sandbox/ledger")
        async def ledger(shop_domain: str) -> Response:
            shop = find(shop_domain)
            if shop is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            shop.run_due_jobs()
            return JSONResponse(shop.ledger)

        @api.get("/_sandbox/usage")
        async def usage(shop_domain: str) -> Response:
            if find(shop_domain) is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            return JSONResponse(vars(self.usage.get(shop_domain, ApiUsage())))

        @api.post("/_sandbox/orders")
        async def new_order(shop_domain: str, request: Request) -> Response:
            if find(shop_domain) is None:
                return JSONResponse({"errors": "Not Found"}, 404)
            given = await request.json() if await request.body() else {}
            details = {k: given[k] for k in ("email", "first_name", "last_name") if k in given}
            order = self.create_order(shop_domain, **details)
            return JSONResponse({"id": order.gid, "name": order.name}, 201)

        return api

    def app(self) -> FastAPI:
        app = FastAPI(title="deskpilot Shopify sandbox")
        app.include_router(self.router())
        return app


def demo(api_key: str, secret: str, *, token: str, shop: str = DEMO_SHOP) -> ShopifySandbox:
    """The demo store: one seeded shop with the app installed under a known token."""
    sandbox = ShopifySandbox()
    sandbox.state.register_app(api_key, secret)
    sandbox.add_shop(shop, api_key=api_key, token=token, name="Demo Store")
    return sandbox


@contextlib.asynccontextmanager
async def serving(
    sandbox: ShopifySandbox, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve the sandbox in this event loop; yields its base URL, then delivers what is queued."""
    from sandbox.server import serve_app  # sandbox.server mounts this module's router

    try:
        async with serve_app(sandbox.app(), host, port) as url:
            yield url
    finally:
        await sandbox.dispatcher.aclose()
