"""Paddle Billing through the official `paddle-python-sdk` (`paddle_billing`).

The SDK sends the requests (synchronous, in a thread; one Client per call, since a
Client keeps per-request state) and checks `Paddle-Signature` with its Notifications
Verifier, whose 5-second window refuses replays. Snapshots are read from the answer's
JSON with the same code as webhooks, so both say the same about a subscription.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paddle_billing import Client, Options
from paddle_billing.Entities.Shared import CustomData
from paddle_billing.Entities.Subscriptions import (
    SubscriptionEffectiveFrom,
    SubscriptionProrationBillingMode,
    SubscriptionResumeEffectiveFrom,
)
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Notifications import PaddleSignature, Secret, Verifier
from paddle_billing.Resources.Subscriptions.Operations import (
    CancelSubscription,
    ResumeSubscription,
    UpdateSubscription,
)
from paddle_billing.Resources.Subscriptions.Operations.Update import SubscriptionUpdateItem
from paddle_billing.Resources.Transactions.Operations import CreateTransaction
from paddle_billing.Resources.Transactions.Operations.Create import TransactionCreateItem

from domain.billing import GatewaySnapshot, PlanCatalog
from integrations.billing_port import BadWebhook, Checkout, WebhookEvent, header
from kernel.enums import PlanType
from kernel.errors import IntegrationError, Invalid
from kernel.settings import Settings

NAME = "paddle"
PRODUCTION_URL = "https://api.paddle.com"
TIMEOUT_S = 30.0
SIGNATURE_WINDOW_S = 5  # Paddle's own SDK default


@dataclass(frozen=True)
class ApiRoot:
    """What Options.environment must offer: the API's base URL."""

    base_url: str


class _PrefixedClient(Client):
    """The SDK joins its paths ("/subscriptions/…") onto the base URL with urljoin, which
    drops a base path such as the sandbox's `/paddle`; relative paths keep it."""

    def _make_request(self, method: str, url: str, payload: Any = None) -> Any:
        if isinstance(url, str) and url.startswith("/"):
            url = url.lstrip("/")
        return super()._make_request(method, url, payload)


@dataclass(frozen=True)
class _Delivery:
    """What the Verifier reads from a request: its raw body and its headers."""

    body: bytes
    headers: _Headers


@dataclass(frozen=True)
class _Headers:
    source: Mapping[str, str]

    def get(self, key: str, default: str | None = None) -> str | None:
        found = header(self.source, key)
        return default if found is None else found


