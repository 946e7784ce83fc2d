"""domain.billing without a database: the gateway states' mapping, and `apply` never
moving a subscription backwards whatever the order its news arrives in."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.billing import (
    BillingState,
    GatewaySnapshot,
    PlanCatalog,
    UnknownGatewayStatus,
    apply,
    changes,
    replaced,
    seed_status,
)
from kernel.enums import PlanType, SubscriptionStatus

T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
DAY = timedelta(days=1)
CATALOG = PlanCatalog(
    {
        "razorpay": {
            PlanType.STARTER: "plan_s",
            PlanType.GROWTH: "plan_g",
            PlanType.PRO: "plan_p",
        },
        "paddle": {PlanType.STARTER: "pri_s", PlanType.GROWTH: "pri_g", PlanType.PRO: "pri_p"},
    }
)
TRIAL = BillingState(
    plan_type=PlanType.TRIAL,
    status=SubscriptionStatus.active,
    period_start=T0,
    period_end=T0 + 14 * DAY,
)


def snap(status: str, at: int, *, gateway: str = "razorpay", **kw: object) -> GatewaySnapshot:
    fields: dict[str, object] = {
        "customer_id": "cust_1",
        "plan_id": "plan_g" if gateway == "razorpay" else "pri_g",
        "period_start": T0 + DAY,
        "period_end": T0 + 31 * DAY,
    }
    fields.update(kw)
    return GatewaySnapshot(
        gateway=gateway,
        subscription_id="sub_1",
        gateway_status=status,
        as_of=T0 + timedelta(hours=at),
        event_type=f"subscription.{status}",
        **fields,  # type: ignore[arg-type]
    )


def run(state: BillingState, *snapshots: GatewaySnapshot) -> BillingState:
    for snapshot in snapshots:
        state = apply(state, snapshot, CATALOG) or state
    return state


@pytest.mark.parametrize(
    ("gateway", "status", "expected"),
    [
        ("razorpay", "created", SubscriptionStatus.expired),  # keeps the current status
        ("razorpay", "authenticated", SubscriptionStatus.expired),
        ("razorpay", "active", SubscriptionStatus.active),
        ("razorpay", "pending", SubscriptionStatus.past_due),
        ("razorpay", "halted", SubscriptionStatus.past_due),
        ("razorpay", "cancelled", SubscriptionStatus.cancelled),
        ("razorpay", "completed", SubscriptionStatus.expired),
        ("razorpay", "paused", SubscriptionStatus.cancelled),
        ("razorpay", "expired", SubscriptionStatus.expired),  # unpaid link: keeps the current
        ("paddle", "active", SubscriptionStatus.active),
        ("paddle", "trialing", SubscriptionStatus.active),
        ("paddle", "past_due", SubscriptionStatus.past_due),
        ("paddle", "paused", SubscriptionStatus.cancelled),
        ("paddle", "canceled", SubscriptionStatus.cancelled),
    ],
)
def test_gateway_states_map_to_the_seed_statuses(
    gateway: str, status: str, expected: SubscriptionStatus
) -> None:
    assert seed_status(gateway, status, SubscriptionStatus.expired) is expected


def test_an_unknown_gateway_state_is_refused_and_ignored_by_apply() -> None:
    with pytest.raises(UnknownGatewayStatus):
        seed_status("paddle", "exploded", SubscriptionStatus.active)
    assert apply(TRIAL, snap("exploded", 1), CATALOG) is None


def test_activation_writes_the_gateway_fields_and_the_plan() -> None:
    state = run(TRIAL, snap("active", 1))
    assert state.plan_type is PlanType.GROWTH
    assert state.status is SubscriptionStatus.active
    assert (state.period_start, state.period_end) == (T0 + DAY, T0 + 31 * DAY)
    assert state.payment_gateway == "razorpay"
    assert state.gateway_subscription_id == "sub_1"
    assert state.gateway_customer_id == "cust_1"
    assert state.gateway_plan_id == "plan_g"
    assert state.metadata() == {
        "gateway_status": "active",
        "as_of": (T0 + timedelta(hours=1)).isoformat(),
        "as_of_from_api": False,
        "cancel_at_period_end": False,
        "past_due_since": None,
        "scheduled_plan": None,
    }


def test_not_paid_yet_records_the_subscription_but_not_its_plan() -> None:
    state = run(TRIAL, snap("created", 1, customer_id=None, period_start=None, period_end=None))
    assert (state.plan_type, state.status) == (PlanType.TRIAL, SubscriptionStatus.active)
    assert (state.period_start, state.period_end) == (TRIAL.period_start, TRIAL.period_end)
    assert (state.gateway_status, state.gateway_subscription_id) == ("created", "sub_1")
    assert state.gateway_plan_id is None
    lapsed = run(state, snap("expired", 2, customer_id=None, period_start=None, period_end=None))
    assert (lapsed.plan_type, lapsed.status, lapsed.period_end) == (
        PlanType.TRIAL,
        SubscriptionStatus.active,
        TRIAL.period_end,
    )
    paid = run(state, snap("active", 2))
    assert (paid.plan_type, paid.gateway_plan_id) == (PlanType.GROWTH, "plan_g")


def test_an_older_snapshot_changes_nothing_and_a_duplicate_neither() -> None:
    state = run(TRIAL, snap("active", 1), snap("cancelled", 5, ended_at=T0 + 2 * DAY))
    assert apply(state, snap("active", 3), CATALOG) is None
    assert apply(state, snap("cancelled", 5, ended_at=T0 + 2 * DAY), CATALOG) is None
    assert state.status is SubscriptionStatus.cancelled
    assert state.period_end == T0 + 2 * DAY


def test_equal_times_are_ordered_by_the_lifecycle() -> None:
    halted = run(TRIAL, snap("active", 1), snap("halted", 4))
    assert apply(halted, snap("pending", 4), CATALOG) is None
    pending = run(TRIAL, snap("active", 1), snap("pending", 4))
    assert run(pending, snap("halted", 4)).gateway_status == "halted"


def test_in_one_second_a_passing_charge_beats_the_failure_and_an_end_beats_both() -> None:
    failed = run(TRIAL, snap("active", 1), snap("pending", 2))
    renewal = {"period_start": T0 + 31 * DAY, "period_end": T0 + 61 * DAY}
    charged = run(failed, snap("active", 2, **renewal))
    assert charged.status is SubscriptionStatus.active and charged.past_due_since is None
    ended = run(charged, snap("cancelled", 2, ended_at=T0 + 31 * DAY + DAY, **renewal))
    assert apply(ended, snap("active", 2, **renewal), CATALOG) is None
    assert run(ended, snap("active", 2, **renewal)).status is SubscriptionStatus.cancelled


def test_an_unpaid_second_subscription_does_not_replace_the_paid_one() -> None:
    paid = run(TRIAL, snap("active", 1))
    other = replace(
        snap("authenticated", 5, period_start=None, period_end=None), subscription_id="sub_2"
    )
    assert apply(paid, other, CATALOG) is None


def test_the_period_never_moves_earlier() -> None:
    renewed = run(
        TRIAL,
        snap("active", 1),
        snap("active", 800, period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY),
    )
    # Newer news with the older period (a plan change stamped later) keeps the renewal.
    later = run(renewed, snap("active", 900))
    assert (later.period_start, later.period_end) == (T0 + 31 * DAY, T0 + 61 * DAY)


def test_past_due_since_is_set_on_entering_and_cleared_on_active() -> None:
    state = run(TRIAL, snap("active", 1), snap("pending", 10))
    assert state.past_due_since == T0 + timedelta(hours=10)
    state = run(state, snap("halted", 20))
    assert state.past_due_since == T0 + timedelta(hours=10)
    state = run(state, snap("active", 30, period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY))
    assert state.past_due_since is None and state.status is SubscriptionStatus.active


def test_a_late_earlier_failure_moves_past_due_since_back() -> None:
    state = run(TRIAL, snap("active", 1), snap("halted", 20), snap("pending", 10))
    assert state.gateway_status == "halted"
    assert state.past_due_since == T0 + timedelta(hours=10)


def test_paddle_cancel_ends_the_period_at_canceled_at() -> None:
    active = run(TRIAL, snap("active", 1, gateway="paddle"))
    scheduled = run(active, snap("active", 2, gateway="paddle", cancel_at_period_end=True))
    assert scheduled.cancel_at_period_end and scheduled.status is SubscriptionStatus.active
    canceled = run(
        scheduled,
        snap(
            "canceled",
            3,
            gateway="paddle",
            period_start=None,
            period_end=None,
            ended_at=T0 + DAY + timedelta(hours=3),
        ),
    )
    assert canceled.status is SubscriptionStatus.cancelled
    assert canceled.period_end == T0 + DAY + timedelta(hours=3)
    assert not canceled.cancel_at_period_end


def test_late_news_of_an_old_subscription_does_not_replace_the_new_one() -> None:
    old = run(TRIAL, snap("active", 1))
    new = run(old, replace(snap("active", 5, gateway="paddle"), subscription_id="sub_2"))
    assert (new.payment_gateway, new.gateway_subscription_id) == ("paddle", "sub_2")
    assert apply(new, snap("cancelled", 9, ended_at=T0 + 2 * DAY), CATALOG) is None


def test_a_scheduled_plan_change_is_kept_until_the_plan_moves() -> None:
    state = run(TRIAL, snap("active", 1), snap("active", 2, scheduled_plan_id="plan_s"))
    assert state.plan_type is PlanType.GROWTH and state.scheduled_plan is PlanType.STARTER
    assert changes(run(TRIAL, snap("active", 1)), state) == ["plan_change_scheduled"]
    moved = run(state, snap("active", 3, plan_id="plan_s"))
    assert moved.plan_type is PlanType.STARTER and moved.scheduled_plan is None


def answer(status: str, at: int, micros: int, kind: str, **kw: object) -> GatewaySnapshot:
    """Razorpay's answer to our own call, stamped by our clock within hour `at`'s second."""
    stamped = snap(status, at, **kw)
    return replace(
        stamped, as_of=stamped.as_of + timedelta(microseconds=micros), event_type=f"api.{kind}"
    )


def test_in_one_razorpay_second_our_calls_answer_beats_the_webhooks_either_way() -> None:
    webhook = snap("active", 1)  # the checkout's webhook: whole seconds
    cancel = answer("active", 1, 300_000, "cancel", cancel_at_period_end=True)
    assert run(TRIAL, webhook, cancel) == run(TRIAL, cancel, webhook)
    assert run(TRIAL, webhook, cancel).cancel_at_period_end
    assert run(TRIAL, webhook, cancel).metadata()["as_of_from_api"] is True


def test_a_renewal_in_the_second_of_our_call_is_taken() -> None:
    active = run(TRIAL, snap("active", 1))
    scheduled = run(active, answer("active", 1, 400_000, "change_plan", scheduled_plan_id="plan_s"))
    assert scheduled.scheduled_plan is PlanType.STARTER
    renewal = snap(
        "active", 1, plan_id="plan_s", period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY
    )
    renewed = run(scheduled, renewal)
    assert renewed.plan_type is PlanType.STARTER and renewed.scheduled_plan is None
    assert renewed.period_end == T0 + 61 * DAY and not renewed.as_of_from_api


def test_two_of_our_calls_in_one_second_keep_their_order() -> None:
    active = run(TRIAL, snap("active", 1))
    first = answer("active", 1, 100_000, "change_plan", plan_id="plan_p")
    second = answer("active", 1, 200_000, "change_plan", plan_id="plan_s")
    assert run(active, first, second).plan_type is PlanType.STARTER
    assert run(active, second, first).plan_type is PlanType.STARTER


def test_paddle_times_are_compared_to_the_microsecond() -> None:
    """Paddle's updated_at has microseconds: an older failure in the same second is stale
    (at Razorpay's resolution it would tie and win by the lifecycle)."""
    second = T0 + timedelta(hours=1)
    active = replace(snap("active", 1, gateway="paddle"), as_of=second + timedelta(microseconds=10))
    state = run(TRIAL, active)
    older = replace(snap("past_due", 1, gateway="paddle"), as_of=second + timedelta(microseconds=5))
    assert apply(state, older, CATALOG) is None
    newer = replace(older, as_of=second + timedelta(microseconds=20))
    assert run(state, newer).status is SubscriptionStatus.past_due


def test_a_change_now_replaces_the_scheduled_one() -> None:
    active = run(TRIAL, snap("active", 1, plan_id="plan_p"))
    scheduled = run(active, answer("active", 2, 0, "change_plan", scheduled_plan_id="plan_s"))
    assert scheduled.scheduled_plan is PlanType.STARTER
    kept = run(scheduled, answer("active", 3, 0, "change_plan", plan_id="plan_p"))
    assert kept.plan_type is PlanType.PRO and kept.scheduled_plan is None


def test_an_expired_account_stays_expired_until_a_payment_passes() -> None:
    failing = run(TRIAL, snap("active", 1), snap("pending", 2))
    expired = replace(failing, status=SubscriptionStatus.expired)  # the calendar, after grace
    for later in (
        snap("halted", 30),
        snap("cancelled", 31, ended_at=T0 + 2 * DAY),
    ):
        after = run(expired, later)
        assert after.status is SubscriptionStatus.expired, later.gateway_status
        assert after.past_due_since is None
    paid = snap("active", 40, period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY)
    assert run(expired, snap("halted", 30), paid).status is SubscriptionStatus.active


def test_replaced_names_a_live_subscription_another_took_the_place_of() -> None:
    on_razorpay = run(TRIAL, snap("active", 1))
    on_paddle = run(
        on_razorpay, replace(snap("active", 5, gateway="paddle"), subscription_id="sub_2")
    )
    assert replaced(on_razorpay, on_paddle) == ("razorpay", "sub_1")
    renewed = run(on_paddle, replace(snap("active", 9, gateway="paddle"), subscription_id="sub_2"))
    assert replaced(on_paddle, renewed) is None  # the same subscription
    ended = run(on_razorpay, snap("cancelled", 3, ended_at=T0 + 2 * DAY))
    again = run(ended, replace(snap("active", 5, gateway="paddle"), subscription_id="sub_2"))
    assert replaced(ended, again) is None  # the gateway ended it already
    assert replaced(TRIAL, on_razorpay) is None  # a trial's first subscription


def test_a_razorpay_payment_in_the_second_of_a_paddle_one_is_not_older() -> None:
    """Razorpay stamps whole seconds: its activation at 10:00:00 may come after Paddle's
    at 10:00:00.5, and the later payment's subscription is the account's."""
    second = T0 + timedelta(hours=1)
    on_paddle = run(
        TRIAL,
        replace(
            snap("active", 1, gateway="paddle"),
            subscription_id="sub_2",
            as_of=second + timedelta(microseconds=500_000),
        ),
    )
    on_razorpay = run(on_paddle, snap("active", 1))
    assert (on_razorpay.payment_gateway, on_razorpay.gateway_subscription_id) == (
        "razorpay",
        "sub_1",
    )


def test_changes_names_what_moved() -> None:
    active = run(TRIAL, snap("active", 1))
    assert changes(TRIAL, active) == ["activated", "plan_changed", "period_changed"]
    past_due = run(active, snap("pending", 2))
    assert changes(active, past_due) == ["past_due"]
    assert changes(past_due, run(past_due, snap("cancelled", 3)))[0] == "cancelled"


def test_stored_metadata_round_trips() -> None:
    state = run(
        TRIAL, snap("active", 1), snap("pending", 2), snap("active", 3, scheduled_plan_id="plan_p")
    )
    stored = BillingState.from_stored(
        plan_type=state.plan_type,
        status=state.status,
        period_start=state.period_start,
        period_end=state.period_end,
        payment_gateway=state.payment_gateway,
        gateway_subscription_id=state.gateway_subscription_id,
        gateway_customer_id=state.gateway_customer_id,
        gateway_plan_id=state.gateway_plan_id,
        metadata={**state.metadata(), "pending_checkout": None},
    )
    assert stored == state


# --- the property: arrival order does not matter -------------------------------------------


@st.composite
def lifecycles(draw: st.DrawFn) -> list[GatewaySnapshot]:
    """One subscription's news in the order the gateway made it: activation, renewals
    (paid, or failed and retried until a charge passes), plan changes, maybe an end.
    Only a passing charge leaves past_due, and it starts the next period."""
    gateway = draw(st.sampled_from(["razorpay", "paddle"]))
    plans = ["plan_s", "plan_g", "plan_p"] if gateway == "razorpay" else ["pri_s", "pri_g", "pri_p"]
    failing = ["pending", "halted"] if gateway == "razorpay" else ["past_due"]
    hour = 0
    start = T0 + DAY
    plan = draw(st.sampled_from(plans))
    out: list[GatewaySnapshot] = []

    def add(status: str, **kw: object) -> None:
        nonlocal hour
        hour += draw(st.integers(min_value=1, max_value=3))
        values: dict[str, object] = {
            "customer_id": "cust_1",
            "plan_id": plan,
            "period_start": start,
            "period_end": start + 30 * DAY,
        }
        values.update(kw)
        # A renewal is news once its period has begun.
        hour = max(hour, int((start - T0 - DAY) / timedelta(hours=1)))
        snapshot = GatewaySnapshot(
            gateway=gateway,
            subscription_id="sub_1",
            gateway_status=status,
            as_of=T0 + DAY + timedelta(hours=hour),
            event_type=status,
            **values,  # type: ignore[arg-type]
        )
        out.append(snapshot)
        if draw(st.booleans()):
            # Razorpay stamps in seconds: activated and charged of one instant say the same.
            out.append(replace(snapshot, event_type=f"{status}.twin"))

    if gateway == "razorpay":
        none = {"customer_id": None, "period_start": None, "period_end": None}
        add("created", **none)
        if draw(st.booleans()):
            add("authenticated", period_start=None, period_end=None)
    add("active")
    standing = "active"  # a plan change or a scheduled cancel keeps the standing state
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        step = draw(st.sampled_from(["renew", "fail", "plan", "schedule_cancel"]))
        if step == "renew":
            start += 30 * DAY
            standing = "active"
            add("active")
        elif step == "fail" and standing == "active":
            start += 30 * DAY  # the renewal's charge failed: the new period is unpaid
            for status in failing[: draw(st.integers(min_value=1, max_value=len(failing)))]:
                standing = status
                add(status)
        elif step == "plan":
            plan = draw(st.sampled_from(plans))
            add(standing)
        elif step == "schedule_cancel":
            add(standing, cancel_at_period_end=True)
    ending = draw(st.sampled_from(["none", "cancel", "complete"]))
    ended_at = T0 + DAY + timedelta(hours=hour + 1)  # the as_of of the ending itself
    if ending == "cancel" and gateway == "paddle":
        add("canceled", period_start=None, period_end=None, ended_at=ended_at)
    elif ending == "cancel":
        add("cancelled", ended_at=ended_at)
    elif ending == "complete" and gateway == "razorpay":
        add("completed", ended_at=ended_at)
    return out


@settings(max_examples=400, deadline=None)
@given(data=st.data(), history=lifecycles())
def test_any_order_and_any_duplicates_end_in_the_state_of_the_gateway_order(
    data: st.DataObject, history: list[GatewaySnapshot]
) -> None:
    in_order = run(TRIAL, *history)
    arrivals = data.draw(
        st.lists(st.sampled_from(history), min_size=0, max_size=len(history)).map(
            lambda extra: [*history, *extra]
        )
    )
    shuffled = data.draw(st.permutations(arrivals))
    assert run(TRIAL, *shuffled) == in_order


@given(st.permutations(range(6)))
def test_the_final_state_is_the_newest_snapshots(order: list[int]) -> None:
    history = [
        snap("active", 1),
        snap("pending", 2),
        snap("halted", 3),
        snap("active", 4, period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY),
        snap("active", 5, plan_id="plan_p", period_start=T0 + 31 * DAY, period_end=T0 + 61 * DAY),
        snap(
            "cancelled",
            6,
            plan_id="plan_p",
            ended_at=T0 + 40 * DAY,
            period_start=T0 + 31 * DAY,
            period_end=T0 + 61 * DAY,
        ),
    ]
    state = run(TRIAL, *(history[i] for i in order))
    assert state.status is SubscriptionStatus.cancelled
    assert state.plan_type is PlanType.PRO
    assert (state.period_start, state.period_end) == (T0 + 31 * DAY, T0 + 40 * DAY)
    assert state.past_due_since is None


def test_user_ids_are_carried_but_not_stored() -> None:
    owner = uuid.uuid4()
    assert run(TRIAL, snap("active", 1, user_id=owner)).gateway_subscription_id == "sub_1"
