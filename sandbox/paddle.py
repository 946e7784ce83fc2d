"""An in-memory stand-in for Paddle Billing: the REST API the official paddle-python-sdk
(`paddle_billing`) calls, a checkout page, and signed webhooks.

The SDK joins its request paths, which start with "/", onto its environment's base URL
with `urljoin`, which drops the base URL's own path: pointed at `{sandbox}/paddle` it asks
for `{sandbox}/transactions`. So the API is served both under `/paddle` and at the root
(`api_router()`); the checkout pages and test controls live under `/paddle` only.

API: `POST /transactions` (items `[{price_id, quantity}]`, `custom_data`, `customer_id` or
`customer.email`) -> `txn_…` `ready` with `checkout.url` at the sandbox's checkout page;
`GET /transactions/{id}`; `GET /subscriptions/{id}`; `PATCH /subscriptions/{id}` (items
need `proration_billing_mode`; the new items apply at once whatever the mode, as on Paddle,
only the billing differs; `{"scheduled_change": null}` drops a scheduled cancel or pause);
`POST /subscriptions/{id}/cancel|pause|resume` (`effective_from`: `next_billing_period`
schedules the change for the period's end, `immediately` applies it). Bearer API key; a
wrong key is Paddle's 403 `invalid_token`. Responses are `{"data", "meta": {"request_id"}}`,
errors `{"error": {"type", "code", "detail", "documentation_url"[, "errors"]}, "meta"}`.

Checkout at `/paddle/checkout/{txn_id}`: GET shows Pay and Fail buttons; POST
`{"outcome": "paid"|"failed", "delivery": "ordered"|"duplicated"|"shuffled", "return_url"?}`.
Paid, in this order (Paddle's own for a new subscription, less the customer, address and
intermediate transaction.updated events): `transaction.paid`, `subscription.created`,
`subscription.activated`, `transaction.completed`; the transaction is completed and a
`sub_…` subscription is active with the transaction's custom_data, a one-month
`current_billing_period` and a `ctm_…` customer. Failed: `transaction.payment_failed`; the
transaction stays ready. The answer is `{"redirect": url | null}`: the POST's return_url,
else the page's `?return_url=`, else the transaction's `custom_data.return_url`.
`transaction.created` is sent when the API creates the transaction.

Renewals are driven by tests: `POST /paddle/_sandbox/subscriptions/{id}/renew {"outcome"}`.
Paid: a scheduled cancel (or pause) takes effect (`subscription.canceled` / `.paused`), or
the period advances: `transaction.completed` then `subscription.updated`; paying a past_due
subscription's open transaction makes it active again without advancing. Failed: the
period advances unpaid, `transaction.past_due` then `subscription.past_due`; failing again
while past_due ends the dunning as Paddle's default does: `subscription.canceled`.

Webhooks: `{event_id (evt_…), event_type, occurred_at (RFC 3339), notification_id (ntf_…),
data}` with `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256(secret, "{ts}:{raw body}")>`,
signed when sent (a retry carries a fresh ts, the same event_id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kernel.enums import PlanType
from sandbox.billing_common import (
    DELIVERY_MODES,
    BillingDispatcher,
    Delivery,
    DeliveryMode,
    add_month,
    checkout_answer,
    checkout_page,
    read_checkout,
)

PREFIX = "/paddle"
DEMO_PADDLE_API_KEY = "pdl_sdbx_apikey_deskpilotdemo"
# Our paid plans as the demo registers them: (Paddle price id, monthly amount in cents).
DEMO_PADDLE_CURRENCY = "USD"
DEMO_PADDLE_PRICES: dict[PlanType, tuple[str, int]] = {
    PlanType.STARTER: ("pri_demo_starter", 1900),
    PlanType.GROWTH: ("pri_demo_growth", 4900),
    PlanType.PRO: ("pri_demo_pro", 14900),
}
PRORATION_MODES = (
    "prorated_immediately",
    "prorated_next_billing_period",
    "full_immediately",
    "full_next_billing_period",
    "do_not_bill",
)
_ID_CHARS = string.digits + "abcdefghjkmnpqrstvwxyz"  # Paddle ids are lower-case ULIDs


def _pid(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ID_CHARS) for _ in range(24))


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


class PaddleError(Exception):
    def __init__(
        self, status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "type": "request_error",
            "code": self.code,
            "detail": self.detail,
            "documentation_url": f"https://developer.paddle.com/v1/errors/shared/{self.code}",
        }
        if self.errors:
            error["errors"] = self.errors
        return JSONResponse({"error": error, "meta": _meta()}, self.status)


def _meta() -> dict[str, str]:
    return {"request_id": str(uuid.uuid4())}


def _invalid(field_name: str, message: str) -> PaddleError:
    return PaddleError(
        400, "invalid_field", "Invalid request.", [{"field": field_name, "message": message}]
    )


@dataclass
class PaddlePrice:
    id: str
    amount: int  # minor units (cents)
    currency: str
    created_at: datetime = field(default_factory=_now)

    @property
    def product_id(self) -> str:
        return "pro_" + self.id.removeprefix("pri_")

    def product(self) -> dict[str, Any]:
        return {
            "id": self.product_id,
            "name": self.id.removeprefix("pri_").replace("_", " ").title(),
            "description": None,
            "type": "standard",
            "tax_category": "saas",
            "image_url": None,
            "custom_data": None,
            "status": "active",
            "import_meta": None,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.created_at),
        }

    def entity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "name": "Monthly",
            "description": "Monthly subscription",
            "type": "standard",
            "billing_cycle": {"interval": "month", "frequency": 1},
            "trial_period": None,
            "tax_mode": "account_setting",
            "unit_price": {"amount": str(self.amount), "currency_code": self.currency},
            "unit_price_overrides": [],
            "quantity": {"minimum": 1, "maximum": 1},
            "status": "active",
            "custom_data": None,
            "import_meta": None,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.created_at),
        }


@dataclass
class Line:
    price: PaddlePrice
    quantity: int


@dataclass
class PaddleTransaction:
    id: str
    lines: list[Line]
    custom_data: dict[str, Any] | None
    customer_id: str | None
    checkout_url: str | None
    origin: str = "api"
    status: str = "ready"
    subscription_id: str | None = None
    billing_period: tuple[datetime, datetime] | None = None
    payments: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    billed_at: datetime | None = None

    def entity(self) -> dict[str, Any]:
        currency = self.lines[0].price.currency
        total = sum(line.price.amount * line.quantity for line in self.lines)
        zero = {"subtotal": "0", "discount": "0", "tax": "0", "total": "0"}

        def totals(amount: int) -> dict[str, str]:
            return {**zero, "subtotal": str(amount), "total": str(amount)}

        return {
            "id": self.id,
            "status": self.status,
            "customer_id": self.customer_id,
            "address_id": None,
            "business_id": None,
            "custom_data": self.custom_data,
            "origin": self.origin,
            "collection_mode": "automatic",
            "subscription_id": self.subscription_id,
            "invoice_id": _pid("inv_") if self.status == "completed" else None,
            "invoice_number": None,
            "billing_details": None,
            "billing_period": None
            if self.billing_period is None
            else {
                "starts_at": rfc3339(self.billing_period[0]),
                "ends_at": rfc3339(self.billing_period[1]),
            },
            "currency_code": currency,
            "discount_id": None,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "billed_at": rfc3339(self.billed_at),
            "revised_at": None,
            "items": [
                {"price": line.price.entity(), "quantity": line.quantity, "proration": None}
                for line in self.lines
            ],
            "details": {
                "tax_rates_used": [{"tax_rate": "0", "totals": totals(total)}],
                "totals": {
                    **totals(total),
                    "credit": "0",
                    "balance": "0" if self.status == "completed" else str(total),
                    "grand_total": str(total),
                    "grand_total_tax": "0",
                    "fee": None,
                    "earnings": None,
                    "credit_to_balance": "0",
                    "currency_code": currency,
                },
                "adjusted_totals": None,
                "payout_totals": None,
                "adjusted_payout_totals": None,
                "line_items": [
                    {
                        "id": f"txnitm_{self.id.removeprefix('txn_')}_{n}",
                        "price_id": line.price.id,
                        "quantity": line.quantity,
                        "proration": None,
                        "tax_rate": "0",
                        "unit_totals": totals(line.price.amount),
                        "totals": totals(line.price.amount * line.quantity),
                        "product": line.price.product(),
                    }
                    for n, line in enumerate(self.lines)
                ],
            },
            "payments": self.payments,
            "checkout": {"url": self.checkout_url},
        }

    def attempt(self, *, paid: bool) -> None:
        now = _now()
        self.payments.insert(
            0,
            {
                "payment_attempt_id": str(uuid.uuid4()),
                "payment_method_id": _pid("paymtd_"),
                "stored_payment_method_id": str(uuid.uuid4()),
                "amount": str(sum(ln.price.amount * ln.quantity for ln in self.lines)),
                "status": "captured" if paid else "error",
                "error_code": None if paid else "declined",
                "method_details": {"type": "card", "card": None},
                "created_at": rfc3339(now),
                "captured_at": rfc3339(now) if paid else None,
            },
        )
        self.updated_at = now


@dataclass
class PaddleSubscription:
    id: str
    customer_id: str
    address_id: str
    lines: list[Line]
    custom_data: dict[str, Any] | None
    period: tuple[datetime, datetime] | None
    status: str = "active"
    scheduled_change: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    started_at: datetime = field(default_factory=_now)
    paused_at: datetime | None = None
    canceled_at: datetime | None = None
    open_transaction: str | None = None  # the past_due renewal's transaction

    def entity(self) -> dict[str, Any]:
        ends = self.period[1] if self.period and self.status == "active" else None
        return {
            "id": self.id,
            "status": self.status,
            "customer_id": self.customer_id,
            "address_id": self.address_id,
            "business_id": None,
            "currency_code": self.lines[0].price.currency,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "started_at": rfc3339(self.started_at),
            "first_billed_at": rfc3339(self.started_at),
            "next_billed_at": rfc3339(ends),
            "paused_at": rfc3339(self.paused_at),
            "canceled_at": rfc3339(self.canceled_at),
            "discount": None,
            "collection_mode": "automatic",
            "billing_details": None,
            "current_billing_period": None
            if self.period is None
            else {"starts_at": rfc3339(self.period[0]), "ends_at": rfc3339(self.period[1])},
            "billing_cycle": {"interval": "month", "frequency": 1},
            "scheduled_change": self.scheduled_change,
            "management_urls": {
                "update_payment_method": None,
                "cancel": f"https://sandbox-customer-portal.paddle.com/subscriptions/{self.id}/cancel",
            },
            "items": [
                {
                    "status": "active",
                    "quantity": line.quantity,
                    "recurring": True,
                    "created_at": rfc3339(self.created_at),
                    "updated_at": rfc3339(self.updated_at),
                    "previously_billed_at": rfc3339(self.period[0] if self.period else None),
                    "next_billed_at": rfc3339(ends),
                    "trial_dates": None,
                    "price": line.price.entity(),
                    "product": line.price.product(),
                }
                for line in self.lines
            ],
            "custom_data": self.custom_data,
            "next_transaction": None,
            "recurring_transaction_details": None,
            "consent_requirements": [],
            "import_meta": None,
        }


@dataclass
class PaddleSandbox:
    api_key: str | None = None
    webhook_secret: str | None = None
    webhook_url: str | None = None
    prices: dict[str, PaddlePrice] = field(default_factory=dict)
    transactions: dict[str, PaddleTransaction] = field(default_factory=dict)
    subscriptions: dict[str, PaddleSubscription] = field(default_factory=dict)
    dispatcher: BillingDispatcher = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = BillingDispatcher(self._sign)

    def configure(self, *, api_key: str, webhook_secret: str, webhook_url: str | None) -> None:
        self.api_key, self.webhook_secret, self.webhook_url = api_key, webhook_secret, webhook_url

    def add_price(self, price_id: str, amount_minor: int, currency: str) -> None:
        self.prices[price_id] = PaddlePrice(price_id, amount_minor, currency)

    @property
    def deliveries(self) -> list[tuple[str, int | None]]:
        return self.dispatcher.deliveries

    async def settle(self) -> None:
        await self.dispatcher.settle()

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

    # Webhooks

    def _sign(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        digest = hmac.new(
            (self.webhook_secret or "").encode(), ts.encode() + b":" + body, hashlib.sha256
        ).hexdigest()
        return {"Paddle-Signature": f"ts={ts};h1={digest}", "User-Agent": "Paddle"}

    def _event(self, event_type: str, entity: dict[str, Any]) -> Delivery | None:
        if self.webhook_url is None:
            return None
        event_id = _pid("evt_")
        envelope = {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": rfc3339(_now()),
            "notification_id": _pid("ntf_"),
            "data": entity,
        }
        return Delivery(event_type, event_id, self.webhook_url, envelope)

    def _send(self, events: list[Delivery | None], mode: DeliveryMode = "ordered") -> None:
        self.dispatcher.queue([e for e in events if e is not None], mode)

    # Actions

    def _lines(self, items: Any) -> list[Line]:
        if not isinstance(items, list) or not items:
            raise _invalid("items", "items must be a non-empty list")
        lines = []
        for n, item in enumerate(items):
            price_id = item.get("price_id") if isinstance(item, dict) else None
            quantity = item.get("quantity", 1) if isinstance(item, dict) else None
            if price_id not in self.prices:
                raise _invalid(f"items[{n}].price_id", "price not found")
            if not isinstance(quantity, int) or quantity < 1:
                raise _invalid(f"items[{n}].quantity", "quantity must be at least 1")
            lines.append(Line(self.prices[price_id], quantity))
        return lines

    def create_transaction(self, body: dict[str, Any], base_url: str) -> PaddleTransaction:
        custom_data = body.get("custom_data")
        if custom_data is not None and not isinstance(custom_data, dict):
            raise _invalid("custom_data", "custom_data must be an object")
        txn_id = _pid("txn_")
        txn = PaddleTransaction(
            id=txn_id,
            lines=self._lines(body.get("items")),
            custom_data=custom_data,
            customer_id=body.get("customer_id"),
            checkout_url=f"{base_url}{PREFIX}/checkout/{txn_id}",
        )
        self.transactions[txn_id] = txn
        self._send([self._event("transaction.created", txn.entity())])
        return txn

    def _subscription(self, sub_id: str) -> PaddleSubscription:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise PaddleError(404, "not_found", f"Entity {sub_id} not found")
        return sub

    def _transaction(self, txn_id: str) -> PaddleTransaction:
        txn = self.transactions.get(txn_id)
        if txn is None:
            raise PaddleError(404, "not_found", f"Entity {txn_id} not found")
        return txn

    def _changed(self, sub: PaddleSubscription, event_type: str) -> Delivery | None:
        sub.updated_at = _now()
        return self._event(event_type, sub.entity())

    def checkout(self, txn: PaddleTransaction, outcome: str, mode: DeliveryMode) -> None:
        if txn.status != "ready":
            raise PaddleError(400, "transaction_status_invalid", f"Transaction is {txn.status}")
        if outcome == "failed":
            txn.attempt(paid=False)
            self._send([self._event("transaction.payment_failed", txn.entity())], mode)
            return
        now = _now()
        txn.customer_id = txn.customer_id or _pid("ctm_")
        txn.attempt(paid=True)
        txn.status, txn.billed_at = "paid", now
        sub = PaddleSubscription(
            id=_pid("sub_"),
            customer_id=txn.customer_id,
            address_id=_pid("add_"),
            lines=list(txn.lines),
            custom_data=txn.custom_data,
            period=(now, add_month(now)),
        )
        self.subscriptions[sub.id] = sub
        txn.subscription_id, txn.billing_period = sub.id, sub.period
        events = [self._event("transaction.paid", txn.entity())]
        # Only subscription.created names the transaction that made the subscription.
        created = {**sub.entity(), "transaction_id": txn.id}
        events.append(self._event("subscription.created", created))
        events.append(self._event("subscription.activated", sub.entity()))
        txn.status, txn.updated_at = "completed", _now()
        events.append(self._event("transaction.completed", txn.entity()))
        self._send(events, mode)

    def update(self, sub: PaddleSubscription, body: dict[str, Any]) -> None:
        if sub.status == "canceled":
            raise PaddleError(
                400, "subscription_locked_canceled", "Canceled subscriptions can't be changed."
            )
        if "items" in body:
            mode = body.get("proration_billing_mode")
            if mode is None:
                raise _invalid(
                    "proration_billing_mode",
                    "proration_billing_mode is required when making changes that impact billing",
                )
            if mode not in PRORATION_MODES:
                raise _invalid("proration_billing_mode", f"must be one of {PRORATION_MODES}")
            # Paddle changes the items now for every mode; only what it bills (and when) differs.
            sub.lines = self._lines(body["items"])
        if "scheduled_change" in body:
            if body["scheduled_change"] is not None:
                raise _invalid("scheduled_change", "only null is accepted")
            sub.scheduled_change = None
        if "custom_data" in body:
            sub.custom_data = body["custom_data"]
        self._send([self._changed(sub, "subscription.updated")])

    def cancel(self, sub: PaddleSubscription, effective_from: str) -> None:
        self._schedule_or_apply(sub, "cancel", effective_from)

    def pause(self, sub: PaddleSubscription, effective_from: str) -> None:
        self._schedule_or_apply(sub, "pause", effective_from)

    def _schedule_or_apply(self, sub: PaddleSubscription, action: str, effective_from: str) -> None:
        if effective_from not in ("next_billing_period", "immediately"):
            raise _invalid("effective_from", "must be next_billing_period or immediately")
        allowed = ("active", "past_due") + (("paused",) if action == "cancel" else ())
        if sub.status not in allowed:
            raise PaddleError(
                400, "subscription_locked", f"Subscription is {sub.status}; cannot {action}."
            )
        if effective_from == "next_billing_period" and sub.status == "active" and sub.period:
            sub.scheduled_change = {
                "action": action,
                "effective_at": rfc3339(sub.period[1]),
                "resume_at": None,
            }
            self._send([self._changed(sub, "subscription.updated")])
            return
        self._apply(sub, action)

    def _apply(self, sub: PaddleSubscription, action: str, mode: DeliveryMode = "ordered") -> None:
        now = _now()
        sub.scheduled_change = None
        if action == "cancel":
            sub.status, sub.canceled_at, sub.period = "canceled", now, None
            self._send([self._changed(sub, "subscription.canceled")], mode)
        else:
            sub.status, sub.paused_at, sub.period = "paused", now, None
            self._send([self._changed(sub, "subscription.paused")], mode)

    def resume(self, sub: PaddleSubscription) -> None:
        if sub.status == "active" and sub.scheduled_change:
            sub.scheduled_change = None  # resuming drops a scheduled pause
            self._send([self._changed(sub, "subscription.updated")])
            return
        if sub.status != "paused":
            raise PaddleError(400, "subscription_locked", f"Subscription is {sub.status}.")
        now = _now()
        sub.status, sub.paused_at, sub.period = "active", None, (now, add_month(now))
        self._send([self._changed(sub, "subscription.resumed")])

    def renew(self, sub: PaddleSubscription, outcome: str, mode: DeliveryMode) -> None:
        """The end of the billing period, as Paddle bills it."""
        if sub.status not in ("active", "past_due") or sub.period is None:
            raise PaddleError(400, "subscription_locked", f"Subscription is {sub.status}.")
        if sub.scheduled_change:
            self._apply(sub, sub.scheduled_change["action"], mode)
            return
        if sub.status == "past_due" and outcome == "failed":
            self._apply(sub, "cancel", mode)  # dunning over
            return
        if sub.status == "past_due":
            txn = self._transaction(sub.open_transaction or "")
        else:
            sub.period = (sub.period[1], add_month(sub.period[1]))
            txn = PaddleTransaction(
                id=_pid("txn_"),
                lines=list(sub.lines),
                custom_data=sub.custom_data,
                customer_id=sub.customer_id,
                checkout_url=None,
                origin="subscription_recurring",
                status="billed",
                subscription_id=sub.id,
                billing_period=sub.period,
                billed_at=_now(),
            )
            self.transactions[txn.id] = txn
        txn.attempt(paid=outcome == "paid")
        if outcome == "failed":
            txn.status, sub.status, sub.open_transaction = "past_due", "past_due", txn.id
            events = [self._event("transaction.past_due", txn.entity())]
            events.append(self._changed(sub, "subscription.past_due"))
        else:
            txn.status, sub.status, sub.open_transaction = "completed", "active", None
            events = [self._event("transaction.completed", txn.entity())]
            events.append(self._changed(sub, "subscription.updated"))
        self._send(events, mode)

    # HTTP

    def _authorized(self, request: Request) -> PaddleError | None:
        header = request.headers.get("authorization")
        if not header:
            return PaddleError(403, "authentication_missing", "Authentication header missing.")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            return PaddleError(
                403,
                "authentication_malformed",
                "Authentication header included, but incorrectly formatted.",
            )
        if not self.api_key or not hmac.compare_digest(key, self.api_key):
            return PaddleError(403, "invalid_token", "Invalid or revoked API key.")
        return None

    def api_router(self, prefix: str = PREFIX) -> APIRouter:
        """The REST API under `prefix` (see the module docstring for why twice)."""
        api = APIRouter(prefix=prefix)

        async def call(request: Request, action: Any) -> Response:
            denied = self._authorized(request)
            if denied is not None:
                return denied.response()
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return PaddleError(400, "bad_request", "Invalid JSON.").response()
            try:
                return JSONResponse({"data": action(body), "meta": _meta()})
            except PaddleError as exc:
                return exc.response()

        base = _base_url

        @api.post("/transactions")
        async def create_transaction(request: Request) -> Response:
            return await call(request, lambda b: self.create_transaction(b, base(request)).entity())

        @api.get("/transactions/{txn_id}")
        async def get_transaction(txn_id: str, request: Request) -> Response:
            return await call(request, lambda _: self._transaction(txn_id).entity())

        @api.get("/subscriptions/{sub_id}")
        async def get_subscription(sub_id: str, request: Request) -> Response:
            return await call(request, lambda _: self._subscription(sub_id).entity())

        @api.patch("/subscriptions/{sub_id}")
        async def update(sub_id: str, request: Request) -> Response:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                sub = self._subscription(sub_id)
                self.update(sub, body)
                return sub.entity()

            return await call(request, run)

        @api.post("/subscriptions/{sub_id}/{verb}")
        async def act(sub_id: str, verb: str, request: Request) -> Response:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                sub = self._subscription(sub_id)
                when = body.get("effective_from") or "next_billing_period"
                if verb == "cancel":
                    self.cancel(sub, when)
                elif verb == "pause":
                    self.pause(sub, when)
                elif verb == "resume":
                    self.resume(sub)
                else:
                    raise PaddleError(404, "not_found", "Not found.")
                return sub.entity()

            return await call(request, run)

        @api.get("/prices/{price_id}")
        async def get_price(price_id: str, request: Request) -> Response:
            def run(_: dict[str, Any]) -> dict[str, Any]:
                if price_id not in self.prices:
                    raise PaddleError(404, "not_found", f"Entity {price_id} not found")
                return self.prices[price_id].entity()

            return await call(request, run)

        return api

    def router(self) -> APIRouter:
        """The checkout pages and test controls, and the API, under /paddle."""
        api = APIRouter(prefix=PREFIX)
        api.include_router(self.api_router(prefix=""))

        @api.get("/checkout/{txn_id}")
        async def checkout_get(txn_id: str, request: Request) -> Response:
            txn = self.transactions.get(txn_id)
            if txn is None:
                return HTMLResponse("<p>No such transaction.</p>", 404)
            line = txn.lines[0]
            return HTMLResponse(
                checkout_page(
                    vendor="Paddle",
                    title=f"Subscribe to {line.price.id}",
                    summary=f"{line.price.currency} {line.price.amount * line.quantity / 100:.2f}"
                    f" a month ({txn.id}, {txn.status})",
                    return_url=request.query_params.get("return_url"),
                )
            )

        @api.post("/checkout/{txn_id}")
        async def checkout_post(txn_id: str, request: Request) -> Response:
            form = await read_checkout(request)
            if form is None:
                return _invalid(
                    "outcome", "outcome: paid or failed; delivery: " + ", ".join(DELIVERY_MODES)
                ).response()
            try:
                txn = self._transaction(txn_id)
                self.checkout(txn, form.outcome, form.delivery)
            except PaddleError as exc:
                return exc.response()
            saved = (txn.custom_data or {}).get("return_url")
            return_url = form.return_url or (saved if isinstance(saved, str) else None)
            paid = txn.status == "completed"
            return checkout_answer(
                form,
                return_url if paid else None,
                "Payment received." if paid else "Payment failed; try again.",
            )

        @api.post("/_sandbox/subscriptions/{sub_id}/renew")
        async def renew(sub_id: str, request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                body = None
            outcome = body.get("outcome") if isinstance(body, dict) else None
            mode = body.get("delivery", "ordered") if isinstance(body, dict) else None
            if outcome not in ("paid", "failed") or mode not in DELIVERY_MODES:
                return _invalid("outcome", "outcome: paid or failed").response()
            try:
                sub = self._subscription(sub_id)
                self.renew(sub, outcome, mode)
            except PaddleError as exc:
                return exc.response()
            return JSONResponse({"data": sub.entity(), "meta": _meta()})

        return api


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")
