"""OpenAPI documents every status each JSON operation can answer (issue 12, part 5).

The statuses a route must document are derived from the route itself: its dependencies
(the caller's identity, Temporal), its parameters and body, and its method. Every error
it documents uses the one error body `api/errors.py` renders.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from api.deps import CurrentUser, TemporalDep
from api.errors import STATUS
from api.web_auth import SAFE_METHODS
from kernel.settings import Settings

ERROR_REF = "#/components/schemas/ErrorOut"
# What api/errors.py can answer: its classes' statuses, and 422 for an unreadable request.
RENDERED = {status for _, status in STATUS} | {422}


def _dependency(alias: Any) -> Any:
    """The callable behind an `Annotated[..., Depends(f)]` alias of api.deps."""
    return get_args(alias)[1].dependency


CALLER = _dependency(CurrentUser)
TEMPORAL = _dependency(TemporalDep)


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # Never connects: building the OpenAPI document touches neither database nor Temporal.
    return create_app(
        create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none"), None, Settings()
    )


def _all(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _all(sub)


def implied_statuses(route: APIRoute, method: str) -> dict[int, str]:
    """The error statuses this route can answer by construction, and why."""
    parts = list(_all(route.dependant))
    calls = {d.call for d in parts}
    implied: dict[int, str] = {}
    if CALLER in calls:
        implied[401] = "it needs an API token or a session"
        if method not in SAFE_METHODS:
            implied[403] = "with the session cookie it needs the X-CSRF-Token"
    if TEMPORAL in calls:
        implied[503] = "it needs Temporal"
    if any(d.path_params for d in parts):
        implied[404] = "it looks a row up by the id in its path"
    if any(d.body_params for d in parts):
        implied[400] = "its JSON body may not parse"
    if any(d.path_params or d.query_params or d.header_params or d.body_params for d in parts):
        implied[422] = "it has parameters or a body FastAPI validates"
    return implied


def _operations(app: FastAPI) -> Iterator[tuple[str, APIRoute, str, dict[str, Any]]]:
    """(method, path, route, operation) of every route in the schema."""
    paths = app.openapi()["paths"]
    count = 0
    # FastAPI 0.165 keeps included routers as branches: iter_route_contexts flattens them.
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema:
            for method in sorted(context.methods or ()):
                count += 1
                yield method, context.path_format, route, paths[context.path_format][method.lower()]
    assert count > 20, "the walk found too few operations"


def test_every_operation_documents_what_its_route_implies(app: FastAPI) -> None:
    missing = [
        f"{method} {path}: {status} ({why})"
        for method, path, route, operation in _operations(app)
        for status, why in implied_statuses(route, method).items()
        if str(status) not in operation["responses"]
    ]
    assert not missing, "undocumented statuses:\n" + "\n".join(missing)


def test_authenticated_operations_declare_their_security_and_401(app: FastAPI) -> None:
    for method, path, _, operation in _operations(app):
        if operation.get("security"):
            assert "401" in operation["responses"], f"{method} {path}"


def test_every_documented_error_is_one_the_api_renders_with_the_error_body(
    app: FastAPI,
) -> None:
    count = 0
    for method, path, _, operation in _operations(app):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            count += 1
            where = f"{method} {path} {status}"
            assert int(status) in RENDERED, where
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, where
    assert count > 0


def test_no_operation_keeps_fastapis_validation_body(app: FastAPI) -> None:
    """Our 422 is the error body, not FastAPI's {"detail": [...]}."""
    assert "HTTPValidationError" not in app.openapi()["components"]["schemas"]


def test_the_implied_statuses_are_derived_from_the_route() -> None:
    """The derivation itself sees an id in the path, the caller and Temporal."""
    probe = FastAPI()

    @probe.post("/things/{thing_id}")
    async def change(thing_id: int, user: CurrentUser, temporal: TemporalDep) -> None: ...

    @probe.put("/notes")
    async def write(note: dict[str, str]) -> None: ...

    @probe.get("/open")
    async def open_() -> None: ...

    routes = {
        c.path_format: c.original_route
        for c in iter_route_contexts(probe.routes)
        if isinstance(c.original_route, APIRoute)
    }
    assert set(implied_statuses(routes["/things/{thing_id}"], "POST")) == {401, 403, 404, 422, 503}
    assert set(implied_statuses(routes["/notes"], "PUT")) == {400, 422}
    assert implied_statuses(routes["/open"], "GET") == {}


async def test_fastapis_own_refusals_answer_with_the_error_body(app: FastAPI) -> None:
    """A body that does not parse, an unknown path or method: the same shape as ours."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as client:
        unreadable = await client.post(
            "/api/session", content=b"\x80 not UTF-8", headers={"Content-Type": "application/json"}
        )
        unknown = await client.get("/api/nothing-here")
        wrong_method = await client.put("/healthz")
    assert unreadable.status_code == 400
    assert unreadable.json()["error"]["code"] == "bad_request"
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "Not Found"}}
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
