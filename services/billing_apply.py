"""Applying what a gateway says about a subscription (a webhook, or the answer to a change
we asked for) to the merchant's Subscription, once and never backwards."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.billing import (
    BillingState,
    GatewaySnapshot,
    PlanCatalog,
    apply,
    changes,
    replaced,
)
from integrations.billing_gateways import plan_catalog
from kernel.enums import SubscriptionStatus
from kernel.settings import get_settings
from models.billing import Subscription
from models.event import log_event
from services.usage import ensure_usage_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    subscription: Subscription
    # (gateway, subscription id) the applied one took the place of, still live there.
    replaced: tuple[str, str] | None = None


async def _locked(session: AsyncSession, snapshot: GatewaySnapshot) -> Subscription | None:
    """Ours for the gateway's subscription id, else the one its user id (notes /
    custom_data) names. Locked: two deliveries for one subscription take turns. Read
    afresh: the caller may hold the row from before its gateway call (a webhook or the
    calendar may have committed since)."""
    found = (
        await session.execute(
            select(Subscription)
            .where(
                Subscription.payment_gateway == snapshot.gateway,
                Subscription.gateway_subscription_id == snapshot.subscription_id,
            )
            .limit(1)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if found is not None or snapshot.user_id is None:
        return found
    return (
        await session.execute(
            select(Subscription)
            .where(Subscription.user_id == snapshot.user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


def _state(subscription: Subscription) -> BillingState:
    return BillingState.from_stored(
        plan_type=subscription.plan_type,
        status=subscription.status,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        payment_gateway=subscription.payment_gateway,
        gateway_subscription_id=subscription.gateway_subscription_id,
        gateway_customer_id=subscription.gateway_customer_id,
        gateway_plan_id=subscription.gateway_plan_id,
        metadata=subscription.metadata_,
    )


def _metadata(subscription: Subscription, new: BillingState) -> dict[str, Any]:
    """Our keys over the stored ones (other modules keep theirs there, e.g. the checkout's)."""
    meta = {**(subscription.metadata_ or {}), **new.metadata()}
    pending = meta.get("pending_checkout")
    if (
        isinstance(pending, dict)
        and pending.get("gateway") == new.payment_gateway
        and new.status is SubscriptionStatus.active
        and pending.get("subscription_id") in (None, new.gateway_subscription_id)
    ):
        meta["pending_checkout"] = None  # paid: the checkout is over
    return meta


async def apply_snapshot(
    session: AsyncSession,
    snapshot: GatewaySnapshot,
    *,
    source: str,
    catalog: PlanCatalog | None = None,
) -> Applied | None:
    """Move the subscription the snapshot is about; None when it changed nothing (stale,
    a duplicate, or about no subscription of ours). `source` says who brought it
    ("webhook:razorpay", "api"); `catalog` maps gateway plan ids to our plans (default:
    the process settings')."""
    catalog = catalog or plan_catalog(get_settings())
    context = {
        "gateway": snapshot.gateway,
        "gateway_subscription_id": snapshot.subscription_id,
        "event_type": snapshot.event_type,
        "gateway_status": snapshot.gateway_status,
        "source": source,
    }
    subscription = await _locked(session, snapshot)
    if subscription is None:
        log.warning("billing snapshot for no subscription of ours ignored", extra=context)
        return None
    if snapshot.user_id is not None and snapshot.user_id != subscription.user_id:
        # A subscription id is one merchant's: the gateway's data contradicts ours.
        log.warning("billing snapshot naming another user ignored", extra=context)
        return None
    old = _state(subscription)
    new = apply(old, snapshot, catalog)
    if new is None:
        log.info("billing snapshot ignored: stale, duplicate or not ours", extra=context)
        return None
    displaced = replaced(old, new)
    subscription.metadata_ = _metadata(subscription, new)
    subscription.plan_type = new.plan_type
    subscription.status = new.status
    subscription.current_period_start = new.period_start
    subscription.current_period_end = new.period_end
    subscription.payment_gateway = new.payment_gateway
    subscription.gateway_subscription_id = new.gateway_subscription_id
    subscription.gateway_customer_id = new.gateway_customer_id
    subscription.gateway_plan_id = new.gateway_plan_id
    await session.flush()
    if (new.period_start, new.period_end) != (old.period_start, old.period_end):
        await ensure_usage_record(session, subscription, new.period_start, new.period_end)
    if replace(new, as_of=old.as_of) != old:  # more than the gateway's clock moved
        moved = changes(old, new)
        await log_event(
            session,
            f"subscription.{moved[0]}",
            user_id=subscription.user_id,
            entity="subscription",
            entity_id=subscription.id,
            payload={
                **context,
                "changes": moved,
                "plan_type": new.plan_type.value,
                "status": new.status.value,
                "period_start": new.period_start.isoformat(),
                "period_end": new.period_end.isoformat(),
                "cancel_at_period_end": new.cancel_at_period_end,
            },
        )
        log.info("billing snapshot applied", extra={**context, "changes": moved})
    if displaced is not None:
        await log_event(
            session,
            "subscription.replaced",
            user_id=subscription.user_id,
            entity="subscription",
            entity_id=subscription.id,
            payload={
                **context,
                "replaced_gateway": displaced[0],
                "replaced_subscription_id": displaced[1],
                "why": "a second subscription was paid; the first is cancelled at its gateway",
            },
        )
        log.warning(
            "a second paid subscription replaced a live one",
            extra={**context, "replaced": displaced},
        )
    return Applied(subscription, displaced)
