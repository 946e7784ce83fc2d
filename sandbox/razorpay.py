"""An in-memory stand-in for Razorpay Subscriptions: the REST API the official `razorpay`
SDK calls (`razorpay.Client(auth=(key_id, key_secret), base_url=f"{sandbox}/razorpay")`),
a hosted checkout page, and signed webhooks.

API: `POST /v1/subscriptions`, `GET /v1/subscriptions[/{id}]`, `PATCH /v1/subscriptions/{id}`
(`plan_id`, `schedule_change_at`: `now` | `cycle_end`), `POST .../cancel`
(`cancel_at_cycle_end`), `.../cancel_scheduled_changes`, `.../pause`, `.../resume`, and
`GET /v1/plans/{id}`; HTTP Basic auth with the key id and secret. Errors have Razorpay's
shape `{"error": {"code": "BAD_REQUEST_ERROR", "description", "field"}}`; an unknown id
is a 400, as Razorpay answers it. Times are Unix seconds; empty `notes` come back as `[]`
as Razorpay's API returns them.

States: created -> authenticated -> active -> pending -> halted; cancelled, completed,
paused. A cancel at cycle end keeps the subscription active (Razorpay sends nothing then)
until the next renewal, which cancels it (`subscription.cancelled`); a plan change at
cycle end sets `has_scheduled_changes` and applies at the next renewal.

Checkout: the `short_url` is `/razorpay/checkout/{sub_id}`. GET shows Pay and Fail
buttons; POST `{"outcome": "paid"|"failed", "delivery": "ordered"|"duplicated"|"shuffled",
"return_url"?}` completes it. The return URL is taken from the POST, else the page's
`?return_url=` query parameter, else the subscription's `notes.return_url` (notes are
free-form on the real API too). Paid: `subscription.authenticated`,
`subscription.activated`, `subscription.charged` (with the payment), and a redirect to
the return URL with `razorpay_payment_id`, `razorpay_subscription_id` and
`razorpay_signature` (hex HMAC-SHA256 of `payment_id|subscription_id` with the key
secret), as Standard Checkout hands them to its handler. Failed: `payment.failed`; the
subscription stays created.

Renewals are driven by tests: `POST /razorpay/_sandbox/subscriptions/{id}/renew
{"outcome"}`. Paid: the period advances a month (a scheduled plan change applies first,
`subscription.updated`) and `subscription.charged`; or a cancel at cycle end takes effect.
Failed: `payment.failed`, then `subscription.pending`, and from pending
`subscription.halted`.

Webhooks carry `X-Razorpay-Signature` (hex HMAC-SHA256 of the raw body with the webhook
secret) and `x-razorpay-event-id`, the same on every retry of one event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import time
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
    with_query,
)

PREFIX = "/razorpay"
DEMO_RAZORPAY_KEY_ID = "rzp_test_deskpilotdemo"
DEMO_RAZORPAY_ACCOUNT_ID = "acc_DeskpilotDemo01"
# Our paid plans as the demo registers them: (Razorpay plan id, monthly amount in paise).
DEMO_RAZORPAY_CURRENCY = "INR"
DEMO_RAZORPAY_PLANS: dict[PlanType, tuple[str, int]] = {
    PlanType.STARTER: ("plan_demo_starter", 149900),
    PlanType.GROWTH: ("plan_demo_growth", 399900),
    PlanType.PRO: ("plan_demo_pro", 1199900),
}

_ALNUM = string.ascii_letters + string.digits


def _rid(prefix: str) -> str:
    """An id the way Razorpay's look: prefix and 14 letters or digits."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(14))


def _ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class RazorpayError(Exception):
    def __init__(
        self, description: str, *, status: int = 400, field_name: str | None = None
    ) -> None:
        super().__init__(description)
        self.description, self.status, self.field_name = description, status, field_name

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {
            "code": "BAD_REQUEST_ERROR",
            "description": self.description,
            "source": "business" if self.status == 400 else "NA",
            "step": "NA",
            "reason": "input_validation_failed" if self.status == 400 else "NA",
            "metadata": {},
        }
        if self.field_name:
            error["field"] = self.field_name
        return JSONResponse({"error": error}, self.status)


