"""The one error hierarchy, rendered once for HTTP and mapped once to Temporal (where bad
data, a KeyError or ValueError, is final too)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.errors import ErrorMapping, to_application_error
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
from workflows.contracts import (
    MESSAGE_WORKFLOW,
    PREPARE_MESSAGE,
    MessageWorkflowInput,
    Prepared,
    PrepareInput,
)
from workflows.message import MessageWorkflow


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


@activity.defn(name=PREPARE_MESSAGE)
async def _prepare_on_bad_data(data: PrepareInput) -> Prepared:
    return Prepared(**{"action_id": {}["line_item_id"]})  # the KeyError a bad payload raised


async def test_a_key_error_in_an_activity_is_final_with_its_message(
    temporal_dev: WorkflowEnvironment,
) -> None:
    queue = f"errors-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_dev.client,
        task_queue=queue,
        workflows=[MessageWorkflow],
        activities=[_prepare_on_bad_data],
        interceptors=[ErrorMapping()],
    ):
        handle = await temporal_dev.client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageWorkflowInput(user_id=uuid.uuid4(), message_id=uuid.uuid4()),
            id=f"msg-errors-{uuid.uuid4()}",
            task_queue=queue,
        )
        with pytest.raises(WorkflowFailureError) as failed:
            async with asyncio.timeout(30):
                await handle.result()
    cause = failed.value.cause.cause  # the workflow's failure is the activity's
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == ("Invalid", True)
    assert "KeyError" in cause.message and "line_item_id" in cause.message
    history = await handle.fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1]  # never retried
