"""Razorpay Subscriptions through the official `razorpay` SDK.

The SDK is synchronous (requests): every call runs in a thread. It signs nothing for
us to send; it checks what Razorpay sends: webhook bodies (`X-Razorpay-Signature`, hex
HMAC-SHA256 with the webhook secret) and the checkout handler's result (HMAC of
`payment_id|subscription_id` with the key secret).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import razorpay
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError

from domain.billing import GatewaySnapshot, PlanCatalog
from integrations.billing_port import BadWebhook, Checkout, WebhookEvent, header
from kernel.enums import PlanType
from kernel.errors import IntegrationError, Invalid, Refused
from kernel.settings import Settings

NAME = "razorpay"
TIMEOUT_S = 30
# Monthly cycles a subscription is created for: ten years, renewed until cancelled.
TOTAL_COUNT = 120


class RazorpayGateway:
    name = NAME
    changes_at_period_end = True  # schedule_change_at: cycle_end
    undoes_cancel_at_period_end = False

    def __init__(
        self,
        *,
        key_id: str,
        key_secret: str,
        webhook_secret: str | None,
        catalog: PlanCatalog,
        api_url: str | None = None,
    ) -> None:
        options = {"base_url": api_url.rstrip("/")} if api_url else {}
        self._client = razorpay.Client(auth=(key_id, key_secret), **options)
        self._webhook_secret = webhook_secret
        self._catalog = catalog

    @classmethod
    def from_settings(cls, settings: Settings, catalog: PlanCatalog) -> RazorpayGateway:
        assert settings.razorpay_key_id and settings.razorpay_key_secret
        secret = settings.razorpay_webhook_secret
        return cls(
            key_id=settings.razorpay_key_id,
            key_secret=settings.razorpay_key_secret.get_secret_value(),
            webhook_secret=secret.get_secret_value() if secret else None,
            catalog=catalog,
            api_url=settings.razorpay_api_url,
        )

    @property
    def webhooks_configured(self) -> bool:
        return bool(self._webhook_secret)

    # --- calls -------------------------------------------------------------------------

    async def checkout(
        self, *, user_id: uuid.UUID, email: str, plan: PlanType, return_url: str
    ) -> Checkout:
        """The subscription is created here (status created); Standard Checkout opens on
        its short_url, and its notes carry our user id into every webhook."""
        entity = await self._call(
            "create the subscription",
            self._client.subscription.create,
            {
                "plan_id": self._plan_id(plan),
                "total_count": TOTAL_COUNT,
                "quantity": 1,
                "customer_notify": 1,
                # return_url: where a checkout page may send the buyer back (the sandbox does).
                "notes": {"user_id": str(user_id), "return_url": return_url},
                "notify_info": {"notify_email": email},
            },
        )
        url = entity.get("short_url")
        if not isinstance(url, str) or not url:
            raise IntegrationError(
                "Razorpay created the subscription without a checkout link (short_url)",
                retryable=False,
            )
        return Checkout(url=url, gateway=NAME, subscription_id=str(entity["id"]))

    async def change_plan(
        self, subscription_id: str, plan: PlanType, *, at_period_end: bool
    ) -> GatewaySnapshot:
        plan_id = self._plan_id(plan)
        entity = await self._call(
            "change the plan",
            self._client.subscription.edit,
            subscription_id,
            {"plan_id": plan_id, "schedule_change_at": "cycle_end" if at_period_end else "now"},
        )
        # At the cycle's end Razorpay keeps the old plan on the subscription until then.
        return subscription_snapshot(
            entity,
            as_of=_now(),
            event_type="api.change_plan",
            scheduled_plan_id=plan_id if at_period_end else None,
        )

    async def cancel(self, subscription_id: str, *, at_period_end: bool) -> GatewaySnapshot:
        entity = await self._call(
            "cancel the subscription",
            self._client.subscription.cancel,
            subscription_id,
            {"cancel_at_cycle_end": 1 if at_period_end else 0},
        )
        snapshot = subscription_snapshot(entity, as_of=_now(), event_type="api.cancel")
        if at_period_end and entity.get("status") == "active":
            snapshot = replace(snapshot, cancel_at_period_end=True)
        return snapshot

    async def resume(self, subscription_id: str) -> GatewaySnapshot:
        """A paused subscription resumes now. Razorpay cannot take back a cancellation set
        for the cycle's end: that is refused, and a new checkout is the way back."""
        entity = await self._call(
            "read the subscription", self._client.subscription.fetch, subscription_id
        )
        if entity.get("status") == "paused":
            entity = await self._call(
                "resume the subscription",
                self._client.subscription.resume,
                subscription_id,
                {"resume_at": "now"},
            )
        elif _ends_with_cycle(entity):
            raise Refused(
                "Razorpay cannot undo a cancellation at the end of the billing cycle; "
                "choose a plan again once it has ended"
            )
        return subscription_snapshot(entity, as_of=_now(), event_type="api.resume")

    # --- signatures and webhooks ---------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        signature = header(headers, "X-Razorpay-Signature")
        if not self._webhook_secret or not signature:
            return False
        try:
            return bool(
                self._client.utility.verify_webhook_signature(
                    body.decode("utf-8"), signature, self._webhook_secret
                )
            )
        except (SignatureVerificationError, UnicodeDecodeError):
            return False

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        event_id = header(headers, "x-razorpay-event-id")
        if not event_id:
            raise BadWebhook("the x-razorpay-event-id header is missing")
        return razorpay_event(_json(body), event_id)

    def verify_checkout_signature(
        self, *, payment_id: str, subscription_id: str, signature: str
    ) -> bool:
        try:
            return bool(
                self._client.utility.verify_subscription_payment_signature(
                    {
                        "razorpay_payment_id": payment_id,
                        "razorpay_subscription_id": subscription_id,
                        "razorpay_signature": signature,
                    }
                )
            )
        except SignatureVerificationError:
            return False

    # --- helpers -------------------------------------------------------------------------

    def _plan_id(self, plan: PlanType) -> str:
        plan_id = self._catalog.gateway_id(NAME, plan)
        if plan_id is None:
            raise Invalid(f"{plan.value} is not offered through Razorpay (no plan id configured)")
        return plan_id

    async def _call(self, what: str, method: Callable[..., Any], *args: Any) -> dict[str, Any]:
        try:
            answer = await asyncio.to_thread(method, *args, timeout=TIMEOUT_S)
        except BadRequestError as exc:
            raise IntegrationError(
                f"Razorpay refused to {what}: {exc}", retryable=False, code="gateway_refused"
            ) from exc
        except (GatewayError, ServerError) as exc:
            raise IntegrationError(
                f"Razorpay failed to {what}: {exc}", retryable=True, code="gateway_unavailable"
            ) from exc
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors; bad JSON too
            raise IntegrationError(
                f"Razorpay could not be reached to {what}: {exc}",
                retryable=True,
                code="gateway_unavailable",
            ) from exc
        if not isinstance(answer, dict) or "id" not in answer:
            raise IntegrationError(
                f"Razorpay's answer to {what} is not a subscription", retryable=False
            )
        return answer


