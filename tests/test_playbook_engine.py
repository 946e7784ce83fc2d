"""The pure playbook engine: which playbooks match, in which order, what each condition saw,
and every reason an approval still waits for a person."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from domain.default_playbooks import DEFAULT_PLAYBOOKS
from domain.playbook_engine import (
    FACT_NAMES,
    FACT_PLACEHOLDERS,
    Blocker,
    PlaybookView,
    Safety,
    TriggerEvent,
    Verdict,
    choose,
    evaluate,
    listening,
    render_template,
)
from domain.playbook_rules import (
    CONDITION_FIELDS,
    TEMPLATE_PLACEHOLDERS,
    MessageReceivedTrigger,
    PlaybookRules,
)

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ON_MESSAGE = {"version": 2, "event": "message.received"}
ESCALATE = {"version": 2, "type": "escalate", "reason": "a person looks"}


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"version": 2, "field": field, "operator": operator, "value": value}


def approve(*types: str, cap: str | None = None) -> dict[str, Any]:
    return {
        "version": 2,
        "type": "approve_suggestion",
        "action_types": list(types),
        "max_refund_amount": cap,
    }


def view(
    trigger: dict[str, Any] | None = None,
    conditions: list[Any] | None = None,
    actions: list[Any] | None = None,
    **flags: Any,
) -> PlaybookView:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "a playbook",
        "enabled": True,
        "priority": 100,
        "stop_processing": False,
        "run_once_per_thread": False,
        "confidence_threshold": 0.9,
        "requires_approval": False,
        "created_at": T0,
    }
    values.update(flags)
    rules = PlaybookRules.parse(trigger or ON_MESSAGE, conditions or [], actions or [ESCALATE])
    return PlaybookView(rules=rules, **values)


def from_template(key: str, **flags: Any) -> PlaybookView:
    template = next(t for t in DEFAULT_PLAYBOOKS if t.key == key)
    flags.setdefault("confidence_threshold", template.confidence_threshold)
    return view(
        template.trigger, template.conditions, template.actions, name=template.name, **flags
    )


DAMAGED = TriggerEvent(event="message.received", intent="damaged_item", channel="gmail")
# A damaged mug on a paid order, refund 40, confidence 0.95: what the refund playbook approves.
REFUND_FACTS: dict[str, Any] = {
    "suggestion.action_type": "REFUND",
    "suggestion.confidence": 0.95,
    "suggestion.refund_amount": "40.00",
    "order.financial_status": "paid",  # REST's casing; the playbook says "PAID"
    "message.sentiment": "neutral",
    "message.wants_human": False,
    "message.legal_threat": False,
}
CAPPED = Safety(daily_refund_cap=Decimal(500), daily_execution_cap=100)


def codes(verdict: Verdict) -> list[str]:
    return [b.code for b in verdict.blocked_by]


# --- approval and its blockers --------------------------------------------------------------


def test_a_damaged_item_within_every_limit_is_approved_on_its_own() -> None:
    verdict = evaluate(from_template("refund-damaged-item"), DAMAGED, REFUND_FACTS, CAPPED)
    assert verdict.trigger_matched and verdict.matched and verdict.would_run
    assert verdict.auto_approve and verdict.blocked_by == []
    assert [(c.field, c.actual, c.matched) for c in verdict.conditions] == [
        ("suggestion.action_type", "REFUND", True),
        ("order.financial_status", "paid", True),
        ("suggestion.refund_amount", Decimal("40.00"), True),
    ]
    assert verdict.actions == [
        {
            "version": 2,
            "type": "approve_suggestion",
            "action_types": ["REFUND"],
            "max_refund_amount": "100",
        }
    ]


@pytest.mark.parametrize(
    ("change", "safety", "code"),
    [
        ({"requires_approval": True}, CAPPED, "requires_approval"),
        ({"suggestion.confidence": 0.89}, CAPPED, "below_threshold"),
        ({"suggestion.confidence": None}, CAPPED, "below_threshold"),
        ({"suggestion.action_type": "CANCEL"}, CAPPED, "action_not_allowed"),
        ({"suggestion.action_type": None}, CAPPED, "no_suggestion"),
        ({"suggestion.refund_amount": 100.01}, CAPPED, "refund_cap"),
        ({"suggestion.refund_amount": "a lot"}, CAPPED, "refund_cap"),
        (
            {},
            Safety(refunded_today=Decimal("460.01"), daily_refund_cap=Decimal(500)),
            "daily_refund_cap",
        ),
        ({}, Safety(executions_today=5, daily_execution_cap=5), "daily_execution_cap"),
        ({}, Safety(guardrail_notes=["amount_capped"]), "guardrail_note"),
        ({"message.wants_human": True}, CAPPED, "wants_human"),
        ({"message.legal_threat": True}, CAPPED, "legal_threat"),
        ({"message.sentiment": "ANGRY"}, CAPPED, "angry"),
        ({}, Safety(automation_enabled=False), "automation_off"),
    ],
)
def test_each_blocker_keeps_the_approval_for_a_person(
    change: dict[str, Any], safety: Safety, code: str
) -> None:
    flags = {"requires_approval": change.pop("requires_approval", False)}
    facts = {**REFUND_FACTS, **change}
    verdict = evaluate(from_template("refund-damaged-item", **flags), DAMAGED, facts, safety)
    assert code in codes(verdict), verdict.blocked_by
    assert not verdict.auto_approve
    assert all(b.detail for b in verdict.blocked_by)


def test_blockers_at_their_limits_still_allow() -> None:
    facts = {**REFUND_FACTS, "suggestion.confidence": 0.9, "suggestion.refund_amount": 100}
    safety = Safety(
        refunded_today=Decimal(400),
        daily_refund_cap=Decimal(500),
        executions_today=4,
        daily_execution_cap=5,
    )
    verdict = evaluate(from_template("refund-damaged-item"), DAMAGED, facts, safety)
    assert verdict.auto_approve, verdict.blocked_by


def test_all_blockers_are_reported_in_a_fixed_order() -> None:
    facts = {
        **REFUND_FACTS,
        "suggestion.action_type": "CANCEL",
        "suggestion.confidence": 0.1,
        "suggestion.refund_amount": 1000,
        "message.wants_human": True,
        "message.legal_threat": True,
        "message.sentiment": "angry",
    }
    safety = Safety(
        automation_enabled=False,
        guardrail_notes=["x"],
        daily_refund_cap=Decimal(10),
        executions_today=1,
        daily_execution_cap=1,
    )
    playbook = view(actions=[approve("REFUND", cap="50")], requires_approval=True)
    assert codes(evaluate(playbook, DAMAGED, facts, safety)) == [
        "automation_off",
        "requires_approval",
        "below_threshold",
        "action_not_allowed",
        "daily_refund_cap",
        "daily_execution_cap",
        "guardrail_note",
        "wants_human",
        "legal_threat",
        "angry",
    ]  # no refund_cap: the CANCEL is not this approval's to cap


def test_the_approval_that_allows_the_type_sets_the_refund_cap() -> None:
    playbook = view(actions=[approve("CANCEL", cap="10"), approve("REFUND", cap="50")])
    facts = {**REFUND_FACTS, "suggestion.refund_amount": 40}
    assert evaluate(playbook, DAMAGED, facts, Safety()).auto_approve
    facts["suggestion.action_type"] = "CANCEL"
    assert codes(evaluate(playbook, DAMAGED, facts, Safety())) == ["refund_cap"]


def test_without_approve_suggestion_nothing_blocks_the_other_actions() -> None:
    actions = [
        {"version": 2, "type": "tag_thread", "tags": ["legal"]},
        ESCALATE,
        {"version": 2, "type": "close_thread"},
    ]
    playbook = view(actions=actions, requires_approval=True, confidence_threshold=1.0)
    facts = {"message.wants_human": True, "message.legal_threat": True}
    verdict = evaluate(playbook, DAMAGED, facts, Safety(guardrail_notes=["x"]))
    assert verdict.matched and verdict.would_run
    assert not verdict.auto_approve and verdict.blocked_by == []
    assert [a["type"] for a in verdict.actions] == ["tag_thread", "escalate", "close_thread"]


def test_the_kill_switch_stops_every_playbook_but_the_dry_run_still_explains() -> None:
    playbook = view(actions=[{"version": 2, "type": "close_thread"}])
    verdict = evaluate(playbook, DAMAGED, {}, Safety(automation_enabled=False))
    assert verdict.matched and not verdict.would_run and not verdict.auto_approve
    assert verdict.blocked_by == [
        Blocker(code="automation_off", detail="automation is switched off")
    ]


# --- triggers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "event", "matches"),
    [
        (ON_MESSAGE, TriggerEvent(event="message.received"), True),
        (ON_MESSAGE, TriggerEvent(event="order.event", topic="created"), False),
        (
            {**ON_MESSAGE, "intents": ["damaged_item"], "channels": ["gmail"]},
            DAMAGED,
            True,
        ),
        ({**ON_MESSAGE, "intents": ["wrong_item"]}, DAMAGED, False),
        ({**ON_MESSAGE, "channels": ["api", "email"]}, DAMAGED, False),
        (
            {**ON_MESSAGE, "languages": ["de"]},
            TriggerEvent(event="message.received", language="DE"),
            True,
        ),
        ({**ON_MESSAGE, "languages": ["de"]}, TriggerEvent(event="message.received"), False),
        ({**ON_MESSAGE, "intents": ["other"]}, TriggerEvent(event="message.received"), False),
        (
            {"version": 2, "event": "order.event", "topics": ["fulfilled", "refunded"]},
            TriggerEvent(event="order.event", topic="fulfilled"),
            True,
        ),
        (
            {"version": 2, "event": "order.event", "topics": ["fulfilled"]},
            TriggerEvent(event="order.event", topic="created"),
            False,
        ),
        (
            {"version": 2, "event": "order.event"},
            TriggerEvent(event="order.event", topic="cancelled"),
            True,
        ),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 3600, "since": "our_reply"},
            TriggerEvent(event="thread.idle", since="our_reply", idle_seconds=3600),
            True,
        ),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 3600, "since": "our_reply"},
            TriggerEvent(event="thread.idle", since="our_reply", idle_seconds=3599),
            False,
        ),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 3600, "since": "our_reply"},
            TriggerEvent(event="thread.idle", since="no_decision", idle_seconds=7200),
            False,
        ),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 3600, "since": "no_decision"},
            TriggerEvent(event="thread.idle", since="no_decision"),
            False,
        ),
    ],
)
def test_triggers(trigger: dict[str, Any], event: TriggerEvent, matches: bool) -> None:
    verdict = evaluate(view(trigger), event, {}, Safety())
    assert verdict.trigger_matched is matches
    assert verdict.matched is matches


def test_a_version_1_trigger_means_the_same() -> None:
    v1 = view({"version": 1, "event": "message.received", "intents": ["damaged_item"]})
    assert evaluate(v1, DAMAGED, {}, Safety()).matched
    assert not evaluate(v1, TriggerEvent(event="message.received"), {}, Safety()).matched


# --- conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "fact", "matched"),
    [
        (cond("order.total_amount", "lte", 80), 80, True),
        (cond("order.total_amount", "lte", 80), 80.0, True),
        (cond("order.total_amount", "lte", 80), "80.00", True),
        (cond("order.total_amount", "lte", 80), Decimal("80.01"), False),
        (cond("order.total_amount", "gt", "0.1"), 0.1, False),  # 0.1 as written, not binary
        (cond("order.total_amount", "eq", 5), "five", False),
        (cond("order.total_amount", "eq", 5), True, False),
        (cond("order.total_amount", "ne", 5), float("nan"), False),
        (cond("customer.total_spent", "gte", 1000), 1000, True),
        (cond("thread.message_count", "lt", 3), 2, True),
        (cond("order.financial_status", "in", ["PAID"]), "paid", True),
        (cond("order.financial_status", "not_in", ["PAID"]), "Paid", False),
        (cond("order.fulfillment_status", "eq", "unfulfilled"), "UNFULFILLED", True),
        (cond("order.fulfillment_status", "ne", "unfulfilled"), "FULFILLED", True),
        (cond("message.text", "contains", "BROKEN"), "my mug arrived broken", True),
        (cond("customer.email", "contains", "@example.com"), "Ava@Example.com", True),
        (cond("order.shipping_country", "in", ["de", "at"]), "DE", True),
        (cond("message.channel", "eq", "gmail"), "gmail", True),
        (cond("message.language", "ne", "en"), "fr", True),
        (cond("message.sentiment", "eq", "angry"), "ANGRY", True),
        (cond("message.text", "contains", "x"), ["x"], False),
        (cond("order.cancelled", "eq", False), False, True),
        (cond("order.cancelled", "eq", False), "false", False),
        (cond("order.cancelled", "ne", True), False, True),
        (cond("message.wants_human", "eq", True), True, True),
        (cond("time.business_hours", "eq", True), False, False),
        (cond("thread.tags", "contains", "VIP"), ["vip", "refund"], True),
        (cond("thread.tags", "contains", "vip"), [], False),
        (cond("thread.tags", "not_contains", "vip"), ["refund"], True),
        (cond("thread.tags", "not_contains", "vip"), ["Vip"], False),
        (cond("thread.tags", "contains", "vip"), "vip", False),
        (cond("suggestion.action_type", "eq", "REFUND"), "REFUND", True),
        (cond("suggestion.action_type", "in", ["NONE", "INFO_REQUEST"]), "REFUND", False),
        (cond("suggestion.action_type", "not_in", ["NONE"]), "CANCEL", True),
    ],
)
def test_conditions(condition: dict[str, Any], fact: Any, matched: bool) -> None:
    facts = {condition["field"]: fact}
    result = evaluate(view(conditions=[condition]), DAMAGED, facts, Safety()).conditions[0]
    assert result.matched is matched
    assert (result.field, result.operator) == (condition["field"], condition["operator"])


@pytest.mark.parametrize(
    "condition",
    [
        cond("order.total_amount", "ne", 5),
        cond("order.financial_status", "not_in", ["PAID"]),
        cond("order.cancelled", "ne", True),
        cond("thread.tags", "not_contains", "vip"),
    ],
)
def test_a_missing_fact_never_matches(condition: dict[str, Any]) -> None:
    for facts in ({}, {condition["field"]: None}):
        verdict = evaluate(view(conditions=[condition]), DAMAGED, facts, Safety())
        assert not verdict.matched
        assert verdict.conditions[0].actual is None and not verdict.conditions[0].matched


def test_actual_values_are_reported_normalised() -> None:
    conditions = [
        cond("order.total_amount", "gt", 1),
        cond("customer.order_count", "gt", 1),
        cond("customer.total_spent", "gt", 1),
        cond("order.age_days", "gt", 1),
    ]
    facts = {
        "order.total_amount": 12.5,
        "customer.order_count": 3,
        "customer.total_spent": "not a number",
        "order.age_days": float("inf"),
    }
    verdict = evaluate(view(conditions=conditions), DAMAGED, facts, Safety())
    assert [c.actual for c in verdict.conditions] == [
        Decimal("12.5"),
        Decimal(3),
        "not a number",
        None,
    ]
    assert [c.matched for c in verdict.conditions] == [True, True, False, False]
    assert verdict.model_dump(mode="json")["conditions"][0]["actual"] == "12.5"


def test_groups() -> None:
    conditions = [
        cond("order.cancelled", "eq", False),
        {
            "version": 2,
            "any": [
                cond("thread.tags", "contains", "vip"),
                cond("customer.total_spent", "gte", 500),
            ],
        },
        {"version": 2, "all": [cond("message.wants_human", "eq", False)]},
    ]
    playbook = view(conditions=conditions)
    facts = {
        "order.cancelled": False,
        "thread.tags": [],
        "customer.total_spent": 700,
        "message.wants_human": False,
    }
    verdict = evaluate(playbook, DAMAGED, facts, Safety())
    assert verdict.matched
    assert [(c.group, c.matched) for c in verdict.conditions] == [
        (None, True),
        ("any[1]", False),
        ("any[1]", True),
        ("all[2]", True),
    ]
    assert not evaluate(playbook, DAMAGED, {**facts, "customer.total_spent": 1}, Safety()).matched
    assert not evaluate(playbook, DAMAGED, {**facts, "message.wants_human": True}, Safety()).matched


def test_every_default_playbook_matches_its_own_case() -> None:
    cases = {
        "cancel-unfulfilled-order": ("cancel_request", "CANCEL"),
        "address-change-before-fulfilment": ("address_change", "ADDRESS_CHANGE"),
        "where-is-my-order": ("order_status", "NONE"),
        "wrong-item-received": ("wrong_item", "REPLACE_ITEM"),
    }
    for key, (intent, action_type) in cases.items():
        facts = {
            "suggestion.action_type": action_type,
            "suggestion.confidence": 0.99,
            "order.fulfillment_status": "UNFULFILLED",
            "order.cancelled": False,
        }
        event = TriggerEvent(event="message.received", intent=intent)
        verdict = evaluate(from_template(key), event, facts, CAPPED)
        assert verdict.matched and verdict.auto_approve, (key, verdict)
        other = TriggerEvent(event="message.received", intent="other")
        assert not evaluate(from_template(key), other, facts, CAPPED).matched


# --- enabled, run once, ordering ------------------------------------------------------------


def test_a_disabled_playbook_never_matches() -> None:
    verdict = evaluate(view(enabled=False), DAMAGED, {}, Safety())
    assert verdict.trigger_matched and not verdict.matched and not verdict.would_run
    assert codes(verdict) == ["disabled"]
    assert choose([view(enabled=False)], DAMAGED, {}, Safety()) == []


def test_only_enabled_playbooks_of_the_event_kind_are_listening() -> None:
    on_message = view(name="on message")
    on_order = view({"version": 2, "event": "order.event", "topics": ["updated"]})
    on_idle = view(
        {"version": 2, "event": "thread.idle", "since": "our_reply", "after_seconds": 60}
    )
    off = view(enabled=False)
    views = [on_message, on_order, on_idle, off]
    assert listening(views, "message.received") == [on_message]
    assert listening(views, "order.event") == [on_order]
    assert listening(views, "thread.idle") == [on_idle]
    assert listening([off], "message.received") == []
    # What the firing step relies on to skip the facts: nothing else could be chosen.
    events = [
        DAMAGED,
        TriggerEvent(event="order.event", topic="updated"),
        TriggerEvent(event="thread.idle", since="our_reply", idle_seconds=120),
    ]
    for event in events:
        chosen = {v.playbook_id for v in choose(views, event, {}, Safety())}
        assert chosen and chosen <= {p.id for p in listening(views, event.event)}


def test_run_once_per_thread() -> None:
    playbook = view(run_once_per_thread=True, conditions=[cond("order.cancelled", "eq", False)])
    facts = {"order.cancelled": False}
    assert evaluate(playbook, DAMAGED, facts, Safety()).matched
    ran = Safety(ran_in_thread=frozenset({playbook.id}))
    verdict = evaluate(playbook, DAMAGED, facts, ran)
    assert not verdict.matched and not verdict.would_run and codes(verdict) == ["run_once"]
    assert verdict.conditions[0].matched  # still explained
    again = playbook.model_copy(update={"run_once_per_thread": False})
    assert evaluate(again, DAMAGED, facts, ran).matched


def test_choose_runs_in_priority_then_age_then_id_order() -> None:
    first = view(name="first", priority=10)
    older = view(name="older", created_at=T0 - timedelta(days=1))
    ids = sorted([uuid.uuid4(), uuid.uuid4()])
    tie_a = view(name="tie a", id=ids[0])
    tie_b = view(name="tie b", id=ids[1])
    last = view(name="last", priority=500)
    playbooks = [last, tie_b, older, tie_a, first]
    names = [v.playbook_name for v in choose(playbooks, DAMAGED, {}, Safety())]
    assert names == ["first", "older", "tie a", "tie b", "last"]


def test_stop_processing_ends_the_run_only_when_it_matched() -> None:
    never = {**ON_MESSAGE, "intents": ["wrong_item"]}
    skipped = view(never, name="stops but does not match", priority=1, stop_processing=True)
    stops = view(name="stops", priority=2, stop_processing=True)
    after = view(name="after", priority=3)
    disabled = view(name="disabled", priority=0, stop_processing=True, enabled=False)
    verdicts = choose([after, stops, skipped, disabled], DAMAGED, {}, Safety())
    assert [v.playbook_name for v in verdicts] == ["stops"]
    verdicts = choose([after, skipped, disabled], DAMAGED, {}, Safety())
    assert [v.playbook_name for v in verdicts] == ["after"]


# --- templates ------------------------------------------------------------------------------


def test_render_template_fills_every_placeholder_from_its_fact() -> None:
    facts = {
        "customer.name": "Ava Patel",
        "customer.first_name": "Ava",
        "order.name": "#1001",
        "order.status_text": "shipped",
        "order.total_text": "€42.00",
        "order.tracking_url": "https://track.example/1",
        "store.name": "Mug Shop",
    }
    template = " ".join(f"{{{name}}}" for name in sorted(TEMPLATE_PLACEHOLDERS))
    rendered = render_template(template, facts)
    assert rendered == " ".join(facts[FACT_PLACEHOLDERS[n]] for n in sorted(TEMPLATE_PLACEHOLDERS))
    assert set(FACT_PLACEHOLDERS) == TEMPLATE_PLACEHOLDERS
    assert set(CONDITION_FIELDS) | set(FACT_PLACEHOLDERS.values()) <= FACT_NAMES


def test_render_template_leaves_missing_facts_empty_and_keeps_braces() -> None:
    assert render_template("Hi {customer_first_name}!", {}) == "Hi !"
    assert render_template("{{literal}} {order_name}", {"order.name": "#7"}) == "{literal} #7"
    assert render_template("{store_name}", {"store.name": None}) == ""
    assert render_template("no placeholders", {}) == "no placeholders"
    template = "Hi {customer_name},\n\nOrder {order_name} is {order_status}.\n{store_name}"
    rendered = render_template(template, {"customer.name": "Ava"})
    assert rendered.startswith("Hi Ava,") and "{" not in rendered
    with pytest.raises(ValueError):
        render_template("Hi {", {})  # refused by validation before it gets here


# --- properties -----------------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=2, max_value=10**6, min_value=-(10**6)
    ),
    st.sampled_from(["0", "40.00", "100", "abc", ""]),
)
_words = st.sampled_from(
    ["REFUND", "CANCEL", "NONE", "paid", "PAID", "UNFULFILLED", "angry", "neutral", "gmail", "de"]
)
_fact_values: dict[str, st.SearchStrategy[Any]] = {
    "number": _numbers,
    "text": st.one_of(_words, st.text(max_size=20)),
    "action_type": st.sampled_from(["REFUND", "CANCEL", "REPLACE_ITEM", "ADDRESS_CHANGE", "NONE"]),
    "bool": st.booleans(),
    "tags": st.lists(st.sampled_from(["vip", "VIP", "refund", "legal"]), max_size=3),
}


# Facts that satisfy the pool's conditions below; each is kept, changed or dropped at random,
# so that playbooks match (and approve) often enough for the properties to say something.
GOOD_FACTS: dict[str, Any] = {
    **REFUND_FACTS,
    "order.total_amount": 50,
    "order.cancelled": False,
    "message.text": "it arrived broken",
    "thread.tags": ["refund"],
    "time.business_hours": True,
}


# Strategies are built once: building them inside each draw costs more than the engine.
_choice = st.sampled_from(["good", "good", "good", "good", "random", "missing"])
_random_fact = {kind: st.one_of(st.none(), values) for kind, values in _fact_values.items()}
# The blockers read the confidence as a number from 0 to 1 (or nothing at all).
_confidence = st.one_of(st.just(1.0), st.just(0.95), st.none(), st.floats(0, 1))


@st.composite
def facts(draw: st.DrawFn) -> dict[str, Any]:
    drawn: dict[str, Any] = {}
    for field in sorted(CONDITION_FIELDS):
        choice = draw(_choice)
        if choice == "good" and field in GOOD_FACTS:
            drawn[field] = GOOD_FACTS[field]
        elif choice == "random":
            drawn[field] = draw(_random_fact[CONDITION_FIELDS[field]])
    drawn["suggestion.confidence"] = draw(_confidence)
    return drawn


# Parsed once, drawn as they are.
_CONDITIONS_POOL = PlaybookRules.parse(
    ON_MESSAGE,
    [
        cond("order.total_amount", "lte", 80),
        cond("suggestion.refund_amount", "gt", "10.5"),
        cond("order.financial_status", "in", ["PAID", "PARTIALLY_REFUNDED"]),
        cond("message.text", "contains", "broken"),
        cond("order.cancelled", "eq", False),
        cond("thread.tags", "not_contains", "vip"),
        cond("suggestion.action_type", "eq", "REFUND"),
        {
            "version": 2,
            "any": [
                cond("message.sentiment", "eq", "angry"),
                cond("time.business_hours", "eq", True),
            ],
        },
    ],
    [ESCALATE],
).conditions
_ACTIONS_POOL = PlaybookRules.parse(
    ON_MESSAGE,
    [],
    [
        approve("REFUND", cap="100"),
        approve("CANCEL", "REFUND"),
        ESCALATE,
        {"version": 2, "type": "wait", "seconds": 60},
        {"version": 2, "type": "tag_thread", "tags": ["auto"]},
        {"version": 2, "type": "close_thread"},
    ],
).actions
_triggers = st.lists(st.sampled_from(["damaged_item", "wrong_item", "other"]), max_size=1).map(
    lambda intents: MessageReceivedTrigger(intents=intents)
)
_conditions = st.lists(st.sampled_from(_CONDITIONS_POOL), max_size=2)
_actions = st.lists(st.sampled_from(_ACTIONS_POOL), min_size=1, max_size=3)
_mostly_off = st.sampled_from([False, False, True])
_threshold = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.9]))
_money = st.decimals(min_value=0, max_value=1000, places=2)
_refund_cap = st.one_of(st.none(), st.none(), st.none(), _money)
_execution_cap = st.one_of(st.none(), st.none(), st.none(), st.integers(0, 10))
_notes = st.sampled_from([[], [], ["amount_capped"]])
_intent = st.one_of(st.none(), st.sampled_from(["damaged_item", "wrong_item"]))


@st.composite
def playbooks(draw: st.DrawFn, calm: bool = False) -> PlaybookView:
    rules = PlaybookRules(
        trigger=draw(_triggers), conditions=draw(_conditions), actions=draw(_actions)
    )
    return PlaybookView(
        id=draw(st.uuids()),
        name="drawn",
        enabled=not draw(_mostly_off),
        priority=draw(st.integers(0, 3)),
        stop_processing=draw(st.booleans()),
        run_once_per_thread=draw(_mostly_off),
        confidence_threshold=draw(_threshold),
        requires_approval=not calm and draw(_mostly_off),
        rules=rules,
        created_at=T0 + timedelta(minutes=draw(st.integers(0, 2))),
    )


@st.composite
def safeties(draw: st.DrawFn, ids: list[uuid.UUID], calm: bool = False) -> Safety:
    return Safety(
        automation_enabled=calm or not draw(_mostly_off),
        guardrail_notes=[] if calm else draw(_notes),
        refunded_today=draw(_money),
        daily_refund_cap=draw(_refund_cap),
        executions_today=draw(st.integers(0, 10)),
        daily_execution_cap=draw(_execution_cap),
        ran_in_thread=frozenset(draw(st.lists(st.sampled_from(ids))) if ids else []),
    )


_calm_playbooks = st.lists(playbooks(True), min_size=1, max_size=5, unique_by=lambda p: p.id)
_any_playbooks = st.lists(playbooks(), min_size=1, max_size=5, unique_by=lambda p: p.id)


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[PlaybookView], TriggerEvent, dict[str, Any], Safety]:
    # Calm: automation on, no guardrail note, no playbook asking for a person; so that
    # automatic approvals are common enough for the properties to be about something.
    calm = draw(st.booleans())
    views = draw(_calm_playbooks if calm else _any_playbooks)
    event = TriggerEvent(event="message.received", intent=draw(_intent))
    return views, event, draw(facts()), draw(safeties([p.id for p in views], calm))


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)


@PROPERTY_SETTINGS
@given(situations())
def test_the_verdict_is_deterministic(
    situation: tuple[list[PlaybookView], TriggerEvent, dict[str, Any], Safety],
) -> None:
    views, event, drawn, safety = situation
    for playbook in views:
        assert evaluate(playbook, event, drawn, safety) == evaluate(
            playbook, event, dict(drawn), safety
        )
    chosen = choose(views, event, drawn, safety)
    shuffled = list(reversed(views))
    random.Random(len(views)).shuffle(shuffled)
    assert choose(shuffled, event, drawn, safety) == chosen  # the input order does not count


@PROPERTY_SETTINGS
@given(situations())
def test_a_disabled_playbook_never_runs(
    situation: tuple[list[PlaybookView], TriggerEvent, dict[str, Any], Safety],
) -> None:
    views, event, drawn, safety = situation
    disabled = {p.id for p in views if not p.enabled}
    assert not {v.playbook_id for v in choose(views, event, drawn, safety)} & disabled
    for playbook in views:
        if not playbook.enabled:
            verdict = evaluate(playbook, event, drawn, safety)
            assert not verdict.matched and not verdict.would_run and not verdict.auto_approve


@PROPERTY_SETTINGS
@given(situations())
def test_auto_approve_only_when_nothing_blocks(
    situation: tuple[list[PlaybookView], TriggerEvent, dict[str, Any], Safety],
) -> None:
    views, event, drawn, safety = situation
    for playbook in views:
        verdict = evaluate(playbook, event, drawn, safety)
        assert verdict.would_run == (verdict.matched and safety.automation_enabled)
        if verdict.auto_approve:
            assert verdict.would_run and verdict.blocked_by == []
            assert any(a["type"] == "approve_suggestion" for a in verdict.actions)
            assert not playbook.requires_approval and safety.automation_enabled
            confidence = drawn["suggestion.confidence"]
            assert confidence is not None and confidence >= playbook.confidence_threshold
            assert drawn.get("message.wants_human") is not True
            assert drawn.get("message.legal_threat") is not True
            assert not safety.guardrail_notes


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=st.characters(exclude_characters="{}"), max_size=10),
            st.sampled_from(["{{", "}}", *(f"{{{n}}}" for n in sorted(TEMPLATE_PLACEHOLDERS))]),
        ),
        max_size=8,
    ),
    st.dictionaries(
        st.sampled_from(sorted(FACT_PLACEHOLDERS.values())),
        st.one_of(st.none(), st.text(max_size=10), st.integers(), st.decimals(allow_nan=False)),
    ),
)
def test_a_valid_template_always_renders(pieces: list[str], values: dict[str, Any]) -> None:
    template = "".join(pieces) or "x"
    PlaybookRules.parse(
        ON_MESSAGE, [], [{"version": 2, "type": "send_followup", "template": template}]
    )
    rendered = render_template(template, values)
    assert render_template(template, values) == rendered


def test_the_drawn_situations_reach_automatic_approvals() -> None:
    """Otherwise the property above would hold of nothing."""
    find(
        situations(),
        lambda s: any(evaluate(p, s[1], s[2], s[3]).auto_approve for p in s[0]),
        settings=settings(max_examples=500, deadline=None, derandomize=True, database=None),
    )
