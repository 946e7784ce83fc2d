"""1,000 concurrent POSTs of 100 distinct messages, ten copies of each, to the real HTTP
ingest (`deskpilot api`): exactly 100 messages, 100 threads and 100 workflows, and every
copy answered with its message's ids.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from email.utils import make_msgid

from sqlalchemy import func, select

from models import Thread
from services.usage import get_usage_summary
from tests.api_support import raw_email
from tests.chaos.conftest import Report
from tests.chaos.desk import Delivered, Desk

DISTINCT = 100
COPIES = 10


def _room_for_sockets(wanted: int) -> None:
    """Both ends of every connection are open at once: raise the soft limit on open files
    (the API inherits it) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def test_duplicate_deliveries_store_one_message_and_one_workflow_each(
    chaos_report: Report, desk: Desk
) -> None:
    _room_for_sockets(4 * DISTINCT * COPIES)
    await desk.start_api()  # no worker: the workflows only have to exist
    numbers = list(desk.merchant.orders)
    raws = [
        raw_email(
            sender=desk.merchant.orders[numbers[i % len(numbers)]]["email"],
            subject=f"Question {i} about order #{numbers[i % len(numbers)]}",
            body=f"Hello, where is my order #{numbers[i % len(numbers)]}? (question {i})",
            message_id=make_msgid(domain="customer.test"),
        )
        for i in range(DISTINCT)
    ]
    posts = [raw for raw in raws for _ in range(COPIES)]
    async with desk.http(connections=len(posts)) as http:
        began = time.monotonic()
        answers: list[Delivered] = await asyncio.gather(
            # As a mail server delivers: an answer of 503, or none in time, is tried again.
            *(desk.deliver(http, raw, patience=120) for raw in posts)
        )
        took = time.monotonic() - began

    per_message = Counter((a.message_id, a.workflow_id) for a in answers)
    stored = await desk.inbound_messages()
    async with desk.sessions() as session:
        threads = await session.scalar(
            select(func.count()).select_from(Thread).where(Thread.user_id == desk.merchant.user_id)
        )
        received = (await get_usage_summary(session, desk.merchant.user_id)).usage.emails_received
    workflows = await desk.workflows_listed("", DISTINCT)
    retried = sum(1 for a in answers if a.attempts > 1)
    refused = Counter(status for a in answers for status in a.refusals)
    chaos_report(
        f"chaos ingest-storm: {len(posts)} concurrent POSTs ({DISTINCT} messages x {COPIES}) "
        f"answered in {took:.1f} s ({retried} tried again, answers before the 202: "
        f"{dict(refused)}); 202 for {len(answers)}, messages {stored}, threads "
        f"{threads}, counted received {received}, workflows {workflows}"
    )
    # Busy is said with a 503 (Retry-After), never a 500; a copy sent again is the same message.
    assert set(refused) <= {503}, refused
    ids_of: dict[bytes, set[tuple[object, str]]] = {}
    for raw, answer in zip(posts, answers, strict=True):
        ids_of.setdefault(raw, set()).add((answer.message_id, answer.workflow_id))
    assert [len(ids) for ids in ids_of.values()] == [1] * DISTINCT  # a copy gets its ids
    assert len(per_message) == DISTINCT and set(per_message.values()) == {COPIES}
    assert stored == DISTINCT and threads == DISTINCT and received == DISTINCT
    assert workflows == DISTINCT