class PaddleGateway:
    name = NAME
    changes_at_period_end = False
    undoes_cancel_at_period_end = True  # the scheduled_change is removed

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str | None,
        catalog: PlanCatalog,
        api_url: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._root = ApiRoot((api_url or PRODUCTION_URL).rstrip("/") + "/")
        self._webhook_secret = webhook_secret
        self._catalog = catalog

    @classmethod
    def from_settings(cls, settings: Settings, catalog: PlanCatalog) -> PaddleGateway:
        assert settings.paddle_api_key is not None
        secret = settings.paddle_webhook_secret
        return cls(
            api_key=settings.paddle_api_key.get_secret_value(),
            webhook_secret=secret.get_secret_value() if secret else None,
            catalog=catalog,
            api_url=settings.paddle_api_url,
        )

    @property
    def webhooks_configured(self) -> bool:
        return bool(self._webhook_secret)

    # --- calls -------------------------------------------------------------------------

    async def checkout(
        self, *, user_id: uuid.UUID, email: str, plan: PlanType, return_url: str
    ) -> Checkout:
        """A transaction for the price; Paddle copies its custom_data onto the subscription
        the payment creates, so our user id comes back with every webhook. (The buyer's
        email is asked on Paddle's checkout: a transaction takes a customer id only.)"""
        operation = CreateTransaction(
            items=[TransactionCreateItem(price_id=self._price_id(plan), quantity=1)],
            custom_data=CustomData({"user_id": str(user_id), "return_url": return_url}),
        )
        data = await self._send(
            "create the checkout", "transactions", lambda c: c.transactions.create(operation)
        )
        url = (data.get("checkout") or {}).get("url")
        if not isinstance(url, str) or not url:
            raise IntegrationError(
                "Paddle made the transaction without a checkout link: set a default payment "
                "link in Paddle's checkout settings",
                retryable=False,
            )
        return Checkout(url=url, gateway=NAME, subscription_id=None)

    async def change_plan(
        self, subscription_id: str, plan: PlanType, *, at_period_end: bool
    ) -> GatewaySnapshot:
        """At once, prorated: Paddle changes a subscription's items the moment it is asked,
        whatever the billing mode, so a change "at the period's end" would hand over the new
        plan now and bill it only from the next period (a free upgrade). It is refused."""
        if at_period_end:
            raise Invalid(
                "Paddle changes the plan at once (prorated); it cannot wait for the period's end",
                code="not_at_period_end",
            )
        operation = UpdateSubscription(
            items=[SubscriptionUpdateItem(price_id=self._price_id(plan), quantity=1)],
            proration_billing_mode=SubscriptionProrationBillingMode.ProratedImmediately,
        )
        data = await self._send(
            "change the plan",
            "subscriptions",
            lambda c: c.subscriptions.update(subscription_id, operation),
        )
        return subscription_snapshot(data, event_type="api.change_plan")

    async def cancel(self, subscription_id: str, *, at_period_end: bool) -> GatewaySnapshot:
        when = (
            SubscriptionEffectiveFrom.NextBillingPeriod
            if at_period_end
            else SubscriptionEffectiveFrom.Immediately
        )
        data = await self._send(
            "cancel the subscription",
            "subscriptions",
            lambda c: c.subscriptions.cancel(subscription_id, CancelSubscription(when)),
        )
        return subscription_snapshot(data, event_type="api.cancel")

    async def resume(self, subscription_id: str) -> GatewaySnapshot:
        """A paused subscription resumes now; a scheduled cancel (or pause) is dropped."""
        data = await self._send(
            "read the subscription",
            "subscriptions",
            lambda c: c.subscriptions.get(subscription_id),
        )
        if data.get("status") == "paused":
            resume = ResumeSubscription(SubscriptionResumeEffectiveFrom.Immediately)
            data = await self._send(
                "resume the subscription",
                "subscriptions",
                lambda c: c.subscriptions.resume(subscription_id, resume),
            )
        elif data.get("scheduled_change"):
            data = await self._send(
                "remove the scheduled cancellation",
                "subscriptions",
                lambda c: c.subscriptions.update(
                    subscription_id, UpdateSubscription(scheduled_change=None)
                ),
            )
        return subscription_snapshot(data, event_type="api.resume")

    # --- signatures and webhooks ---------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """Paddle-Signature over the raw body, its timestamp no more than 5 s away."""
        signature = header(headers, "Paddle-Signature")
        if not self._webhook_secret or not signature:
            return False
        try:
            # The Verifier skips its time check when TEST_MODE=1 is in the environment;
            # a replay window that an environment variable turns off is checked here too.
            stamp, _ = PaddleSignature.parse(signature)
            if abs(time.time() - stamp) > SIGNATURE_WINDOW_S:
                return False
            return bool(
                Verifier(SIGNATURE_WINDOW_S).verify(
                    _Delivery(body, _Headers(headers)), Secret(self._webhook_secret)
                )
            )
        except (ValueError, TypeError, ConnectionRefusedError):  # a malformed header or body
            return False

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise BadWebhook("the webhook body is not JSON") from exc
        if not isinstance(payload, dict):
            raise BadWebhook("the webhook body is not a JSON object")
        return paddle_event(payload)

    def verify_checkout_signature(
        self, *, payment_id: str, subscription_id: str, signature: str
    ) -> bool:
        return False  # Paddle's checkout returns nothing signed: its webhooks say it all

    # --- helpers -------------------------------------------------------------------------

    def _price_id(self, plan: PlanType) -> str:
        price_id = self._catalog.gateway_id(NAME, plan)
        if price_id is None:
            raise Invalid(f"{plan.value} is not offered through Paddle (no price id configured)")
        return price_id

    def _client(self) -> Client:
        return _PrefixedClient(
            self._api_key,
            options=Options(environment=self._root),
            timeout=TIMEOUT_S,  # type: ignore[arg-type]
        )

    async def _send(
        self, what: str, resource: str, call: Callable[[Client], object]
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self._send_now, what, resource, call)

    def _send_now(
        self, what: str, resource: str, call: Callable[[Client], object]
    ) -> dict[str, Any]:
        client = self._client()
        try:
            call(client)
        except ApiError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            retry = status == 429 or status >= 500
            raise IntegrationError(
                f"Paddle refused to {what}: {exc.detail} ({exc.error_code})",
                retryable=retry,
                code="gateway_unavailable" if retry else "gateway_refused",
            ) from exc
        except (KeyError, ValueError, TypeError):
            # The SDK's entity classes want fields an answer may leave out; the answer
            # itself is read below, so only a failed request is an error here.
            pass
        except OSError as exc:  # requests' errors
            raise IntegrationError(
                f"Paddle could not be reached to {what}: {exc}",
                retryable=True,
                code="gateway_unavailable",
            ) from exc
        response = getattr(client, resource).response
        if response is None or not response.ok:
            status = client.status_code or 0
            raise IntegrationError(
                f"Paddle answered {status} to {what}", retryable=status == 429 or status >= 500
            )
        try:
            data = response.json()["data"]
        except (ValueError, KeyError) as exc:
            raise IntegrationError(
                f"Paddle's answer to {what} is not readable", retryable=False
            ) from exc
        if not isinstance(data, dict):
            raise IntegrationError(f"Paddle's answer to {what} is not an object", retryable=False)
        return data


