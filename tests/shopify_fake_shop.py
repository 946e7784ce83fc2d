"""A stand-in for a shop's Admin OAuth token endpoint and GraphQL endpoint, over loopback.

Only what the install flow calls: the code exchange and webhookSubscriptionCreate (each
document validated against the 2026-10 schema). To be replaced by the sandbox store
(sandbox/shopify/) once it serves these endpoints.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from deskpilot.services import _Server
from sandbox.shopify.schema import validation_errors


@dataclass
class FakeShops:
    api_key: str
    api_secret: str
    scope: str = "read_orders,write_orders"
    codes: dict[str, str] = field(default_factory=dict)  # code → shop
    tokens: dict[str, str] = field(default_factory=dict)  # shop → token
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def issue_code(self, shop: str) -> str:
        code = secrets.token_hex(8)
        self.codes[code] = shop
        return code

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/shops/{shop}/admin/oauth/access_token")
        async def access_token(shop: str, request: Request) -> JSONResponse:
            body = await request.json()
            if (
                body.get("client_id") != self.api_key
                or body.get("client_secret") != self.api_secret
                or self.codes.pop(body.get("code", ""), None) != shop
            ):
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            token = f"shpat_{secrets.token_hex(8)}"
            self.tokens[shop] = token
            return JSONResponse({"access_token": token, "scope": self.scope})

        @app.post("/shops/{shop}/admin/api/2026-10/graphql.json")
        async def graphql(shop: str, request: Request) -> JSONResponse:
            if request.headers.get("x-shopify-access-token") != self.tokens.get(shop):
                return JSONResponse({"errors": "Invalid API key or access token"}, status_code=401)
            body = await request.json()
            errors = validation_errors(body["query"])
            if errors:
                return JSONResponse({"errors": [{"message": e.message} for e in errors]})
            variables = body["variables"]
            self.subscriptions.append({"shop": shop, **variables})
            number = len(self.subscriptions)
            return JSONResponse(
                {
                    "data": {
                        "webhookSubscriptionCreate": {
                            "webhookSubscription": {
                                "id": f"gid://shopify/WebhookSubscription/{number}",
                                "topic": variables["topic"],
                                "uri": variables["webhookSubscription"]["uri"],
                            },
                            "userErrors": [],
                        }
                    }
                }
            )

        return app


@asynccontextmanager
async def serving_fake_shops(api_key: str, api_secret: str) -> AsyncIterator[FakeShops]:
    shops = FakeShops(api_key, api_secret)
    # deskpilot's server class: uvicorn's own would take over the test run's signals.
    server = _Server(uvicorn.Config(shops.app(), host="127.0.0.1", port=0, log_config=None))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        shops.base_url = f"http://127.0.0.1:{port}"
        yield shops
    finally:
        server.should_exit = True
        await task
