"""What a payment gateway says about a subscription, and how it moves ours. Pure.

Webhooks arrive late, twice and out of order, so `apply` only ever moves a subscription
forward: a snapshot counts when its progress key (gateway time, period, lifecycle rank)
is past the stored one. Progress that cannot go backwards in reality (the period end,
the customer id, when a payment first failed in a period) is taken from stale snapshots
too, so the end state does not depend on the order of arrival.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from kernel.enums import PlanType, SubscriptionStatus

GATEWAYS = ("razorpay", "paddle")

# Each gateway's states in lifecycle order: the tiebreak for two snapshots of one instant.
_RANK: dict[str, tuple[str, ...]] = {
    "razorpay": (
        "created",
        "authenticated",
        "active",
        "pending",
        "halted",
        "paused",
        "cancelled",
        "completed",
        "expired",
    ),
    "paddle": ("trialing", "active", "past_due", "paused", "canceled"),
}

# None: not paid yet, the subscription keeps the status it has.
_STATUS: dict[str, dict[str, SubscriptionStatus | None]] = {
    "razorpay": {
        "created": None,
        "authenticated": None,
        "active": SubscriptionStatus.active,
        "pending": SubscriptionStatus.past_due,
        "halted": SubscriptionStatus.past_due,
        "paused": SubscriptionStatus.cancelled,
        "cancelled": SubscriptionStatus.cancelled,
        "completed": SubscriptionStatus.expired,
        # Never authenticated before its link's expire_by: it was never paid either.
        "expired": None,
    },
    "paddle": {
        "trialing": SubscriptionStatus.active,
        "active": SubscriptionStatus.active,
        "past_due": SubscriptionStatus.past_due,
        "paused": SubscriptionStatus.cancelled,
        "canceled": SubscriptionStatus.cancelled,
    },
}

# The gateway will not bring these back on its own: their period is final.
_ENDED = {("razorpay", "cancelled"), ("razorpay", "completed"), ("paddle", "canceled")}


class UnknownGatewayStatus(ValueError):
    """A gateway state this code does not know: the snapshot cannot be mapped."""


@dataclass(frozen=True)
class GatewaySnapshot:
    """One subscription as a gateway described it at `as_of` (its own clock)."""

    gateway: str
    subscription_id: str
    gateway_status: str
    as_of: datetime
    event_type: str
    customer_id: str | None = None
    plan_id: str | None = None  # Razorpay plan id / Paddle price id
    period_start: datetime | None = None
    period_end: datetime | None = None
    # None: the gateway's answer does not say (it stays as it was).
    cancel_at_period_end: bool | None = False
    ended_at: datetime | None = None
    user_id: UUID | None = None
    # A plan change asked for at the period's end (Razorpay keeps the old plan until then).
    scheduled_plan_id: str | None = None

    @property
    def from_api(self) -> bool:
        """The gateway's answer to our own call (event_type api.*), not a webhook."""
        return self.event_type.startswith("api.")


@dataclass(frozen=True)
class PlanCatalog:
    """Our paid plans' ids at each gateway (Razorpay plan ids, Paddle price ids)."""

    ids: Mapping[str, Mapping[PlanType, str]] = field(default_factory=dict)

    def plan_of(self, gateway: str, gateway_id: str | None) -> PlanType | None:
        for plan, known in self.ids.get(gateway, {}).items():
            if gateway_id is not None and known == gateway_id:
                return plan
        return None

    def gateway_id(self, gateway: str, plan: PlanType) -> str | None:
        return self.ids.get(gateway, {}).get(plan)


