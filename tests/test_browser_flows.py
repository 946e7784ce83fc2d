"""The inbox flow in a real Chromium: the real app served on loopback, a real Temporal dev
server and worker, the sandbox store and mail sink (tests/pipeline.py).

A merchant signs in, watches a suggestion arrive without reloading, edits the reply,
approves and sees it executed (live), rejects another with a reason; a second merchant
cannot reach the first one's thread. Screenshots of the inbox and thread, laptop and phone.
"""

from __future__ import annotations

import email
import re
import uuid
from email import policy
from typing import TYPE_CHECKING

import httpx
from playwright.async_api import expect
from sqlalchemy import select

from api import pages
from api.app import create_app
from kernel.settings import Settings
from models.db import unit_of_work
from models.user import User, set_password
from services.accounts import create_user
from tests.api_support import raw_email, token_for
from tests.pipeline import running_pipeline

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.async_api import Page
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from temporalio.testing import WorkflowEnvironment

    from tests.browser_support import NewPage, PageProblems, Screenshot, ServeApp

pytest_plugins = ("tests.browser_support",)

PASSWORD = "correct horse battery staple"
# The worker's whole journey (suggestion, refund, reply) on a loaded machine.
PIPELINE_MS = 45_000
EDITED_REPLY = "Hi! We refunded your broken mug in full. Sorry about that - the Test Store team"


def _app(
    sessions: async_sessionmaker[AsyncSession], env: WorkflowEnvironment, queue: str
) -> FastAPI:
    settings = Settings().model_copy(update={"public_url": "http://127.0.0.1"})
    app = create_app(sessions.kw["bind"], env.client, settings, task_queue=queue)
    if not any(getattr(route, "path", None) == "/inbox" for route in app.routes):
        app.include_router(pages.router)
    return app


async def _password_for(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> str:
    async with unit_of_work(sessions) as session:
        await set_password(session, user_id, PASSWORD)
        user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
        return user.email


async def _sign_in(page: Page, email_address: str, path: str = "/inbox") -> None:
    await page.goto(path)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("Email").fill(email_address)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(path) + "$"))


async def _live(page: Page) -> None:
    """The page's event stream is open: a change from now on reaches it."""
    await expect(page.locator("html")).to_have_attribute("data-live", "connected")


async def _fits(page: Page) -> None:
    """Nothing wider than the screen (no sideways scrolling on a phone)."""
    overflow = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


