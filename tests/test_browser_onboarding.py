"""A new merchant, in a real Chromium, against a running `deskpilot up` and its demo sandbox:
sign up, confirm the address from the verification email the sandbox's mail sink caught,
watch the inbox's checklist, install the demo's second store through the sandbox's consent,
create a forwarding alias and see its test email arrive, at laptop and at phone width.

The second store can be installed once (a second merchant claiming it is refused), so the
phone goes through sign-up, verification and the checklist as a second merchant, then signs
the first one in and creates and tests a second alias for its store.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from playwright.async_api import expect

from sandbox.shopify.server import SECOND_DEMO_SHOP
from tests.test_cli import _up_ports
from tests.test_up_pipeline import Up, launch  # noqa: F401  (launch is the fixture)

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.browser_support import NewPage, PageProblems, Screenshot

pytest_plugins = ("tests.browser_support",)

PASSWORD = "a long enough passphrase"
# The checklist's steps this flow completes; choosing a plan is the billing tests' flow.
SET_UP_HERE = ("connect_store", "connect_mail", "review_playbooks")
# The workflow sends it, the sandbox's sink relays it to the SMTP receiver, the page
# refreshes itself every 3 s: generous for a loaded CI machine.
ARRIVAL_TIMEOUT_MS = 60_000
MAIL_TIMEOUT_S = 60


async def _verification_link(up: Up, email: str) -> str:
    """The verification link in the newest mail the sandbox's sink has for `email`."""
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(MAIL_TIMEOUT_S * 5):
            deliveries = (await client.get(f"{up.sandbox}/mail/messages")).json()
            mine = [d for d in deliveries if email in d["recipients"]]
            if mine:
                raw = base64.b64decode(mine[-1]["raw_b64"])
                message = message_from_bytes(raw, policy=default)
                assert isinstance(message, EmailMessage)
                body = message.get_body(preferencelist=("plain",))
                assert body is not None
                found = re.search(r"https?://\S+/verify\?token=[\w-]+", body.get_content())
                assert found, body.get_content()
                return found.group(0)
            await asyncio.sleep(0.2)
    raise AssertionError(f"no verification email for {email} reached the sandbox's sink")


async def _sign_up(page: Page, email: str) -> None:
    await page.goto("/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/inbox$"))


async def _verify(page: Page, up: Up, email: str) -> None:
    await page.goto(await _verification_link(up, email))
    await expect(page.get_by_text(f"Confirm that {email} is your address.")).to_be_visible()
    await page.get_by_role("button", name="Confirm my email").click()
    await expect(page.get_by_text(f"{email} is confirmed.")).to_be_visible()


async def _checklist(page: Page, done: tuple[str, ...]) -> None:
    """The inbox's checklist, with exactly these steps done."""
    await page.goto("/inbox")
    checklist = page.locator("#onboarding")
    await expect(checklist.get_by_role("heading", name="Get set up")).to_be_visible()
    for key in ("connect_store", "connect_mail", "review_playbooks", "choose_plan"):
        state = "done" if key in done else "todo"
        await expect(checklist.locator(f'[data-step="{key}"]')).to_have_class(
            re.compile(rf"\b{state}\b")
        )


async def _install_second_store(page: Page) -> None:
    await page.goto("/connections")
    await page.get_by_label("Store domain").fill(SECOND_DEMO_SHOP)
    await page.get_by_role("button", name="Install Shopify").click()
    # The sandbox's consent approves at once and sends the browser back to the callback.
    await expect(page).to_have_url(re.compile(r"/connections\?notice=installed$"))
    await expect(page.get_by_role("status").first).to_contain_text("Store connected")
    shops = page.locator("section[aria-labelledby=shopify-h]")
    await expect(shops.get_by_text(SECOND_DEMO_SHOP, exact=True)).to_be_visible()


async def _alias_with_test_email(page: Page, support: str, name: str) -> str:
    """Create an alias from the connections page, send its test email, see it arrive."""
    await page.goto("/connections")
    await page.get_by_label("Store", exact=True).select_option(SECOND_DEMO_SHOP)
    await page.get_by_label("Support address").fill(support)
    await page.get_by_label("Display name").fill(name)
    await page.get_by_role("button", name="Create forwarding address").click()
    await expect(page.get_by_text("Forwarding address created")).to_be_visible()
    item = page.locator("li", has_text=f"Replies are sent as {support}")
    alias = (await item.locator(".name code").inner_text()).strip()
    assert re.fullmatch(r"[\w.+-]+@[\w.-]+", alias), alias

    await item.get_by_role("button", name=f"Send a test email to {alias}").click()
    await expect(page).to_have_url(re.compile(r"/connections\?notice=test_sent"))
    await expect(
        page.get_by_text("Test email sent: this page shows when it arrives.")
    ).to_be_visible()
    # The page refreshes itself while it waits; a reload is a new document, so find it again.
    arrived = page.locator("li", has_text=f"Replies are sent as {support}").get_by_text(
        "Test email arrived"
    )
    await expect(arrived).to_be_visible(timeout=ARRIVAL_TIMEOUT_MS)
    return alias


async def _sign_in(page: Page, email: str) -> None:
    await page.goto("/connections")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/connections$"))


async def test_a_new_merchant_goes_from_nothing_to_a_working_inbox(
    launch: Callable[[Path, list[str]], Up],  # noqa: F811
    tmp_path: Path,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    up = launch(tmp_path / "home", _up_ports())

    # --- laptop: the whole way, as one merchant ---------------------------------------------
    laptop = await new_page("laptop", base_url=up.base)
    await _sign_up(laptop, "ana@store.example")
    await _checklist(laptop, done=())
    await screenshot(laptop, "onboarding-checklist-laptop")
    await _verify(laptop, up, "ana@store.example")
    await screenshot(laptop, "onboarding-verified-laptop")

    await _install_second_store(laptop)
    await _checklist(laptop, done=("connect_store",))
    alias = await _alias_with_test_email(laptop, "help@ana.example", "Ana's Second Store")
    await screenshot(laptop, "onboarding-test-email-arrived-laptop")
    await laptop.goto("/playbooks")
    await _checklist(laptop, done=SET_UP_HERE)
    await screenshot(laptop, "onboarding-inbox-laptop")
    # The test email proved the path without putting anything in the inbox.
    await expect(laptop.get_by_text(alias)).to_have_count(0)

    # --- phone: a second merchant's start, then the first merchant's second alias --------
    phone = await new_page("phone", base_url=up.base)
    await _sign_up(phone, "bo@store.example")
    await _checklist(phone, done=())
    await screenshot(phone, "onboarding-checklist-phone")
    await _verify(phone, up, "bo@store.example")
    await screenshot(phone, "onboarding-verified-phone")

    ana_on_phone = await new_page("phone", base_url=up.base)
    await _sign_in(ana_on_phone, "ana@store.example")
    second = await _alias_with_test_email(ana_on_phone, "orders@ana.example", "Ana on the go")
    assert second != alias
    await screenshot(ana_on_phone, "onboarding-test-email-arrived-phone")
    # Nothing on a phone-sized page is wider than the screen.
    width = await ana_on_phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width

    page_problems.assert_none()