@dataclass
class RazorpayPlan:
    id: str
    amount: int  # minor units (paise)
    currency: str
    created_at: int = field(default_factory=lambda: int(time.time()))

    def entity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": "plan",
            "interval": 1,
            "period": "monthly",
            "item": {
                "id": "item_" + self.id.removeprefix("plan_"),
                "active": True,
                "name": self.id,
                "description": None,
                "amount": self.amount,
                "unit_amount": self.amount,
                "currency": self.currency,
                "type": "plan",
            },
            "notes": [],
            "created_at": self.created_at,
        }


@dataclass
class RazorpaySubscription:
    id: str
    plan_id: str
    total_count: int
    quantity: int
    customer_notify: bool
    notes: dict[str, Any]
    short_url: str
    created_at: datetime
    expire_by: int | None = None
    status: str = "created"
    customer_id: str | None = None
    current_start: datetime | None = None
    current_end: datetime | None = None
    ended_at: datetime | None = None
    start_at: datetime | None = None
    auth_attempts: int = 0
    paid_count: int = 0
    scheduled_plan_id: str | None = None
    cancel_at_cycle_end: bool = False

    def end_at(self) -> datetime | None:
        if self.cancel_at_cycle_end:
            return self.current_end
        if self.start_at is None:
            return None
        end = self.start_at
        for _ in range(self.total_count):
            end = add_month(end)
        return end

    def entity(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": "subscription",
            "plan_id": self.plan_id,
            "customer_id": self.customer_id,
            "status": self.status,
            "current_start": _ts(self.current_start),
            "current_end": _ts(self.current_end),
            "ended_at": _ts(self.ended_at),
            "quantity": self.quantity,
            "notes": self.notes or [],
            # Next charge: the cycle's end once running; before that, the first charge (now).
            "charge_at": _ts(self.current_end if self.current_end else self.created_at),
            "start_at": _ts(self.start_at),
            "end_at": _ts(self.end_at()),
            "auth_attempts": self.auth_attempts,
            "total_count": self.total_count,
            "paid_count": self.paid_count,
            "customer_notify": self.customer_notify,
            "created_at": _ts(self.created_at),
            "expire_by": self.expire_by,
            "short_url": self.short_url,
            "has_scheduled_changes": self.scheduled_plan_id is not None,
            "change_scheduled_at": _ts(self.current_end) if self.scheduled_plan_id else None,
            "source": "api",
            "payment_method": "card" if self.customer_id else None,
            "offer_id": None,
            "remaining_count": self.total_count - self.paid_count,
        }