def razorpay_event(payload: Mapping[str, Any], event_id: str) -> WebhookEvent:
    """`{"event", "payload": {"subscription": {"entity"}}, "created_at"}`; an event without
    a subscription (payment.failed) has no snapshot: the subscription events say it."""
    event_type = payload.get("event")
    if not isinstance(event_type, str) or not event_type:
        raise BadWebhook("the Razorpay event has no 'event' name")
    entity = ((payload.get("payload") or {}).get("subscription") or {}).get("entity")
    if not isinstance(entity, dict):
        return WebhookEvent(event_id=event_id, event_type=event_type, snapshot=None)
    as_of = _time(payload.get("created_at"))
    if as_of is None:
        raise BadWebhook("the Razorpay event has no created_at")
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        snapshot=subscription_snapshot(entity, as_of=as_of, event_type=event_type),
    )


def subscription_snapshot(
    entity: Mapping[str, Any],
    *,
    as_of: datetime,
    event_type: str,
    scheduled_plan_id: str | None = None,
) -> GatewaySnapshot:
    notes = entity.get("notes")
    return GatewaySnapshot(
        gateway=NAME,
        subscription_id=str(entity["id"]),
        gateway_status=str(entity["status"]),
        as_of=as_of,
        event_type=event_type,
        customer_id=entity.get("customer_id") or None,
        plan_id=entity.get("plan_id") or None,
        period_start=_time(entity.get("current_start")),
        period_end=_time(entity.get("current_end")),
        cancel_at_period_end=_ends_with_cycle(entity) if entity.get("current_end") else None,
        ended_at=_time(entity.get("ended_at")),
        # Razorpay sends empty notes as [].
        user_id=_uuid(notes.get("user_id")) if isinstance(notes, dict) else None,
        scheduled_plan_id=scheduled_plan_id,
    )


def _ends_with_cycle(entity: Mapping[str, Any]) -> bool:
    """Razorpay has no cancel flag on the entity: a live subscription whose end_at is the
    current cycle's end will not renew (cancelled at cycle end, or its last cycle)."""
    end_at, current_end = entity.get("end_at"), entity.get("current_end")
    live = entity.get("status") in ("authenticated", "active")
    return bool(live and end_at and current_end and int(end_at) <= int(current_end))


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _now() -> datetime:
    return datetime.now(UTC)


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadWebhook("the webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise BadWebhook("the webhook body is not a JSON object")
    return payload
