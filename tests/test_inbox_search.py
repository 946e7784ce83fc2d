"""The inbox search's stored words (threads.search_vector) and its two ways to a page.

A search tests the newest threads one by one and falls back to the GIN index on the
words when they do not fill the page; both must give the same pages as a plain
filter over every thread would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Message, Thread
from models.db import unit_of_work
from models.inbox_listing import Cursor, InboxView, list_threads
from tests.test_threads_api import T0, Owner, _ids, add_thread, client, owners  # noqa: F401


async def _words(sessions: async_sessionmaker[AsyncSession], thread_id: uuid.UUID) -> set[str]:
    async with sessions() as session:
        vector = (
            await session.execute(
                text("SELECT tsvector_to_array(search_vector) FROM threads WHERE id = :id"),
                {"id": thread_id},
            )
        ).scalar_one()
    return set(vector)


async def test_a_threads_words_follow_its_messages(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],  # noqa: F811
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    me = owners[0]
    async with unit_of_work(own_sessions) as session:
        thread = await add_thread(
            session, me, at=T0, subject="Broken mug", body="It arrived DAMAGED, sadly."
        )
    words = await _words(own_sessions, thread.id)
    assert {"broken", "mug", "arrived", "damaged", "reply", "on"} <= words

    # Every word of the query, even when they are in different messages of the thread.
    assert await _ids(client, q="mug damaged") == [str(thread.id)]
    assert await _ids(client, q="damaged reply") == [str(thread.id)]
    assert await _ids(client, q="damaged kayak") == []

    async with unit_of_work(own_sessions) as session:
        inbound = (
            await session.execute(
                update(Message)
                .where(Message.thread_id == thread.id, Message.body_text.like("%DAMAGED%"))
                .values(body_text="[redacted]")
                .returning(Message.id)
            )
        ).scalar_one()
    # A redacted message's words no longer find the thread.
    assert "damaged" not in await _words(own_sessions, thread.id)
    assert await _ids(client, q="damaged") == []

    async with unit_of_work(own_sessions) as session:
        await session.execute(delete(Message).where(Message.id != inbound))
    words = await _words(own_sessions, thread.id)
    assert "reply" not in words and {"broken", "mug", "redacted"} <= words

    async with unit_of_work(own_sessions) as session:
        await session.execute(
            update(Thread).where(Thread.id == thread.id).values(subject="Cracked cup")
        )
    assert await _ids(client, q="cracked") == [str(thread.id)]
    assert await _ids(client, q="mug") == []


async def test_walking_the_newest_threads_gives_the_pages_of_the_whole_inbox(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],  # noqa: F811
) -> None:
    me = owners[0]
    made: list[Thread] = []
    async with unit_of_work(own_sessions) as session:
        for k in range(24):
            # A word in every third thread; ties on the time split by id.
            body = "I want a refund." if k % 3 == 0 else "Where is it?"
            made.append(await add_thread(session, me, at=T0 + timedelta(minutes=k // 2), body=body))
    newest_first = sorted(made, key=lambda t: (t.last_message_at, t.id), reverse=True)
    expected = [t.id for k, t in enumerate(newest_first) if t in made[::3]]

    async def pages(window: int, limit: int) -> list[uuid.UUID]:
        seen: list[uuid.UUID] = []
        cursor: Cursor | None = None
        while True:
            async with own_sessions() as session:
                page = await list_threads(
                    session,
                    me.user.id,
                    view=InboxView.all,
                    q="refund",
                    cursor=cursor,
                    limit=limit,
                    window=window,
                )
            seen += [t.id for t in page.threads]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    # A window the page fits in, one it does not (the index finishes it), and in between.
    for window in (1, 2, 5, 9, 100):
        for limit in (1, 3, 8):
            assert await pages(window, limit) == expected, (window, limit)