@dataclass
class RazorpaySandbox:
    key_id: str | None = None
    key_secret: str | None = None
    webhook_secret: str | None = None
    webhook_url: str | None = None
    account_id: str = DEMO_RAZORPAY_ACCOUNT_ID
    plans: dict[str, RazorpayPlan] = field(default_factory=dict)
    subscriptions: dict[str, RazorpaySubscription] = field(default_factory=dict)
    dispatcher: BillingDispatcher = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = BillingDispatcher(self._sign)

    def configure(
        self, *, key_id: str, key_secret: str, webhook_secret: str, webhook_url: str | None
    ) -> None:
        self.key_id, self.key_secret = key_id, key_secret
        self.webhook_secret, self.webhook_url = webhook_secret, webhook_url

    def add_plan(self, plan_id: str, amount_minor: int, currency: str) -> None:
        self.plans[plan_id] = RazorpayPlan(plan_id, amount_minor, currency)

    @property
    def deliveries(self) -> list[tuple[str, int | None]]:
        return self.dispatcher.deliveries

    async def settle(self) -> None:
        await self.dispatcher.settle()

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

    # Webhooks

    def _sign(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        return {
            "X-Razorpay-Signature": hex_hmac(self.webhook_secret or "", body),
            "x-razorpay-event-id": delivery.event_id,
            "User-Agent": "Razorpay-Webhook/v1",
        }

    def _event(
        self,
        event: str,
        sub: RazorpaySubscription | None,
        payment: dict[str, Any] | None = None,
    ) -> Delivery | None:
        if self.webhook_url is None:
            return None
        payload: dict[str, Any] = {}
        if sub is not None:
            payload["subscription"] = {"entity": sub.entity()}  # the state at this step
        if payment is not None:
            payload["payment"] = {"entity": payment}
        envelope = {
            "entity": "event",
            "account_id": self.account_id,
            "event": event,
            "contains": list(payload),
            "payload": payload,
            "created_at": int(time.time()),
        }
        return Delivery(event, _rid(""), self.webhook_url, envelope)

    def _send(self, events: list[Delivery | None], mode: DeliveryMode = "ordered") -> None:
        self.dispatcher.queue([e for e in events if e is not None], mode)

    def _payment(self, sub: RazorpaySubscription, *, paid: bool) -> dict[str, Any]:
        plan = self.plans.get(sub.plan_id)
        failed = {
            "error_code": "BAD_REQUEST_ERROR",
            "error_description": "Payment failed because the card was declined.",
            "error_source": "customer",
            "error_step": "payment_authorization",
            "error_reason": "card_declined",
        }
        return {
            "id": _rid("pay_"),
            "entity": "payment",
            "amount": (plan.amount if plan else 0) * sub.quantity,
            "currency": plan.currency if plan else "INR",
            "status": "captured" if paid else "failed",
            "order_id": _rid("order_"),
            "invoice_id": _rid("inv_"),
            "international": False,
            "method": "card",
            "amount_refunded": 0,
            "refund_status": None,
            "captured": paid,
            "description": f"Subscription {sub.id}",
            "card_id": _rid("card_"),
            "bank": None,
            "wallet": None,
            "vpa": None,
            "email": "customer@example.com",
            "contact": "+919999999999",
            "customer_id": sub.customer_id,
            "token_id": None,
            "notes": [],
            "fee": 0,
            "tax": 0,
            "created_at": int(time.time()),
            **({k: None for k in failed} if paid else failed),
        }

    # Actions (the API's and the checkout's)

    def _find(self, sub_id: str) -> RazorpaySubscription:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise RazorpayError("The id provided does not exist", field_name="id")
        return sub

    def create(self, body: dict[str, Any], base_url: str) -> RazorpaySubscription:
        plan_id = body.get("plan_id")
        if not isinstance(plan_id, str) or plan_id not in self.plans:
            raise RazorpayError("The id provided does not exist", field_name="plan_id")
        total_count = body.get("total_count")
        if not isinstance(total_count, int) or total_count < 1:
            raise RazorpayError("The total count field is required.", field_name="total_count")
        quantity = body.get("quantity", 1)
        notes = body.get("notes") or {}
        if not isinstance(quantity, int) or quantity < 1:
            raise RazorpayError("The quantity must be at least 1.", field_name="quantity")
        if not isinstance(notes, dict):
            raise RazorpayError("The notes field must be an array.", field_name="notes")
        sub_id = _rid("sub_")
        sub = RazorpaySubscription(
            id=sub_id,
            plan_id=plan_id,
            total_count=total_count,
            quantity=quantity,
            customer_notify=bool(body.get("customer_notify", True)),
            notes=notes,
            short_url=f"{base_url}{PREFIX}/checkout/{sub_id}",
            created_at=datetime.now(UTC),
            expire_by=body.get("expire_by"),
        )
        self.subscriptions[sub_id] = sub
        return sub

    def change_plan(self, sub: RazorpaySubscription, body: dict[str, Any]) -> None:
        plan_id, when = body.get("plan_id"), body.get("schedule_change_at", "now")
        if sub.status not in ("authenticated", "active"):
            raise RazorpayError(f"Subscription cannot be updated in {sub.status} status.")
        if plan_id is not None and plan_id not in self.plans:
            raise RazorpayError("The id provided does not exist", field_name="plan_id")
        if when not in ("now", "cycle_end"):
            raise RazorpayError(
                "The selected schedule change at is invalid.", field_name="schedule_change_at"
            )
        if plan_id is None:
            return
        if when == "cycle_end":
            sub.scheduled_plan_id = plan_id
            return  # Razorpay tells the webhook when the change takes effect
        sub.plan_id, sub.scheduled_plan_id = plan_id, None
        self._send([self._event("subscription.updated", sub)])

    def cancel(self, sub: RazorpaySubscription, at_cycle_end: bool) -> None:
        if sub.status in ("cancelled", "completed", "expired"):
            raise RazorpayError(
                f"Subscription is not cancellable in {sub.status} status.", field_name="status"
            )
        if at_cycle_end and sub.current_end is not None:
            sub.cancel_at_cycle_end = True
            return
        sub.status, sub.ended_at = "cancelled", datetime.now(UTC)
        self._send([self._event("subscription.cancelled", sub)])

    def pause(self, sub: RazorpaySubscription) -> None:
        if sub.status != "active":
            raise RazorpayError(f"Subscription cannot be paused in {sub.status} status.")
        sub.status = "paused"
        self._send([self._event("subscription.paused", sub)])

    def resume(self, sub: RazorpaySubscription) -> None:
        if sub.status != "paused":
            raise RazorpayError(f"Subscription cannot be resumed in {sub.status} status.")
        sub.status = "active"
        self._send([self._event("subscription.resumed", sub)])

    def checkout(
        self, sub: RazorpaySubscription, outcome: str, mode: DeliveryMode
    ) -> dict[str, str] | None:
        """Pay (or fail) the authorisation payment; the handler's fields when paid."""
        if sub.status != "created":
            raise RazorpayError(f"Subscription is already {sub.status}.", field_name="status")
        if outcome == "failed":
            sub.auth_attempts += 1
            self._send([self._event("payment.failed", None, self._payment(sub, paid=False))], mode)
            return None
        now = datetime.now(UTC)
        sub.customer_id = sub.customer_id or _rid("cust_")
        sub.status, sub.start_at = "authenticated", now
        events = [self._event("subscription.authenticated", sub)]
        sub.status, sub.current_start, sub.current_end = "active", now, add_month(now)
        sub.paid_count = 1
        events.append(self._event("subscription.activated", sub))
        payment = self._payment(sub, paid=True)
        events.append(self._event("subscription.charged", sub, payment))
        self._send(events, mode)
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_subscription_id": sub.id,
            "razorpay_signature": hex_hmac(
                self.key_secret or "", f"{payment['id']}|{sub.id}".encode()
            ),
        }

    def renew(self, sub: RazorpaySubscription, outcome: str, mode: DeliveryMode) -> None:
        """The next cycle's charge, as Razorpay runs it at `charge_at`."""
        if sub.status not in ("active", "pending", "halted"):
            raise RazorpayError(f"Subscription cannot be charged in {sub.status} status.")
        assert sub.current_end is not None
        if outcome == "failed":
            sub.auth_attempts += 1
            events = [self._event("payment.failed", None, self._payment(sub, paid=False))]
            sub.status = "pending" if sub.status == "active" else "halted"
            events.append(self._event(f"subscription.{sub.status}", sub))
            self._send(events, mode)
            return
        if sub.cancel_at_cycle_end:
            sub.status, sub.ended_at = "cancelled", sub.current_end
            self._send([self._event("subscription.cancelled", sub)], mode)
            return
        events = []
        if sub.scheduled_plan_id is not None:
            sub.plan_id, sub.scheduled_plan_id = sub.scheduled_plan_id, None
            events.append(self._event("subscription.updated", sub))
        sub.current_start, sub.current_end = sub.current_end, add_month(sub.current_end)
        sub.status, sub.auth_attempts, sub.paid_count = "active", 0, sub.paid_count + 1
        events.append(self._event("subscription.charged", sub, self._payment(sub, paid=True)))
        if sub.paid_count >= sub.total_count:
            sub.status, sub.ended_at = "completed", sub.current_end
            events.append(self._event("subscription.completed", sub))
        self._send(events, mode)

    # HTTP

    def _authorized(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not self.key_id or not self.key_secret:
            return False
        try:
            key_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(key_id, self.key_id) and hmac.compare_digest(
            secret, self.key_secret
        )

    def router(self) -> APIRouter:
        api = APIRouter(prefix=PREFIX)

        async def call(request: Request, action: Any, *, auth: bool = True) -> Response:
            if auth and not self._authorized(request):
                return RazorpayError("Authentication failed", status=401).response()
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return RazorpayError("The request body must be JSON.").response()
            try:
                return JSONResponse(action(body))
            except RazorpayError as exc:
                return exc.response()

        def base(request: Request) -> str:
            return str(request.base_url).rstrip("/")

        @api.post("/v1/subscriptions")
        async def create(request: Request) -> Response:
            return await call(request, lambda b: self.create(b, base(request)).entity())

        @api.get("/v1/subscriptions")
        async def list_all(request: Request) -> Response:
            def items(_: dict[str, Any]) -> dict[str, Any]:
                found = [s.entity() for s in reversed(self.subscriptions.values())]
                return {"entity": "collection", "count": len(found), "items": found}

            return await call(request, items)

        @api.get("/v1/subscriptions/{sub_id}")
        async def fetch(sub_id: str, request: Request) -> Response:
            return await call(request, lambda _: self._find(sub_id).entity())

        @api.patch("/v1/subscriptions/{sub_id}")
        async def update(sub_id: str, request: Request) -> Response:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                sub = self._find(sub_id)
                self.change_plan(sub, body)
                return sub.entity()

            return await call(request, run)

        @api.post("/v1/subscriptions/{sub_id}/{verb}")
        async def act(sub_id: str, verb: str, request: Request) -> Response:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                sub = self._find(sub_id)
                if verb == "cancel":
                    self.cancel(sub, body.get("cancel_at_cycle_end") in (1, True, "1", "true"))
                elif verb == "cancel_scheduled_changes":
                    sub.scheduled_plan_id = None
                elif verb == "pause":
                    self.pause(sub)
                elif verb == "resume":
                    self.resume(sub)
                else:
                    raise RazorpayError(
                        "The requested URL was not found on the server.", status=404
                    )
                return sub.entity()

            return await call(request, run)

        @api.get("/v1/plans/{plan_id}")
        async def plan(plan_id: str, request: Request) -> Response:
            def run(_: dict[str, Any]) -> dict[str, Any]:
                if plan_id not in self.plans:
                    raise RazorpayError("The id provided does not exist", field_name="id")
                return self.plans[plan_id].entity()

            return await call(request, run)

        @api.get("/checkout/{sub_id}")
        async def checkout_get(sub_id: str, request: Request) -> Response:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                return HTMLResponse("<p>No such subscription.</p>", 404)
            plan = self.plans[sub.plan_id]
            return HTMLResponse(
                checkout_page(
                    vendor="Razorpay",
                    title=f"Subscribe to {plan.id}",
                    summary=f"{plan.currency} {plan.amount * sub.quantity / 100:.2f} a month "
                    f"({sub.id}, {sub.status})",
                    return_url=request.query_params.get("return_url"),
                )
            )

        @api.post("/checkout/{sub_id}")
        async def checkout_post(sub_id: str, request: Request) -> Response:
            form = await read_checkout(request)
            if form is None:
                return RazorpayError(
                    "outcome must be paid or failed; delivery one of " + ", ".join(DELIVERY_MODES)
                ).response()
            try:
                sub = self._find(sub_id)
                fields = self.checkout(sub, form.outcome, form.delivery)
            except RazorpayError as exc:
                return exc.response()
            return_url = form.return_url or (
                sub.notes.get("return_url")
                if isinstance(sub.notes.get("return_url"), str)
                else None
            )
            redirect = with_query(return_url, fields) if fields and return_url else None
            return checkout_answer(
                form, redirect, "Payment received." if fields else "Payment failed; try again."
            )

        @api.post("/_sandbox/subscriptions/{sub_id}/renew")
        async def renew(sub_id: str, request: Request) -> Response:
            def run(body: dict[str, Any]) -> dict[str, Any]:
                outcome, mode = body.get("outcome"), body.get("delivery", "ordered")
                if outcome not in ("paid", "failed") or mode not in DELIVERY_MODES:
                    raise RazorpayError(
                        "outcome must be paid or failed; delivery one of "
                        + ", ".join(DELIVERY_MODES)
                    )
                sub = self._find(sub_id)
                self.renew(sub, outcome, mode)
                return sub.entity()

            return await call(request, run, auth=False)

        return api
