"""GET /api/messages/{id}?wait=: a long poll, woken by the database's change notices.

Served by a real uvicorn, so the app's lifespan starts its LISTEN connection."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from deskpilot.processes import http_server
from kernel.enums import ActionStatus, ActionType
from kernel.settings import Settings
from models.action import Action
from models.conversation import Message
from models.db import create_engine, session_factory, unit_of_work
from tests.api_support import api_client, token_for
from tests.conftest import TEST_SECRET_KEY
from tests.factories import make_message, make_thread, make_user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def own_engine(own_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_database, secret_key=TEST_SECRET_KEY)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def served(own_engine: AsyncEngine) -> AsyncIterator[str]:
    port = _free_port()
    app = create_app(own_engine, None, Settings())
    async with http_server(app, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}"


async def _message(engine: AsyncEngine) -> tuple[uuid.UUID, str]:
    sessions = session_factory(engine)
    async with unit_of_work(sessions) as session:
        user = await make_user(session)
        message = await make_message(session, await make_thread(session, user))
    return message.id, await token_for(sessions, user.id)


async def _touch(engine: AsyncEngine, message_id: uuid.UUID, workflow_id: str) -> None:
    async with unit_of_work(session_factory(engine)) as session:
        await session.execute(
            update(Message).where(Message.id == message_id).values(workflow_id=workflow_id)
        )


async def test_a_waiting_client_is_answered_when_the_message_changes(
    own_engine: AsyncEngine, served: str
) -> None:
    message_id, token = await _message(own_engine)
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        first = await http.get(f"/api/messages/{message_id}")
        assert first.status_code == 200
        etag = first.headers["ETag"]
        # The same state answers the same ETag.
        assert (await http.get(f"/api/messages/{message_id}")).headers["ETag"] == etag

        started = time.monotonic()
        waiting = asyncio.create_task(
            http.get(
                f"/api/messages/{message_id}", params={"wait": 20}, headers={"If-None-Match": etag}
            )
        )
        await asyncio.sleep(0.2)  # let it reach its wait; a change before it is seen anyway
        await _touch(own_engine, message_id, "message-long-poll-test")
        changed = await waiting
        elapsed = time.monotonic() - started
    assert changed.status_code == 200
    assert changed.json()["workflow_id"] == "message-long-poll-test"
    assert changed.headers["ETag"] != etag
    assert elapsed < 10, f"woken after {elapsed:.1f} s, not by the change notice"


async def test_an_unchanged_message_answers_304_when_the_wait_ends(
    own_engine: AsyncEngine, served: str
) -> None:
    message_id, token = await _message(own_engine)
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        etag = (await http.get(f"/api/messages/{message_id}")).headers["ETag"]
        started = time.monotonic()
        unchanged = await http.get(
            f"/api/messages/{message_id}", params={"wait": 0.5}, headers={"If-None-Match": etag}
        )
        assert time.monotonic() - started >= 0.5
        assert unchanged.status_code == 304
        assert unchanged.headers["ETag"] == etag
        # A stale ETag is answered at once, with the current state.
        stale = await http.get(
            f"/api/messages/{message_id}", params={"wait": 20}, headers={"If-None-Match": '"x"'}
        )
        assert stale.status_code == 200 and stale.headers["ETag"] == etag
        too_long = await http.get(f"/api/messages/{message_id}", params={"wait": 26})
        assert too_long.status_code == 422


async def test_another_merchants_message_is_not_found_without_waiting(
    own_engine: AsyncEngine, served: str
) -> None:
    message_id, _ = await _message(own_engine)
    _, other_token = await _message(own_engine)
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {other_token}"}, timeout=30
    ) as http:
        started = time.monotonic()
        answer = await http.get(
            f"/api/messages/{message_id}", params={"wait": 20}, headers={"If-None-Match": '"x"'}
        )
    assert answer.status_code == 404
    assert time.monotonic() - started < 10


async def test_without_the_listener_a_waiter_still_sees_the_change(
    own_engine: AsyncEngine,
) -> None:
    """In-process (no lifespan, so no LISTEN): the waiter falls back to re-reading."""
    message_id, token = await _message(own_engine)
    app = create_app(own_engine, None, Settings())
    async with api_client(app, token) as http:
        etag = (await http.get(f"/api/messages/{message_id}")).headers["ETag"]
        waiting = asyncio.create_task(
            http.get(
                f"/api/messages/{message_id}", params={"wait": 20}, headers={"If-None-Match": etag}
            )
        )
        await asyncio.sleep(0.2)
        await _touch(own_engine, message_id, "message-long-poll-fallback")
        changed = await waiting
    assert changed.status_code == 200
    assert changed.json()["workflow_id"] == "message-long-poll-fallback"


async def test_a_waiter_for_a_status_is_answered_at_that_status_not_at_each_change(
    own_engine: AsyncEngine, served: str
) -> None:
    message_id, token = await _message(own_engine)
    sessions = session_factory(own_engine)
    async with unit_of_work(sessions) as session:
        message = await session.get(Message, message_id)
        assert message is not None
        action = Action(user_id=message.user_id, message_id=message_id, type=ActionType.REFUND)
        session.add(action)
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        # The action is PENDING: a client waiting for it is answered at once, no ETag needed.
        pending = await http.get(
            f"/api/messages/{message_id}", params={"wait": 20, "until": "PENDING"}
        )
        assert pending.status_code == 200 and pending.json()["action"]["status"] == "PENDING"
        etag = pending.headers["ETag"]
        waiting = asyncio.create_task(
            http.get(
                f"/api/messages/{message_id}",
                params={"wait": 20, "until": ["EXECUTED", "FAILED"]},
                headers={"If-None-Match": etag},
            )
        )
        await _touch(own_engine, message_id, "changed-but-still-pending")
        async with unit_of_work(sessions) as session:
            await session.execute(
                update(Action).where(Action.id == action.id).values(status=ActionStatus.EXECUTED)
            )
        answered = await waiting
    # Answered by the status, so after both changes: the first alone did not end the wait.
    assert answered.status_code == 200
    body = answered.json()
    assert body["action"]["status"] == "EXECUTED"
    assert body["workflow_id"] == "changed-but-still-pending"


async def test_a_status_wait_that_ends_unmatched_answers_what_changed(
    own_engine: AsyncEngine, served: str
) -> None:
    message_id, token = await _message(own_engine)
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        first = await http.get(f"/api/messages/{message_id}")
        await _touch(own_engine, message_id, "changed-without-an-action")
        # No action yet: the status never matches, so the wait runs out and the answer is
        # the changed message (not a 304, since the client's ETag is stale).
        answer = await http.get(
            f"/api/messages/{message_id}",
            params={"wait": 0.5, "until": "EXECUTED"},
            headers={"If-None-Match": first.headers["ETag"]},
        )
        assert answer.status_code == 200
        assert answer.json()["workflow_id"] == "changed-without-an-action"
        unchanged = await http.get(
            f"/api/messages/{message_id}",
            params={"wait": 0.5, "until": "EXECUTED"},
            headers={"If-None-Match": answer.headers["ETag"]},
        )
        assert unchanged.status_code == 304
        bad = await http.get(f"/api/messages/{message_id}", params={"until": "DONE"})
        assert bad.status_code == 422
