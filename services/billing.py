"""The merchant's plan and the requests a merchant makes of a gateway: checkout, change of
plan, cancel, resume. The JSON API (api/billing_api.py) and the usage page share these.

A change asked of a gateway is applied here from the gateway's own answer (its snapshot,
through services.billing_apply), so the page shows it at once; the webhook that follows
carries the same state and, applied by the same rule, never moves it backwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.billing import GatewaySnapshot
from domain.plans import COUNTERS, PAID_PLANS, PLAN_LIMITS, Entitlement
from integrations.billing_gateways import BillingGateway, Checkout, billing_gateways, plan_catalog
from kernel.enums import PlanType, SubscriptionStatus
from kernel.errors import Conflict, Invalid
from kernel.settings import Settings
from models.billing import Subscription
from models.event import log_event
from models.user import User
from services.billing_apply import apply_snapshot
from services.usage import (
    UsageCounts,
    UsageLimits,
    ensure_subscription,
    entitlement_of,
    get_usage_summary,
    subscription_of,
)

When = Literal["now", "period_end"]
# A subscription the gateway is still charging: a new checkout would charge twice.
_LIVE = (SubscriptionStatus.active, SubscriptionStatus.past_due)


class PriceOut(BaseModel):
    currency: str  # ISO 4217: INR on Razorpay, USD on Paddle
    amount_minor: int  # paise, cents


class PlanOut(BaseModel):
    plan_type: PlanType
    prices: dict[str, PriceOut]  # gateway name -> price per billing period
    limits: UsageLimits


class BillingOut(BaseModel):
    plan_type: PlanType
    status: SubscriptionStatus
    current_period_start: datetime
    current_period_end: datetime
    payment_gateway: str | None
    gateway_subscription_id: str | None
    cancel_at_period_end: bool
    scheduled_plan: PlanType | None  # a downgrade waiting for the period's end
    entitled: bool
    entitlement_reason: str | None  # trial_ended, cancelled, expired, past_due
    limits: UsageLimits
    usage: UsageCounts
    plans: list[PlanOut]  # the plans a checkout can buy
    gateways: list[str]  # the gateways configured on this deployment


def _limits(plan: PlanType) -> UsageLimits:
    limits = PLAN_LIMITS[plan]
    return UsageLimits(**{c: getattr(limits, c) for c in COUNTERS})


def plans_out() -> list[PlanOut]:
    return [
        PlanOut(
            plan_type=plan,
            prices={
                gateway: PriceOut(currency=price.currency, amount_minor=price.amount_minor)
                for gateway, price in PLAN_LIMITS[plan].prices.items()
            },
            limits=_limits(plan),
        )
        for plan in PAID_PLANS
    ]


def _meta(subscription: Subscription) -> dict[str, Any]:
    return dict(subscription.metadata_ or {})


def _scheduled(meta: Mapping[str, Any]) -> PlanType | None:
    value = meta.get("scheduled_plan")
    return PlanType(value) if value in PlanType.__members__ else None


def _entitlement(subscription: Subscription, settings: Settings, now: datetime) -> Entitlement:
    return entitlement_of(subscription, now, grace=timedelta(days=settings.billing_grace_days))


async def entitlement_for(
    session: AsyncSession, user_id: uuid.UUID, settings: Settings, *, now: datetime | None = None
) -> Entitlement | None:
    """Whether the merchant may send and suggest now, and why not; None before the first
    subscription exists (the trial is made with the account)."""
    subscription = (
        await session.execute(select(Subscription).where(Subscription.user_id == user_id))
    ).scalar_one_or_none()
    if subscription is None:
        return None
    return _entitlement(subscription, settings, now or datetime.now(UTC))


def is_running(view: BillingOut) -> bool:
    """A gateway is charging for the plan: change, cancel or resume it, do not buy again."""
    return bool(view.gateway_subscription_id) and view.status in _LIVE


async def billing_view(
    session: AsyncSession,
    user_id: uuid.UUID,
    settings: Settings,
    *,
    gateways: Mapping[str, BillingGateway] | None = None,
    now: datetime | None = None,
) -> BillingOut:
    """The plan, its state and usage, and what can be bought. Creates the trial of an
    account made before every account got one, so the caller commits."""
    now = now or datetime.now(UTC)
    if gateways is None:
        gateways = billing_gateways(settings)
    await ensure_subscription(session, user_id, now=now)
    summary = await get_usage_summary(session, user_id, now=now)
    subscription = await subscription_of(session, user_id)
    meta = _meta(subscription)
    verdict = _entitlement(subscription, settings, now)
    return BillingOut(
        plan_type=subscription.plan_type,
        status=subscription.status,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
        payment_gateway=subscription.payment_gateway,
        gateway_subscription_id=subscription.gateway_subscription_id,
        cancel_at_period_end=bool(meta.get("cancel_at_period_end")),
        scheduled_plan=_scheduled(meta),
        entitled=verdict.entitled,
        entitlement_reason=verdict.reason,
        limits=summary.limits,
        usage=summary.usage,
        plans=plans_out(),
        gateways=_offered(gateways),
    )


def _offered(gateways: Mapping[str, BillingGateway]) -> list[str]:
    """The gateways a checkout may use: without its webhook secret a gateway's payment
    would never reach us (the webhook route answers 503), so it is not offered."""
    return sorted(name for name, gateway in gateways.items() if gateway.webhooks_configured)


def _gateway(gateways: Mapping[str, BillingGateway], name: str | None) -> BillingGateway:
    offered = _offered(gateways)
    gateway = gateways.get(name or "")
    if gateway is None or name not in offered:
        raise Invalid(
            f"the payment gateway {name!r} is not configured here (its keys and webhook "
            f"secret); configured: {', '.join(offered) or 'none'}",
            code="gateway_not_configured",
        )
    return gateway


def _paid(plan: PlanType) -> PlanType:
    if plan not in PAID_PLANS:
        raise Invalid(
            f"{plan.value} cannot be bought: choose one of "
            f"{', '.join(p.value for p in PAID_PLANS)}",
            code="plan_not_for_sale",
        )
    return plan


def _not_running(subscription: Subscription) -> None:
    if subscription.gateway_subscription_id and subscription.status in _LIVE:
        raise Conflict(
            f"a {subscription.plan_type.value} subscription with {subscription.payment_gateway}"
            " is running: change its plan instead of buying another",
            code="already_subscribed",
        )


async def _locked(session: AsyncSession, user_id: uuid.UUID) -> Subscription:
    return (
        await session.execute(
            select(Subscription)
            .where(Subscription.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def start_checkout(
    session: AsyncSession,
    user: User,
    plan: PlanType,
    gateway_name: str,
    gateways: Mapping[str, BillingGateway],
    return_url: str,
) -> Checkout:
    """A checkout at the gateway for a paid plan. The plan changes only once the gateway's
    webhook says the payment went through; until then the checkout is `pending_checkout`."""
    gateway = _gateway(gateways, gateway_name)
    _paid(plan)
    await ensure_subscription(session, user.id)
    _not_running(await subscription_of(session, user.id))
    # No row lock across the gateway's HTTP call: its webhooks may need the row meanwhile.
    checkout = await gateway.checkout(
        user_id=user.id, email=user.email, plan=plan, return_url=return_url
    )
    subscription = await _locked(session, user.id)
    _not_running(subscription)  # a webhook may have activated one in the meantime
    subscription.metadata_ = _meta(subscription) | {
        "pending_checkout": {"gateway": gateway.name, "subscription_id": checkout.subscription_id}
    }
    await log_event(
        session,
        "subscription.checkout_started",
        user_id=user.id,
        entity="subscription",
        entity_id=subscription.id,
        payload={
            "plan": plan.value,
            "gateway": gateway.name,
            "gateway_subscription_id": checkout.subscription_id,
        },
    )
    return checkout


async def _running(
    session: AsyncSession, user_id: uuid.UUID, gateways: Mapping[str, BillingGateway]
) -> tuple[Subscription, BillingGateway, str]:
    """The subscription a gateway is running for the merchant; 409 when there is none."""
    await ensure_subscription(session, user_id)
    subscription = await subscription_of(session, user_id)
    subscription_id = subscription.gateway_subscription_id
    if not subscription_id or subscription.status not in _LIVE:
        raise Conflict(
            "there is no paid subscription to change: choose a plan first",
            code="no_subscription",
        )
    gateway = gateways.get(subscription.payment_gateway or "")
    if gateway is None:
        raise Conflict(
            f"the subscription is with {subscription.payment_gateway}, "
            "which is not configured here",
            code="gateway_not_configured",
        )
    return subscription, gateway, subscription_id


async def _requested(
    session: AsyncSession, subscription: Subscription, kind: str, payload: dict[str, Any]
) -> None:
    await log_event(
        session,
        f"subscription.{kind}_requested",
        user_id=subscription.user_id,
        entity="subscription",
        entity_id=subscription.id,
        payload={"gateway": subscription.payment_gateway, **payload},
    )


async def _apply(session: AsyncSession, snapshot: GatewaySnapshot, settings: Settings) -> None:
    """The gateway's answer, applied at once so the page shows it; the webhook that
    follows says the same and changes nothing more."""
    await apply_snapshot(session, snapshot, source="api", catalog=plan_catalog(settings))


async def change_plan(
    session: AsyncSession,
    user_id: uuid.UUID,
    plan: PlanType,
    when: When,
    gateways: Mapping[str, BillingGateway],
    settings: Settings,
) -> None:
    """Upgrade or downgrade: at once (prorated by the gateway) or at the period's end."""
    _paid(plan)
    subscription, gateway, subscription_id = await _running(session, user_id, gateways)
    if plan is subscription.plan_type and _scheduled(_meta(subscription)) is None:
        raise Conflict(f"the subscription is on {plan.value} already", code="same_plan")
    if when == "period_end" and not gateway.changes_at_period_end:
        raise Invalid(
            f"{gateway.name.capitalize()} changes the plan at once (prorated); it cannot wait "
            "for the period's end",
            code="not_at_period_end",
        )
    snapshot = await gateway.change_plan(subscription_id, plan, at_period_end=when == "period_end")
    await _requested(session, subscription, "change", {"plan": plan.value, "when": when})
    await _apply(session, snapshot, settings)


