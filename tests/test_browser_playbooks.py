"""The playbook page in a real Chromium, at laptop (1280x800) and phone (390x844) widths:
build a rule with the builder (the operators and the value input follow the field, a step's
own controls follow its kind), save it, see an error beside its field, and test the
playbook on a thread. The real app over loopback, without Temporal (nothing here runs one).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from api.app import create_app
from kernel.enums import MessageDirection
from kernel.settings import Settings
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.playbook import Playbook
from models.user import set_password
from services.accounts import create_user

if TYPE_CHECKING:
    from playwright.async_api import Page
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from tests.browser_support import NewPage, PageProblems, Screenshot, ServeApp

pytest_plugins = ("tests.browser_support",)

PASSWORD = "correct horse battery staple"
SIZES = {"laptop": (1280, 800), "phone": (390, 844)}


async def _owner_with_message(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[str, uuid.UUID, uuid.UUID]:
    """A merchant (with the default playbooks) and one customer message: the merchant's
    email, the damaged-item playbook's id and the message's id."""
    email = f"pb-{uuid.uuid4().hex[:6]}@store.test"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, "Owner")
        await set_password(session, user.id, PASSWORD)
        thread = Thread(
            user_id=user.id,
            customer_email="ava@example.com",
            subject="Broken mug",
            last_message_at=datetime.now(UTC),
        )
        session.add(thread)
        await session.flush()
        message = Message(
            user_id=user.id,
            thread_id=thread.id,
            direction=MessageDirection.INBOUND,
            message_id=f"<{uuid.uuid4().hex}@mail.example.com>",
            from_address="ava@example.com",
            subject="Broken mug",
            body_text="My mug arrived broken, please help.",
            sent_at=datetime.now(UTC),
        )
        session.add(message)
        await session.flush()
        playbook_id = (
            await session.execute(
                select(Playbook.id).where(
                    Playbook.user_id == user.id, Playbook.template_key == "refund-damaged-item"
                )
            )
        ).scalar_one()
        return email, playbook_id, message.id


async def _fits(page: Page) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


@pytest.mark.parametrize("size", ["laptop", "phone"])
async def test_build_save_see_an_error_and_test_on_a_thread(
    size: str,
    own_sessions: async_sessionmaker[AsyncSession],
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    from tests.browser_support import PHONE, Device  # loaded as a plugin by now

    width, height = SIZES[size]
    device = (
        Device(size, width, height)
        if size == "laptop"
        else Device(size, width, height, PHONE.device_scale_factor, True, True)
    )
    email, playbook_id, message_id = await _owner_with_message(own_sessions)
    settings = Settings().model_copy(update={"public_url": "http://127.0.0.1"})
    async with served_app(create_app(own_sessions.kw["bind"], None, settings)) as base_url:
        page = await new_page(device, base_url=base_url)
        path = f"/playbooks/{playbook_id}"
        await page.goto(path)
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(re.escape(path) + "$"))
        await _fits(page)
        await screenshot(page, f"playbook-{size}")

        # --- WHEN: the thread.idle controls show only for that event.
        after = page.locator("#trigger-after")
        await expect(after).to_be_hidden()
        await page.select_option("#trigger-event", "thread.idle")
        await expect(after).to_be_visible()
        await page.select_option("#trigger-event", "message.received")
        await expect(after).to_be_hidden()

        # --- IF: a new condition (the button posts the form back one block longer).
        blocks = page.locator("#if .block")
        before = await blocks.count()
        await page.get_by_role("button", name="Add a condition").click()
        await expect(blocks).to_have_count(before + 1)
        row = f"#c{before}-0"
        await page.select_option(f"{row}-field", "order.total_amount")
        # A number field: its operators and a number input.
        await expect(page.locator(f"{row}-operator option[value=lt]")).to_have_count(1)
        await expect(page.locator(f"{row}-operator option[value=contains]")).to_have_count(0)
        await expect(page.locator(f"{row}-value")).to_have_attribute("type", "number")
        await page.select_option(f"{row}-field", "message.wants_human")
        await expect(page.locator(f"select{row}-value option")).to_have_count(2)  # yes / no
        await page.select_option(f"{row}-field", "message.text")
        await page.select_option(f"{row}-operator", "contains")
        await page.fill(f"{row}-value", "broken")

        # --- THEN: a step whose kind shows its own controls.
        steps = page.locator("#then .action")
        count = await steps.count()
        await page.get_by_role("button", name="Add a step").click()
        await expect(steps).to_have_count(count + 1)
        step = f"#a{count}"
        await page.select_option(f"{step}-type", "tag_thread")
        await expect(page.locator(f"{step}-tags")).to_be_visible()
        await expect(page.locator(f"{step}-reason")).to_be_hidden()
        await page.fill(f"{step}-tags", "checked, mugs")
        await page.fill("#b-priority", "7")
        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Saved.")
        await expect(page.locator(f"{row}-value")).to_have_value("broken")
        await expect(page.locator(f"{step}-tags")).to_have_value("checked, mugs")
        async with own_sessions() as session:
            stored = await session.get(Playbook, playbook_id)
            assert stored is not None and stored.priority == 7
            assert {"version": 2, "field": "message.text", "operator": "contains",
                    "value": "broken"} in stored.conditions  # fmt: skip
            assert stored.actions[-1] == {
                "version": 2,
                "type": "tag_thread",
                "tags": ["checked", "mugs"],
            }

        # --- an error beside its field, what was typed kept.
        await page.fill("#trigger-languages", "english")
        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.locator("#error-trigger")).to_contain_text("languages")
        await expect(page.locator("#trigger-event")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#trigger-languages")).to_have_value("english")
        await _fits(page)
        await screenshot(page, f"playbook-error-{size}")
        await page.fill("#trigger-languages", "")
        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Saved.")

        # --- test on a thread: each condition with the value it saw.
        await page.select_option("#test-message", str(message_id))
        await page.get_by_role("button", name="Run the test").click()
        result = page.locator("#test-result")
        await expect(result).to_be_visible()
        matched = result.locator("tr", has_text="message.text")
        await expect(matched).to_contain_text("My mug arrived broken, please help.")
        await expect(matched).to_contain_text("yes")
        await expect(result.locator("ol.test-actions")).to_contain_text("checked, mugs")
        await _fits(page)
        await screenshot(page, f"playbook-test-{size}")
        await page.close()
    page_problems.assert_none(allow_status=[422])
