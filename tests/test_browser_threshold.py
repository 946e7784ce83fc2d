"""The proposed threshold in a real Chromium: "Use" fills the rule builder's threshold field
and stores nothing; saving is what changes the playbook. The real app over loopback."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from playwright.async_api import expect
from sqlalchemy import select

from api.app import create_app
from kernel.enums import ActionType
from kernel.settings import Settings
from models.db import unit_of_work
from models.playbook import Playbook
from models.user import set_password
from services.accounts import create_user
from tests.decision_history import add_history, entries

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from tests.browser_support import NewPage, PageProblems, ServeApp

pytest_plugins = ("tests.browser_support",)

PASSWORD = "correct horse battery staple"


async def _stored(sessions: async_sessionmaker[AsyncSession], playbook_id: uuid.UUID) -> float:
    async with sessions() as session:
        playbook = await session.get(Playbook, playbook_id)
        assert playbook is not None
        return playbook.confidence_threshold


async def test_use_fills_the_field_and_only_saving_stores_it(
    own_sessions: async_sessionmaker[AsyncSession],
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
) -> None:
    email = f"th-{uuid.uuid4().hex[:6]}@store.test"
    async with unit_of_work(own_sessions) as session:
        user = await create_user(session, email, "Owner")
        await set_password(session, user.id, PASSWORD)
        playbook_id = (
            await session.execute(
                select(Playbook.id).where(
                    Playbook.user_id == user.id, Playbook.template_key == "refund-damaged-item"
                )
            )
        ).scalar_one()
        # 25 refunds approved as suggested at 0.93 and 0.87, two rejected at 0.6.
        history = (
            entries(ActionType.REFUND, 0.6, rejected=2)
            + entries(ActionType.REFUND, 0.93, approved=15)
            + entries(ActionType.REFUND, 0.87, approved=10)
        )
        await add_history(session, user.id, history)
    assert await _stored(own_sessions, playbook_id) == 0.9

    settings = Settings().model_copy(update={"public_url": "http://127.0.0.1"})
    async with served_app(create_app(own_sessions.kw["bind"], None, settings)) as base_url:
        page = await new_page(base_url=base_url)
        path = f"/playbooks/{playbook_id}"
        await page.goto(path)
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(re.escape(path) + "$"))

        proposal = page.locator("#proposal-REFUND")
        await expect(proposal).to_contain_text("Proposed: 0.87")
        await expect(proposal).to_contain_text("the 25 at or above it were 100.0% approved")
        field = page.locator("#b-threshold")
        await expect(field).to_have_value("0.9")
        await proposal.get_by_role("button", name="Use 0.87").click()
        await expect(field).to_have_value("0.87")
        await expect(field).to_be_focused()
        assert await _stored(own_sessions, playbook_id) == 0.9  # filled, not saved

        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Saved.")
        assert await _stored(own_sessions, playbook_id) == 0.87
        await page.close()
    page_problems.assert_none()
