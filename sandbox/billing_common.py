"""What the billing stand-ins (Razorpay, Paddle) share: signed webhook delivery in the
background, one-month billing periods, and the little checkout page.

Events are sent one after another in the order they were queued (a checkout's
"shuffled" delivery queues them out of order on purpose); a delivery that does not get a
2xx is retried a few times with the same event id, as the vendors do. Each attempt is
signed when it is sent, so a vendor whose signature carries a timestamp (Paddle) signs a
retry afresh. Tests `await dispatcher.settle()` to see everything queued land.
"""

from __future__ import annotations

import asyncio
import calendar
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

Outcome = Literal["paid", "failed"]
DeliveryMode = Literal["ordered", "duplicated", "shuffled"]
DELIVERY_MODES: tuple[str, ...] = ("ordered", "duplicated", "shuffled")


@dataclass
class Delivery:
    """One event's delivery to the webhook URL, as the receiver answered it."""

    event_type: str
    event_id: str
    url: str
    payload: dict[str, Any]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    error: str | None = None
    attempts: int = 0


# Given the raw body about to be sent, the vendor's headers for it (signature included).
Signer = Callable[[Delivery, bytes], dict[str, str]]


@dataclass
class BillingDispatcher:
    """Sends queued events in order from the running event loop."""

    sign: Signer
    attempts: int = 3  # the vendors retry for hours; a sandbox gives up sooner
    backoff: float = 0.2
    timeout: float = 5.0
    records: list[Delivery] = field(default_factory=list)
    _queue: list[Delivery] = field(default_factory=list)
    _worker: asyncio.Task[None] | None = None
    _client: httpx.AsyncClient | None = None

    @property
    def deliveries(self) -> list[tuple[str, int | None]]:
        """(event_type, last HTTP status) of every delivery started, in sending order."""
        return [(d.event_type, d.status) for d in self.records]

    def queue(self, deliveries: list[Delivery], mode: DeliveryMode = "ordered") -> None:
        """Queue one action's events in the vendor's order, or duplicated, or reversed."""
        if mode == "duplicated":
            deliveries = [d for one in deliveries for d in (one, _copy(one))]
        elif mode == "shuffled":
            # Deterministic "out of order": the last event arrives first.
            deliveries = list(reversed(deliveries))
        elif mode != "ordered":
            raise ValueError(f"delivery must be one of {DELIVERY_MODES}")
        self._queue.extend(deliveries)
        self.pump()

    def pump(self) -> None:
        """Start the sending task if there is work; a no-op outside an event loop."""
        if not self._queue or (self._worker is not None and not self._worker.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # settle() picks the queue up later
        self._worker = loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            await self._deliver(self._queue.pop(0))

    async def _deliver(self, delivery: Delivery) -> None:
        self.records.append(delivery)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        for attempt in range(1, self.attempts + 1):
            delivery.attempts = attempt
            delivery.body = body
            delivery.headers = {"Content-Type": "application/json", **self.sign(delivery, body)}
            try:
                answer = await self._client.post(
                    delivery.url, content=body, headers=delivery.headers
                )
                delivery.status, delivery.error = answer.status_code, None
                if answer.is_success:
                    return
            except httpx.HTTPError as exc:
                delivery.status, delivery.error = None, f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * attempt)

    async def settle(self) -> None:
        """Wait until everything queued so far has been delivered (or given up on)."""
        self.pump()
        while self._worker is not None and not self._worker.done():
            await asyncio.gather(self._worker, return_exceptions=True)
            self.pump()

    async def aclose(self) -> None:
        await self.settle()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _copy(delivery: Delivery) -> Delivery:
    return Delivery(delivery.event_type, delivery.event_id, delivery.url, delivery.payload)


def add_month(moment: datetime) -> datetime:
    """The same day next month, clamped to the month's last day (Jan 31 -> Feb 28/29)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def checkout_page(*, vendor: str, title: str, summary: str, return_url: str | None) -> str:
    """A page with Pay and Fail buttons; each posts the form back to this same URL, and
    the answer (303) takes the browser to the return URL."""
    hidden = (
        f'<input type="hidden" name="return_url" value="{html.escape(return_url)}">'
        if return_url
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(vendor)} checkout (sandbox)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>{html.escape(title)}</h1>
<p>{html.escape(summary)}</p>
<p><small>{html.escape(vendor)} sandbox: no money moves.</small></p>
<form method="post">{hidden}
<button type="submit" name="outcome" value="paid">Pay</button>
<button type="submit" name="outcome" value="failed">Fail payment</button>
</form>
</body></html>
"""


def result_page(text: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Checkout</title>'
        f"</head><body><p>{html.escape(text)}</p></body></html>"
    )


@dataclass(frozen=True)
class CheckoutForm:
    """What a checkout POST asked for: JSON from a test, a form from the page's buttons."""

    outcome: Outcome
    delivery: DeliveryMode
    return_url: str | None
    from_page: bool


async def read_checkout(request: Request) -> CheckoutForm | None:
    """The checkout POST's fields, or None when they are not valid."""
    raw = await request.body()
    from_page = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    try:
        fields: Any = dict(parse_qsl(raw.decode())) if from_page else json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(fields, dict):
        return None
    outcome, delivery = fields.get("outcome"), fields.get("delivery", "ordered")
    return_url = fields.get("return_url") or request.query_params.get("return_url")
    if outcome not in ("paid", "failed") or delivery not in DELIVERY_MODES:
        return None
    if return_url is not None and not isinstance(return_url, str):
        return None
    return CheckoutForm(outcome, delivery, return_url, from_page)


def checkout_answer(form: CheckoutForm, redirect: str | None, text: str) -> Response:
    """JSON {"redirect"} for a test; for the page's buttons, a 303 to the return URL (or a
    page saying what happened)."""
    if not form.from_page:
        return JSONResponse({"redirect": redirect})
    if redirect:
        return RedirectResponse(redirect, status_code=303)
    return HTMLResponse(result_page(text))


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` added to its query string."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))