async def test_sign_in_approve_reject_and_isolation_in_a_browser(
    temporal_dev: WorkflowEnvironment,
    own_sessions: async_sessionmaker[AsyncSession],
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    queue = f"browser-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        owner_email = await _password_for(own_sessions, merchant.user_id)
        token = await token_for(own_sessions, merchant.user_id)
        async with served_app(_app(own_sessions, temporal_dev, queue)) as base_url:
            api = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"})

            async def ingest(subject: str, body: str, number: str) -> None:
                raw = raw_email(sender=merchant.orders[number]["email"], subject=subject, body=body)
                answer = await api.post("/api/inbound/email", content=raw)
                assert answer.status_code == 202, answer.text

            # --- sign in; the suggestion appears in the open inbox without a reload.
            page = await new_page("laptop", base_url=base_url)
            await _sign_in(page, owner_email)
            await expect(page.get_by_text("Nothing needs a decision right now.")).to_be_visible()
            await _live(page)
            await page.evaluate("window.notReloaded = true")
            await ingest("Broken mug", "My order #1001 arrived broken. I want a refund.", "1001")
            row = page.locator(".thread-row", has_text="Broken mug")
            await expect(row).to_be_visible(timeout=PIPELINE_MS)
            await expect(row).to_contain_text("REFUND · PENDING")
            await expect(row).to_contain_text("#1001")
            assert await page.evaluate("window.notReloaded") is True
            await screenshot(page, "inbox-laptop")
            page_problems.assert_none()

            # --- the thread: suggestion and order beside the message.
            await row.get_by_role("link").click()
            await expect(page.get_by_role("heading", level=1)).to_have_text("Broken mug")
            thread_url = page.url
            await expect(page.locator("#suggestion")).to_contain_text("% confident")
            await expect(page.locator("#suggestion")).to_contain_text("offline-rules")
            await expect(page.locator("#order")).to_contain_text("#1001")
            await expect(page.locator("#action-status")).to_have_text("PENDING")
            workflow_link = page.get_by_role("link", name="Open the workflow in Temporal")
            assert re.fullmatch(
                r"http://127\.0\.0\.1:\d+/namespaces/default/workflows/msg-[\w-]+",
                await workflow_link.get_attribute("href") or "",
            )
            await screenshot(page, "thread-laptop")

            # Invalid payload JSON is refused in the page and nothing typed is lost.
            reply = page.get_by_label("Reply to the customer")
            payload = page.get_by_label(re.compile(r"^Action payload"))
            original_payload = await payload.input_value()
            await reply.fill(EDITED_REPLY)
            await payload.fill('{"amount": oops')
            await page.get_by_role("button", name="Approve").click()
            await expect(page.locator("#payload-error")).to_contain_text("not valid JSON")
            assert page.url == thread_url
            assert await reply.input_value() == EDITED_REPLY
            assert await payload.input_value() == '{"amount": oops'

            # --- approve the edited reply; the result arrives live.
            await payload.fill(original_payload)
            await page.get_by_role("button", name="Approve").click()
            await expect(page.get_by_role("status")).to_have_text(
                "Approved: the action is running."
            )
            await _live(page)
            await page.evaluate("window.notReloaded = true")
            await expect(page.locator("#action-status")).to_have_text(
                "EXECUTED", timeout=PIPELINE_MS
            )
            await expect(page.locator("#result")).to_contain_text("Executed")
            await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
            await expect(page.locator("#messages")).to_contain_text(EDITED_REPLY)
            assert await page.evaluate("window.notReloaded") is True
            await screenshot(page, "thread-executed-laptop")
            refunds = merchant.refunds()
            assert len(refunds) == 1 and refunds[0]["order"] == "#1001"
            sink = merchant.sandbox.sink
            assert len(sink.deliveries) == 1
            sent = email.message_from_bytes(sink.raw(0), policy=policy.default)
            body = sent.get_body(preferencelist=("plain",))
            assert body is not None and EDITED_REPLY in body.get_content()
            page_problems.assert_none()

            # --- reject another message, with a reason.
            await ingest(
                "Cancel please",
                "Please cancel my order #1002.\n\n"
                "On Mon, 2 Nov 2026 at 10:00, Test Store wrote:\n> Your order #1002 is confirmed.",
                "1002",
            )
            await page.goto("/inbox")
            second = page.locator(".thread-row", has_text="Cancel please")
            await expect(second).to_be_visible(timeout=PIPELINE_MS)
            await second.get_by_role("link").click()
            # The quoted history is folded until asked for.
            quoted = page.get_by_text("Your order #1002 is confirmed.")
            await expect(page.get_by_text("Please cancel my order #1002.")).to_be_visible()
            await expect(quoted).to_be_hidden()
            await page.get_by_text("Quoted text").click()
            await expect(quoted).to_be_visible()
            await page.get_by_role("button", name="Reject").click()
            # The reason is required: the browser keeps the form from leaving without one.
            assert await page.get_by_label("Reason for rejecting").evaluate(
                "e => !e.validity.valid"
            )
            await page.get_by_label("Reason for rejecting").fill("The parcel has already left")
            await page.get_by_role("button", name="Reject").click()
            await expect(page.get_by_role("status")).to_have_text("Rejected.")
            await expect(page.locator("#action-status")).to_have_text("REJECTED")
            await expect(page.locator("#decision")).to_contain_text("was rejected")
            assert len(merchant.refunds()) == 1 and len(sink.deliveries) == 1
            assert [e for e in merchant.shop.ledger if e["type"] != "refund"] == []
            await page.goto("/inbox?view=handled")
            await expect(page.locator(".thread-row", has_text="Cancel please")).to_contain_text(
                "REJECTED"
            )
            page_problems.assert_none()

            # --- the same pages on a phone.
            phone = await new_page("phone", base_url=base_url)
            await _sign_in(phone, owner_email, "/inbox?view=all")
            await expect(phone.locator(".thread-row")).to_have_count(2)
            await _fits(phone)
            await screenshot(phone, "inbox-phone")
            await phone.goto(thread_url)
            await expect(phone.locator("#action-status")).to_have_text("EXECUTED")
            await _fits(phone)
            await screenshot(phone, "thread-phone")
            page_problems.assert_none()

            # --- a second merchant, in a browser of its own, cannot see the first one's.
            async with unit_of_work(own_sessions) as session:
                other = await create_user(session, f"other-{uuid.uuid4().hex[:6]}@store.test")
                await set_password(session, other.id, PASSWORD)
            stranger = await new_page("laptop", base_url=base_url)
            await _sign_in(stranger, other.email, "/inbox?view=all")
            await expect(stranger.get_by_text("No threads yet.")).to_be_visible()
            await expect(stranger.locator(".thread-row")).to_have_count(0)
            response = await stranger.goto(thread_url)
            assert response is not None and response.status == 404
            await expect(stranger.get_by_role("heading", level=1)).to_have_text("Thread not found")
            assert "Broken mug" not in await stranger.content()
            page_problems.assert_none(allow_status=(404,))

            # Close the pages' event streams before the server stops (it waits for them).
            for open_page in (page, phone, stranger):
                await open_page.close()
            await api.aclose()
    page_problems.assert_none(allow_status=(404,))
