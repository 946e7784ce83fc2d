"""The one error hierarchy, rendered once for HTTP and mapped once to Temporal (where bad
data, a KeyError or ValueError, is final too: tests/test_pipeline_http.py shows it through the
real pipeline)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.errors import to_application_error
from api.app import create_app
from api.errors import LoginRequired, headers_of, status_of
from domain.mail.mime import EmailTooLargeError, MalformedEmailError, parse_email
from domain.playbook_rules import PlaybookRuleError
from kernel.errors import (
    Conflict,
    DeskpilotError,
    Forbidden,
    IntegrationError,
    Invalid,
    LimitReached,
    Malformed,
    NotFound,
    Refused,
    TooLarge,
    Transient,
    Unauthorized,
)
from kernel.settings import Settings
from models.inbox_listing import Cursor


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Invalid("x"), 400),
        (Malformed("x"), 422),
        (TooLarge("x"), 413),
        (Unauthorized("x"), 401),
        (Forbidden("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (Refused("x"), 409),
        (LimitReached("x"), 429),
        (Transient("x"), 503),
        (IntegrationError("x", retryable=False), 502),
        (LoginRequired("/inbox"), 303),
    ],
)
def test_each_kind_has_one_status(error: DeskpilotError, status: int) -> None:
    assert status_of(error) == status


def test_our_own_errors_are_kinds_of_the_hierarchy() -> None:
    # The size check comes first: a too-large email is 413, not the 422 of a malformed one.
    too_large = EmailTooLargeError(10, 5)
    assert (status_of(too_large), too_large.code) == (413, "too_large")
    with pytest.raises(MalformedEmailError) as malformed:
        parse_email(b"{not an email}")
    assert (status_of(malformed.value), malformed.value.code) == (422, "malformed_email")
    assert status_of(PlaybookRuleError("x")) == 422
    with pytest.raises(Invalid):
        Cursor.decode("not a cursor")


def test_headers_say_how_to_authenticate_retry_or_sign_in() -> None:
    assert headers_of(Unauthorized("x")) == {"WWW-Authenticate": "Bearer"}
    assert headers_of(LimitReached("x", retry_after=60)) == {"Retry-After": "60"}
    assert headers_of(LimitReached("x")) == {}
    assert headers_of(LoginRequired("/threads/1")) == {"Location": "/login?next=/threads/1"}


def test_final_errors_reach_temporal_non_retryable_with_their_kind() -> None:
    final = to_application_error(Refused("the order is cancelled"))
    assert isinstance(final, ApplicationError)
    assert (final.type, final.non_retryable, final.message) == (
        "Refused",
        True,
        "the order is cancelled",
    )
    vendor = to_application_error(IntegrationError("429", retryable=True))
    assert (vendor.type, vendor.non_retryable) == ("IntegrationError", False)


@pytest.fixture
async def client(own_sessions: async_sessionmaker[AsyncSession]) -> httpx.AsyncClient:
    settings = Settings(_env_file=None, DESKPILOT_SECRET_KEY="s" * 48)  # type: ignore[call-arg]
    app: FastAPI = create_app(own_sessions.kw["bind"], None, settings)
    api, pages = APIRouter(), APIRouter(include_in_schema=False)

    @api.get("/api/t/missing")
    async def missing_json() -> None:
        raise NotFound("no such thing")

    @pages.get("/t/missing")
    async def missing_page() -> None:
        raise NotFound("no such <thing>")

    app.include_router(api)
    app.include_router(pages)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


async def test_the_api_answers_json(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/api/t/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such thing"}}


async def test_a_page_answers_the_html_error_page(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/t/missing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "no such &lt;thing&gt;" in response.text  # escaped, inside the site's layout
    assert "<code>not_found</code>" in response.text and 'href="/inbox"' in response.text