async def cancel(
    session: AsyncSession,
    user_id: uuid.UUID,
    at_period_end: bool,
    gateways: Mapping[str, BillingGateway],
    settings: Settings,
) -> None:
    """Cancel at the period's end (the plan runs until then) or at once."""
    subscription, gateway, subscription_id = await _running(session, user_id, gateways)
    if at_period_end and _meta(subscription).get("cancel_at_period_end"):
        raise Conflict("the subscription already ends with this period", code="already_cancelling")
    snapshot = await gateway.cancel(subscription_id, at_period_end=at_period_end)
    await _requested(session, subscription, "cancel", {"at_period_end": at_period_end})
    await _apply(session, snapshot, settings)


async def resume(
    session: AsyncSession,
    user_id: uuid.UUID,
    gateways: Mapping[str, BillingGateway],
    settings: Settings,
) -> None:
    """Undo a cancellation set for the period's end, or resume a paused subscription."""
    subscription, gateway, subscription_id = await _running(session, user_id, gateways)
    meta = _meta(subscription)
    if not meta.get("cancel_at_period_end") and meta.get("gateway_status") != "paused":
        raise Conflict("the subscription is not set to end: nothing to resume", code="not_paused")
    snapshot = await gateway.resume(subscription_id)
    await _requested(session, subscription, "resume", {})
    await _apply(session, snapshot, settings)


async def confirm_razorpay_return(
    session: AsyncSession,
    user_id: uuid.UUID,
    gateways: Mapping[str, BillingGateway],
    *,
    payment_id: str,
    subscription_id: str,
    signature: str,
) -> None:
    """Razorpay's checkout handler result: signed with our key secret over the payment and
    subscription ids, and for this merchant's own checkout. Changes nothing: the webhook
    activates the plan. Invalid when either check fails."""
    gateway = gateways.get("razorpay")
    refused = Invalid(
        "the payment confirmation could not be verified, so nothing was changed; "
        "if you paid, the plan changes as soon as Razorpay confirms the payment to us",
        code="bad_signature",
    )
    if gateway is None or not (payment_id and subscription_id and signature):
        raise refused
    if not gateway.verify_checkout_signature(
        payment_id=payment_id, subscription_id=subscription_id, signature=signature
    ):
        raise refused
    subscription = await subscription_of(session, user_id)
    pending = _meta(subscription).get("pending_checkout") or {}
    ours = {pending.get("subscription_id"), subscription.gateway_subscription_id}
    if subscription_id not in ours:
        raise refused
