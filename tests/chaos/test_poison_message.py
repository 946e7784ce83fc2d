"""One poison message — a single unbroken 1 MB word in its subject and body — among
ordinary ones, through `deskpilot api` and `deskpilot worker`: the API keeps answering
/healthz within a second throughout, the other messages reach a person (with their
suggestion) in the time they take without it, and the poison itself ends with a person,
stored whole.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.api_support import raw_email
from tests.chaos.conftest import Report
from tests.chaos.desk import Desk, eventually

ORDINARY = 10
WORD = "a" * 1_000_000


async def _time_to_person(desk: Desk, http: httpx.AsyncClient, raw: bytes) -> Waited:
    """POST the message and wait until its action waits for a person."""
    began = time.monotonic()
    delivered = await desk.deliver(http, raw, patience=0)

    async def waiting() -> dict[str, Any] | None:
        response = await http.get(f"/api/messages/{delivered.message_id}")
        assert response.status_code == 200, response.text
        view = response.json()
        action = view["action"]
        return view if action is not None and action["status"] == "PENDING" else None

    view = await eventually(waiting, 60, f"message {delivered.message_id} to wait", every=0.1)
    return Waited(time.monotonic() - began, view)


@dataclass(frozen=True)
class Waited:
    seconds: float
    view: dict[str, Any]  # GET /api/messages/{id} once it waits


def _ordinary(desk: Desk, round_: str) -> list[bytes]:
    numbers = list(desk.merchant.orders)[:ORDINARY]
    return [
        raw_email(
            sender=desk.merchant.orders[n]["email"],
            subject=f"Where is order #{n}? ({round_})",
            body=f"Hi, my order #{n} has not arrived yet. Where is it? ({round_})",
        )
        for n in numbers
    ]


async def test_a_poison_message_never_stalls_the_desk(chaos_report: Report, desk: Desk) -> None:
    await desk.start_both()
    async with desk.http() as http:
        alone = await asyncio.gather(
            *(_time_to_person(desk, http, r) for r in _ordinary(desk, "1"))
        )

        latencies: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            async with httpx.AsyncClient(base_url=desk.api_base, timeout=10) as prober:
                while not done.is_set():
                    began = time.monotonic()
                    assert (await prober.get("/healthz")).status_code == 200
                    latencies.append(time.monotonic() - began)
                    await asyncio.sleep(0.05)

        prober = asyncio.create_task(probe())
        sender = next(iter(desk.merchant.orders.values()))["email"]
        poison = raw_email(sender=sender, subject=WORD, body=f"{WORD}\n{' ' * 100_000}")
        try:
            poisoned, *beside = await asyncio.gather(
                _time_to_person(desk, http, poison),
                *(_time_to_person(desk, http, r) for r in _ordinary(desk, "2")),
            )
        finally:
            done.set()
            await prober
    slowest = max(latencies)
    alone_s, beside_s = max(w.seconds for w in alone), max(w.seconds for w in beside)
    chaos_report(
        f"chaos poison-message: a {len(poison) / 1e6:.1f} MB message beside {ORDINARY} others: "
        f"they waited for a person after {beside_s:.1f} s at most ({alone_s:.1f} s without "
        f"it), the poison after {poisoned.seconds:.1f} s; /healthz {len(latencies)} probes, "
        f"slowest {slowest:.3f} s"
    )
    assert slowest < 1.0, f"slowest /healthz: {slowest:.2f} s"
    assert beside_s <= 3 * alone_s + 2, f"{beside_s:.1f} s beside the poison, {alone_s:.1f} s alone"
    assert all(w.view["suggestion"] is not None for w in beside)
    # Stored whole; only the analysis is bounded.
    assert len(poisoned.view["message"]["subject"]) == len(WORD)