@dataclass(frozen=True)
class BillingState:
    """The subscription fields a gateway moves, as stored (with Subscription.metadata_)."""

    plan_type: PlanType
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime
    payment_gateway: str | None = None
    gateway_subscription_id: str | None = None
    gateway_customer_id: str | None = None
    gateway_plan_id: str | None = None
    gateway_status: str | None = None
    as_of: datetime | None = None
    cancel_at_period_end: bool = False
    past_due_since: datetime | None = None
    scheduled_plan: PlanType | None = None
    as_of_from_api: bool = False  # as_of is our clock at a gateway's answer

    def metadata(self) -> dict[str, Any]:
        """The keys every module reads from Subscription.metadata_ (see PLAN_METADATA_KEYS)."""
        return {
            "gateway_status": self.gateway_status,
            "as_of": _iso(self.as_of),
            "as_of_from_api": self.as_of_from_api,
            "cancel_at_period_end": self.cancel_at_period_end,
            "past_due_since": _iso(self.past_due_since),
            "scheduled_plan": None if self.scheduled_plan is None else self.scheduled_plan.value,
        }

    @classmethod
    def from_stored(
        cls,
        *,
        plan_type: PlanType,
        status: SubscriptionStatus,
        period_start: datetime,
        period_end: datetime,
        payment_gateway: str | None,
        gateway_subscription_id: str | None,
        gateway_customer_id: str | None,
        gateway_plan_id: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> BillingState:
        meta = metadata or {}
        scheduled = meta.get("scheduled_plan")
        return cls(
            plan_type=plan_type,
            status=status,
            period_start=period_start,
            period_end=period_end,
            payment_gateway=payment_gateway,
            gateway_subscription_id=gateway_subscription_id,
            gateway_customer_id=gateway_customer_id,
            gateway_plan_id=gateway_plan_id,
            gateway_status=meta.get("gateway_status"),
            as_of=_parse(meta.get("as_of")),
            as_of_from_api=bool(meta.get("as_of_from_api", False)),
            cancel_at_period_end=bool(meta.get("cancel_at_period_end", False)),
            past_due_since=_parse(meta.get("past_due_since")),
            scheduled_plan=PlanType(scheduled) if scheduled else None,
        )


def seed_status(
    gateway: str, gateway_status: str, current: SubscriptionStatus
) -> SubscriptionStatus:
    """The seed's status for a gateway state; `current` for a subscription not paid yet."""
    try:
        mapped = _STATUS[gateway][gateway_status]
    except KeyError:
        raise UnknownGatewayStatus(f"{gateway} subscription state {gateway_status!r}") from None
    return current if mapped is None else mapped


def known_status(gateway: str, gateway_status: str) -> bool:
    return gateway_status in _STATUS.get(gateway, {})


def _rank(gateway: str, gateway_status: str | None) -> int:
    order = _RANK.get(gateway, ())
    return order.index(gateway_status) if gateway_status in order else -1


_TICK = timedelta(seconds=1)
_FLOOR = datetime.min.replace(tzinfo=UTC)
_CEILING = datetime.max.replace(tzinfo=UTC)


# How finely each gateway's webhooks tell time: Razorpay's created_at is in whole seconds.
_RESOLUTION = {"razorpay": timedelta(seconds=1)}


def _tick(gateway: str, moment: datetime) -> datetime:
    """`moment` as finely as the gateway's webhooks tell time."""
    return moment.replace(microsecond=0) if gateway in _RESOLUTION else moment


def _key(
    gateway: str,
    as_of: datetime | None,
    status: str | None,
    period_end: datetime | None,
    from_api: bool,
) -> tuple[datetime, datetime, int, bool, datetime]:
    """How far along a subscription is: the gateway's clock at its own resolution, then
    (for news of one instant) the later period (a charge that passed after one that
    failed), then the lifecycle. An ended one is as far as it gets.

    Within one tick, the answer to our own call beats a webhook: a webhook stamped in the
    second of our call was made before it, or says the same (a renewal after it has a later
    period and wins above). Two of our answers are ordered by our clock."""
    moment = _tick(gateway, as_of or _FLOOR)
    end = _CEILING if (gateway, status) in _ENDED else (period_end or _FLOOR)
    return (moment, end, _rank(gateway, status), from_api, as_of or _FLOOR)


def _later(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    return max(a, b)


def apply(
    current: BillingState, snapshot: GatewaySnapshot, catalog: PlanCatalog
) -> BillingState | None:
    """The state after `snapshot`, or None when it changes nothing (stale, a duplicate, a
    state we do not know, or another subscription's news that must not replace ours)."""
    if not known_status(snapshot.gateway, snapshot.gateway_status):
        return None
    same = (
        current.payment_gateway == snapshot.gateway
        and current.gateway_subscription_id == snapshot.subscription_id
    )
    if not same:
        new = _adopt(current, snapshot, catalog)
    elif _key(
        snapshot.gateway,
        snapshot.as_of,
        snapshot.gateway_status,
        snapshot.period_end or current.period_end,  # no period: news of the same one
        snapshot.from_api,
    ) > _key(
        snapshot.gateway,
        current.as_of,
        current.gateway_status,
        current.period_end,
        current.as_of_from_api,
    ):
        new = _advance(current, snapshot, catalog)
    else:
        new = _stale(current, snapshot)
    return None if new is None or new == current else new


def _adopt(
    current: BillingState, snapshot: GatewaySnapshot, catalog: PlanCatalog
) -> BillingState | None:
    """A subscription other than the stored one: the first one a trial gets, or a new
    paid one replacing the old. Late news of an old one (or an unpaid new one) changes
    nothing."""
    if current.gateway_subscription_id is not None:
        if _STATUS[snapshot.gateway][snapshot.gateway_status] is not SubscriptionStatus.active:
            return None
        # At the snapshot's gateway's resolution: Razorpay's second may hold our Paddle time.
        if current.as_of is not None and snapshot.as_of < _tick(snapshot.gateway, current.as_of):
            return None
    fresh = replace(
        current,
        payment_gateway=snapshot.gateway,
        gateway_subscription_id=snapshot.subscription_id,
        gateway_customer_id=None,
        gateway_plan_id=None,
        gateway_status=None,
        as_of=None,
        as_of_from_api=False,
        cancel_at_period_end=False,
        past_due_since=None,
        scheduled_plan=None,
    )
    period = (snapshot.period_start, snapshot.period_end)
    if period[0] is not None and period[1] is not None:
        # The new subscription's own period, even if it ends before the old one did.
        fresh = replace(fresh, period_start=period[0], period_end=period[1])
    return _advance(fresh, snapshot, catalog)


def _advance(
    current: BillingState, snapshot: GatewaySnapshot, catalog: PlanCatalog
) -> BillingState:
    """`snapshot` is the newest word on the stored subscription."""
    status = seed_status(snapshot.gateway, snapshot.gateway_status, current.status)
    if current.status is SubscriptionStatus.expired and status is not SubscriptionStatus.active:
        # Expired (by the calendar, after the grace or the paid period): only a payment
        # that passes brings it back; a later failure or end is news, not a new grace.
        status = SubscriptionStatus.expired
    plan = catalog.plan_of(snapshot.gateway, snapshot.plan_id)
    start, end = current.period_start, current.period_end
    if snapshot.period_start is not None and snapshot.period_end is not None:
        start, end = _later((start, end), (snapshot.period_start, snapshot.period_end))
    if (snapshot.gateway, snapshot.gateway_status) in _ENDED and snapshot.ended_at is not None:
        # What was paid for ends when the gateway ended the subscription.
        end = snapshot.ended_at
        start = min(start, end - _TICK)
    if status is SubscriptionStatus.past_due:
        # One failed renewal per period: a past_due in a later period is a new failure.
        same_episode = current.status is status and start == current.period_start
        since = (current.past_due_since if same_episode else None) or snapshot.as_of
    else:
        since = None
    scheduled = current.scheduled_plan
    if snapshot.scheduled_plan_id is not None:
        scheduled = catalog.plan_of(snapshot.gateway, snapshot.scheduled_plan_id)
    elif snapshot.event_type == "api.change_plan":
        scheduled = None  # a change made now replaces the one that was waiting
    paid = _STATUS[snapshot.gateway][snapshot.gateway_status] is not None
    # Not paid yet (created, authenticated): the subscription is recorded, the plan is not.
    new_plan = (plan if paid else None) or current.plan_type
    plan_id = (snapshot.plan_id if paid else None) or current.gateway_plan_id
    if scheduled is not None and scheduled is new_plan:
        scheduled = None
    return replace(
        current,
        plan_type=new_plan,
        status=status,
        period_start=start,
        period_end=end,
        gateway_customer_id=snapshot.customer_id or current.gateway_customer_id,
        gateway_plan_id=plan_id,
        gateway_status=snapshot.gateway_status,
        as_of=snapshot.as_of,
        as_of_from_api=snapshot.from_api,
        cancel_at_period_end=current.cancel_at_period_end
        if snapshot.cancel_at_period_end is None
        else snapshot.cancel_at_period_end,
        past_due_since=since,
        scheduled_plan=scheduled,
    )


def _stale(current: BillingState, snapshot: GatewaySnapshot) -> BillingState:
    """Older news of the stored subscription: only what cannot go back is taken from it."""
    new = current
    if current.gateway_customer_id is None and snapshot.customer_id:
        new = replace(new, gateway_customer_id=snapshot.customer_id)
    ended = (snapshot.gateway, current.gateway_status) in _ENDED
    if snapshot.period_start is not None and snapshot.period_end is not None:
        if not ended:
            start, end = _later(
                (new.period_start, new.period_end), (snapshot.period_start, snapshot.period_end)
            )
            new = replace(new, period_start=start, period_end=end)
        elif new.period_start < snapshot.period_start < new.period_end - _TICK:
            # Ended: the end is the gateway's, but the last period's start still counts.
            new = replace(new, period_start=snapshot.period_start)
    if (
        current.status is SubscriptionStatus.past_due
        and current.past_due_since is not None
        and snapshot.as_of < current.past_due_since
        and snapshot.period_start == current.period_start
        and seed_status(snapshot.gateway, snapshot.gateway_status, current.status)
        is SubscriptionStatus.past_due
    ):
        # The payment failed earlier in this period than the first news we had of it.
        new = replace(new, past_due_since=snapshot.as_of)
    return new


def replaced(old: BillingState, new: BillingState) -> tuple[str, str] | None:
    """(gateway, subscription id) of the stored subscription that `new` took the place of,
    when the gateway has not ended it: a second checkout paid while the first was live (or
    still payable). It would go on charging, and its news would take the account back."""
    if old.payment_gateway is None or old.gateway_subscription_id is None:
        return None
    if (new.payment_gateway, new.gateway_subscription_id) == (
        old.payment_gateway,
        old.gateway_subscription_id,
    ):
        return None
    if (old.payment_gateway, old.gateway_status) in _ENDED:
        return None
    return old.payment_gateway, old.gateway_subscription_id


def _paid_and_active(state: BillingState) -> bool:
    gateway, status = state.payment_gateway, state.gateway_status
    return (
        state.status is SubscriptionStatus.active
        and gateway is not None
        and status is not None
        and _STATUS.get(gateway, {}).get(status) is SubscriptionStatus.active
    )


def changes(old: BillingState, new: BillingState) -> list[str]:
    """What moved, most significant first: the Event names `subscription.<change>`."""
    found: list[str] = []
    if _paid_and_active(new) and not _paid_and_active(old):
        found.append("activated")  # also a trial's first paid subscription
    elif new.status is not old.status and new.status is not SubscriptionStatus.active:
        found.append(
            {
                SubscriptionStatus.past_due: "past_due",
                SubscriptionStatus.cancelled: "cancelled",
                SubscriptionStatus.expired: "expired",
            }[new.status]
        )
    if new.plan_type is not old.plan_type:
        found.append("plan_changed")
    if new.scheduled_plan is not old.scheduled_plan and new.scheduled_plan is not None:
        found.append("plan_change_scheduled")
    if new.cancel_at_period_end != old.cancel_at_period_end:
        found.append("cancel_scheduled" if new.cancel_at_period_end else "cancel_withdrawn")
    if (new.period_start, new.period_end) != (old.period_start, old.period_end):
        found.append("period_changed")
    if not found:
        found.append("updated")
    return found


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
