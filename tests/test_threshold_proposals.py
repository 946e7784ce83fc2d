"""Proposed thresholds over a stored history (services.threshold_proposals): the last N
person decisions per action type, automatic and system decisions left out, another
merchant's history never counted; the JSON route, and the rule builder showing the
proposal beside the threshold field without changing any stored threshold. Real
PostgreSQL; the history is written through the models (tests/decision_history.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from kernel.enums import ActionType
from kernel.settings import Settings
from models.db import unit_of_work
from models.playbook import Playbook
from models.user import set_password
from services.accounts import create_user
from services.threshold_proposals import threshold_proposals
from tests.api_support import api_client, token_for
from tests.decision_history import START, Entry, add_history, entries

PASSWORD = "correct horse battery staple"
STORED = 0.75  # A's refund playbook's threshold in the HTTP tests
REFUND, CANCEL, INFO = ActionType.REFUND, ActionType.CANCEL, ActionType.INFO_REQUEST

REFUND_SUMMARY = (
    "Proposed: 0.9 — of the last 200 refund decisions, the 160 at or above it were 99.3% "
    "approved unedited (at least 97.2% with 95% confidence)."
)


def alpha_history(playbook_id: uuid.UUID) -> list[Entry]:
    """Oldest first: 465 decisions, of which the proposal may read only the last 200
    refund decisions by a person, and the info-request and cancel ones."""
    return [
        # Older than the last 200: if read, they would sink every refund threshold.
        *entries(REFUND, 0.99, rejected=50),
        *entries(REFUND, 0.8, approved=30, rejected=10),
        *entries(INFO, 0.7, approved=35, rejected=5),
        *entries(REFUND, 0.9, approved=59, edited=1),  # an edit is not "as suggested"
        *entries(CANCEL, 0.95, approved=12),
        # The inbox sends the draft back with every approval: unchanged, it is no edit.
        *entries(REFUND, 0.95, approved=55, resent=45),
        # Not a person's: a playbook's own approvals, expiries and supersessions.
        *entries(REFUND, 0.5, approved=60, by=f"playbook:{playbook_id}"),
        *entries(REFUND, 0.99, rejected=20, by="system"),
        *entries(INFO, 0.2, rejected=38, by="system"),
        *entries(INFO, 0.3, approved=40, by=f"playbook:{playbook_id}"),
    ]


def bravo_history() -> list[Entry]:
    # Everything approved at a low confidence: A's proposal would drop if it counted.
    return entries(REFUND, 0.3, approved=250) + entries(INFO, 0.3, approved=30)


def settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DESKPILOT_SECRET_KEY="s" * 48, DESKPILOT_PUBLIC_URL="http://api.test"
    )


def by_type(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["action_type"]: p for p in found["proposals"]}


async def _refund_playbook(session: AsyncSession, user_id: uuid.UUID) -> Playbook:
    return (
        await session.execute(
            select(Playbook).where(
                Playbook.user_id == user_id, Playbook.template_key == "refund-damaged-item"
            )
        )
    ).scalar_one()


async def test_the_proposal_reads_the_last_person_decisions_only(session: AsyncSession) -> None:
    a = await create_user(session, f"alpha-{uuid.uuid4().hex[:6]}@store.example", "alpha")
    b = await create_user(session, f"bravo-{uuid.uuid4().hex[:6]}@store.example", "bravo")
    playbook = await _refund_playbook(session, a.id)
    await add_history(session, a.id, alpha_history(playbook.id))
    # B's decisions are the newest of all, interleaved in time with none of A's.
    await add_history(session, b.id, bravo_history(), start=START + timedelta(days=30))

    found = by_type((await threshold_proposals(session, a.id)).model_dump(mode="json"))
    assert list(found) == [t.value for t in ActionType]
    assert found["REFUND"] == {
        "action_type": "REFUND",
        "status": "proposed",
        "decisions": 200,
        "proposed_threshold": 0.9,
        "rests_on": 160,
        "approved_unedited": 159,
        "rate": 0.99375,
        "lower_bound": pytest.approx(0.97247, abs=1e-5),
        "closest": None,
        "summary": REFUND_SUMMARY,
    }
    assert found["CANCEL"]["status"] == "not_enough_history"
    assert found["CANCEL"]["decisions"] == 12
    assert found["CANCEL"]["summary"] == (
        "Not enough history yet (12 cancel decisions by a person; 20 needed)."
    )
    assert found["INFO_REQUEST"]["status"] == "not_reached"
    assert found["INFO_REQUEST"]["decisions"] == 40  # 35 of 40 at 0.7: 87.5%
    assert found["INFO_REQUEST"]["proposed_threshold"] is None
    assert found["INFO_REQUEST"]["closest"] == {
        "threshold": 0.7,
        "rests_on": 40,
        "approved_unedited": 35,
        "rate": 0.875,
    }
    assert found["INFO_REQUEST"]["summary"] == (
        "No proposal yet: of the last 40 info request decisions, the closest is 0.7, where "
        "the 40 at or above it were 87.5% approved unedited (98% needed)."
    )
    assert found["REFUND"]["closest"] is None
    for kind in ("REPLACE_ITEM", "ADDRESS_CHANGE", "NONE"):
        assert (found[kind]["status"], found[kind]["decisions"]) == ("not_enough_history", 0)

    # N is the caller's: over the last 100 refund decisions (all at 0.95, all approved).
    last_100 = by_type((await threshold_proposals(session, a.id, last=100)).model_dump())
    assert last_100["REFUND"]["proposed_threshold"] == 0.95
    assert last_100["REFUND"]["rests_on"] == 100
    # Over every one of them (250 by a person), the old rejections sink it.
    everything = by_type((await threshold_proposals(session, a.id, last=1000)).model_dump())
    assert everything["REFUND"]["status"] == "not_reached"
    assert everything["REFUND"]["decisions"] == 250
    # Nearest at 0.9: 159 of the 210 at or above it (at 0.8, 189 of 250 is a shade lower).
    closest = everything["REFUND"]["closest"]
    assert (closest["threshold"], closest["rests_on"], closest["approved_unedited"]) == (
        0.9,
        210,
        159,
    )

    # B's own history is B's alone.
    theirs = by_type((await threshold_proposals(session, b.id)).model_dump())
    assert (theirs["REFUND"]["proposed_threshold"], theirs["REFUND"]["rests_on"]) == (0.3, 200)
    assert (theirs["INFO_REQUEST"]["proposed_threshold"], theirs["CANCEL"]["decisions"]) == (
        0.3,
        0,
    )


async def test_the_proposals_take_one_query(session: AsyncSession) -> None:
    a = await create_user(session, f"alpha-{uuid.uuid4().hex[:6]}@store.example", "alpha")
    await add_history(
        session, a.id, entries(REFUND, 0.9, approved=30) + entries(CANCEL, 0.8, approved=30)
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = session.bind.engine  # type: ignore[union-attr]
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        found = await threshold_proposals(session, a.id)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert [p.proposed_threshold for p in found.proposals][:2] == [0.9, 0.8]
    assert len(statements) == 1, statements


# --- over HTTP -------------------------------------------------------------------------------


@dataclass
class World:
    app: FastAPI
    sessions: async_sessionmaker[AsyncSession]
    a: uuid.UUID
    b: uuid.UUID
    a_email: str
    web: httpx.AsyncClient  # A's signed-in browser
    api: httpx.AsyncClient  # A's API token
    b_api: httpx.AsyncClient
    playbook_id: uuid.UUID  # A's refund playbook

    async def stored_thresholds(self) -> list[tuple[uuid.UUID, float]]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Playbook.id, Playbook.confidence_threshold).order_by(Playbook.id)
            )
            return [tuple(row) for row in rows.all()]


@pytest.fixture
async def world(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    app = create_app(own_sessions.kw["bind"], None, settings())
    emails = [f"{n}-{uuid.uuid4().hex[:6]}@store.example" for n in ("alpha", "bravo")]
    async with unit_of_work(own_sessions) as session:
        a = await create_user(session, emails[0], "alpha")
        b = await create_user(session, emails[1], "bravo")
        await set_password(session, a.id, PASSWORD)
        playbook = await _refund_playbook(session, a.id)
        playbook.confidence_threshold = STORED  # not the proposal, so the page shows both
        await add_history(session, a.id, alpha_history(playbook.id))
        await add_history(session, b.id, bravo_history(), start=START + timedelta(days=30))
        a_id, b_id, playbook_id = a.id, b.id, playbook.id
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as web,
        api_client(app, await token_for(own_sessions, a_id)) as api,
        api_client(app, await token_for(own_sessions, b_id)) as b_api,
    ):
        page = await web.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert csrf
        signed_in = await web.post(
            "/login", data={"email": emails[0], "password": PASSWORD, "csrf": csrf.group(1)}
        )
        assert signed_in.status_code == 303, signed_in.text
        yield World(app, own_sessions, a_id, b_id, emails[0], web, api, b_api, playbook_id)


async def test_the_json_route_answers_per_action_type(world: World) -> None:
    before = await world.stored_thresholds()
    reply = await world.api.get("/api/playbooks/thresholds")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["last"], body["target"], body["min_support"]) == (200, 0.98, 20)
    refund = by_type(body)["REFUND"]
    assert (refund["proposed_threshold"], refund["rests_on"], refund["decisions"]) == (
        0.9,
        160,
        200,
    )
    assert refund["summary"] == REFUND_SUMMARY
    assert (
        by_type((await world.api.get("/api/playbooks/thresholds?last=100")).json())["REFUND"][
            "proposed_threshold"
        ]
        == 0.95
    )
    # B sees B's history only.
    theirs = by_type((await world.b_api.get("/api/playbooks/thresholds")).json())
    assert (theirs["REFUND"]["proposed_threshold"], theirs["REFUND"]["rests_on"]) == (0.3, 200)
    # Bad input is a 422, and no one is answered without credentials.
    assert (await world.api.get("/api/playbooks/thresholds?last=0")).status_code == 422
    assert (await world.api.get("/api/playbooks/thresholds?last=1001")).status_code == 422
    async with api_client(world.app) as anonymous:
        assert (await anonymous.get("/api/playbooks/thresholds")).status_code == 401
    # It only proposes.
    assert await world.stored_thresholds() == before


async def test_the_rule_builder_shows_the_proposal_beside_the_threshold(world: World) -> None:
    before = await world.stored_thresholds()
    page = await world.web.get(f"/playbooks/{world.playbook_id}")
    assert page.status_code == 200, page.text
    text = page.text
    field = text.index('id="b-threshold"')
    proposals = text.index('id="threshold-proposals"')
    # Right after the threshold field, before the next control of the fieldset.
    assert field < proposals < text.index('id="b-requires-approval"')
    assert f'value="{STORED}"' in text[field : field + 200]  # the stored one, as it is
    item = re.search(r'<li id="proposal-REFUND"[^>]*>(.*?)</li>', text, re.S)
    assert item, text[proposals : proposals + 2000]
    assert REFUND_SUMMARY in item.group(1)
    assert 'data-use-threshold="0.9"' in item.group(1)
    # Only the type this playbook approves.
    assert 'id="proposal-CANCEL"' not in text
    assert "/static/threshold_proposal.js" in text
    # Viewing the page (twice) changed no stored threshold.
    await world.web.get(f"/playbooks/{world.playbook_id}")
    assert await world.stored_thresholds() == before


async def test_the_rule_builder_says_when_history_is_short(world: World) -> None:
    async with world.sessions() as session:
        cancel = (
            await session.execute(
                select(Playbook.id).where(
                    Playbook.user_id == world.a, Playbook.template_key == "cancel-unfulfilled-order"
                )
            )
        ).scalar_one()
    text = (await world.web.get(f"/playbooks/{cancel}")).text
    item = re.search(r'<li id="proposal-CANCEL" data-status="([^"]+)">(.*?)</li>', text, re.S)
    assert item, text
    assert item.group(1) == "not_enough_history"
    assert "Not enough history yet (12 cancel decisions by a person; 20 needed)." in item.group(2)
    assert "data-use-threshold" not in item.group(2)


async def test_a_playbook_that_approves_nothing_shows_no_proposal(world: World) -> None:
    async with unit_of_work(world.sessions) as session:
        playbook = await _refund_playbook(session, world.a)
        playbook.actions = [{"version": 2, "type": "escalate", "reason": "a person looks"}]
    text = (await world.web.get(f"/playbooks/{world.playbook_id}")).text
    assert 'id="b-threshold"' in text
    assert 'id="threshold-proposals"' not in text