def paddle_event(payload: Mapping[str, Any]) -> WebhookEvent:
    """`{event_id, event_type, occurred_at, data}`: subscription.* events describe the
    subscription; a transaction.* event only when it names one and what it did to it."""
    event_id, event_type = payload.get("event_id"), payload.get("event_type")
    if not isinstance(event_id, str) or not event_id:
        raise BadWebhook("the Paddle event has no event_id")
    if not isinstance(event_type, str) or not event_type:
        raise BadWebhook("the Paddle event has no event_type")
    data = payload.get("data")
    occurred = _time(payload.get("occurred_at"))
    snapshot: GatewaySnapshot | None = None
    if isinstance(data, dict) and event_type.startswith("subscription."):
        snapshot = subscription_snapshot(data, event_type=event_type, occurred_at=occurred)
    elif isinstance(data, dict) and event_type.startswith("transaction."):
        snapshot = _transaction_snapshot(data, event_type, occurred)
    return WebhookEvent(event_id=event_id, event_type=event_type, snapshot=snapshot)


def subscription_snapshot(
    data: Mapping[str, Any], *, event_type: str, occurred_at: datetime | None = None
) -> GatewaySnapshot:
    status = str(data["status"])
    period = data.get("current_billing_period") or {}
    scheduled = data.get("scheduled_change") or {}
    as_of = _time(data.get("updated_at")) or occurred_at
    if as_of is None:
        raise BadWebhook("the Paddle subscription has no updated_at")
    return GatewaySnapshot(
        gateway=NAME,
        subscription_id=str(data["id"]),
        gateway_status=status,
        as_of=as_of,
        event_type=event_type,
        customer_id=data.get("customer_id") or None,
        plan_id=_price_of(data.get("items")),
        period_start=_time(period.get("starts_at")),
        period_end=_time(period.get("ends_at")),
        cancel_at_period_end=scheduled.get("action") == "cancel",
        ended_at=_time(data.get("canceled_at")) if status == "canceled" else None,
        user_id=_user_of(data.get("custom_data")),
    )


# What a transaction event says about its subscription: paid for the billing period, or not.
_TRANSACTION_STATUS = {"transaction.completed": "active", "transaction.past_due": "past_due"}


def _transaction_snapshot(
    data: Mapping[str, Any], event_type: str, occurred_at: datetime | None
) -> GatewaySnapshot | None:
    status = _TRANSACTION_STATUS.get(event_type)
    subscription_id = data.get("subscription_id")
    period = data.get("billing_period") or {}
    as_of = _time(data.get("updated_at")) or occurred_at
    if status is None or not subscription_id or not period or as_of is None:
        return None
    return GatewaySnapshot(
        gateway=NAME,
        subscription_id=str(subscription_id),
        gateway_status=status,
        as_of=as_of,
        event_type=event_type,
        customer_id=data.get("customer_id") or None,
        plan_id=_price_of(data.get("items")),
        period_start=_time(period.get("starts_at")),
        period_end=_time(period.get("ends_at")),
        cancel_at_period_end=None,  # a transaction does not say
        user_id=_user_of(data.get("custom_data")),
    )


def _price_of(items: Any) -> str | None:
    for item in items or []:
        price = (item or {}).get("price") or {}
        if price.get("id"):
            return str(price["id"])
        if item.get("price_id"):
            return str(item["price_id"])
    return None


def _user_of(custom: Any) -> uuid.UUID | None:
    if not isinstance(custom, dict) or not custom.get("user_id"):
        return None
    try:
        return uuid.UUID(str(custom["user_id"]))
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
