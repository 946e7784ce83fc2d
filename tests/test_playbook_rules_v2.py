"""Playbook rule documents, version 2: what parses, into which shapes, what is refused and
why; version 1 still reads, into the same shapes; what is written back is version 2."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.default_playbooks import DEFAULT_PLAYBOOKS
from domain.playbook_rules import (
    CONDITION_FIELDS,
    CONDITION_FIELDS_V1,
    FACT_PLACEHOLDERS,
    MAX_DELAY_SECONDS,
    OPERATORS_BY_KIND,
    TEMPLATE_PLACEHOLDERS,
    AllGroup,
    AnyGroup,
    ApproveSuggestion,
    Channel,
    CloseThread,
    Condition,
    MessageReceivedTrigger,
    OrderEventTrigger,
    OrderTopic,
    PlaybookRuleError,
    PlaybookRules,
    ReplyWithTemplate,
    SendFollowup,
    TagThread,
    ThreadIdleTrigger,
    Wait,
    parse_actions,
    parse_conditions,
    parse_trigger,
)
from services.playbook_settings import ACTIONS_SCHEMA, CONDITIONS_SCHEMA, TRIGGER_SCHEMA


def cond(field: str, operator: str, value: Any, version: int = 2) -> dict[str, Any]:
    return {"version": version, "field": field, "operator": operator, "value": value}


ESCALATE = {"version": 2, "type": "escalate", "reason": "a person looks"}


# --- version 1, read as version 2 ----------------------------------------------------------


def test_version_1_reads_into_the_version_2_shapes_and_writes_version_2() -> None:
    rules = PlaybookRules.parse(
        {"version": 1, "event": "message.received", "intents": ["damaged_item"]},
        [cond("order.total_amount", "lte", 80, version=1)],
        [
            {"version": 1, "type": "approve_suggestion", "action_types": ["REFUND"]},
            {"version": 1, "type": "reply_with_template", "template": "Hi {customer_name}"},
            {"version": 1, "type": "escalate", "reason": "why"},
        ],
    )
    assert rules.trigger == MessageReceivedTrigger(intents=["damaged_item"])
    assert rules.conditions == [Condition(field="order.total_amount", operator="lte", value=80)]
    assert [type(a) for a in rules.actions] == [
        ApproveSuggestion,
        ReplyWithTemplate,
        type(parse_actions([ESCALATE])[0]),
    ]
    trigger, conditions, actions = rules.to_json()
    assert trigger == {
        "version": 2,
        "event": "message.received",
        "intents": ["damaged_item"],
        "channels": [],
        "languages": [],
    }
    assert conditions == [cond("order.total_amount", "lte", "80")]  # normalised: Decimal text
    assert {a["version"] for a in actions} == {2}
    assert actions[0] == {
        "version": 2,
        "type": "approve_suggestion",
        "action_types": ["REFUND"],
        "max_refund_amount": None,
    }
    assert PlaybookRules.parse(trigger, conditions, actions) == rules


def test_version_1_keeps_its_own_vocabulary() -> None:
    with pytest.raises(PlaybookRuleError, match=r"'thread\.tags' needs version 2"):
        parse_conditions([cond("thread.tags", "contains", "vip", version=1)])
    with pytest.raises(PlaybookRuleError, match="unknown placeholders"):
        parse_actions([{"version": 1, "type": "reply_with_template", "template": "{order_total}"}])
    with pytest.raises(PlaybookRuleError, match="type"):
        parse_actions([{"version": 1, "type": "close_thread"}])
    with pytest.raises(
        PlaybookRuleError, match=r"conditions\[0\]: groups \('any'\) need version 2"
    ):
        parse_conditions([{"version": 1, "any": [cond("order.cancelled", "eq", True)]}])
    assert set(CONDITION_FIELDS_V1) < set(CONDITION_FIELDS)


def test_the_default_playbooks_are_written_in_version_2() -> None:
    for template in DEFAULT_PLAYBOOKS:
        documents = (template.trigger, template.conditions, template.actions)
        assert PlaybookRules.parse(*documents).to_json()[0] == template.trigger
        assert template.trigger["version"] == 2
        assert all(d["version"] == 2 for d in [*template.conditions, *template.actions])
        assert (template.priority, template.stop_processing) == (100, False)


# --- triggers -------------------------------------------------------------------------------


def test_the_three_triggers() -> None:
    message = parse_trigger(
        {
            "version": 2,
            "event": "message.received",
            "intents": ["order_status"],
            "channels": ["gmail", "api"],
            "languages": ["en", "fr"],
        }
    )
    assert message == MessageReceivedTrigger(
        intents=["order_status"], channels=[Channel.GMAIL, Channel.API], languages=["en", "fr"]
    )
    assert parse_trigger({"version": 2, "event": "message.received"}) == MessageReceivedTrigger()
    order = parse_trigger({"version": 2, "event": "order.event", "topics": ["fulfilled"]})
    assert order == OrderEventTrigger(topics=[OrderTopic.FULFILLED])
    assert parse_trigger({"version": 2, "event": "order.event"}) == OrderEventTrigger()
    idle = parse_trigger(
        {"version": 2, "event": "thread.idle", "after_seconds": 86_400, "since": "our_reply"}
    )
    assert idle == ThreadIdleTrigger(after_seconds=86_400, since="our_reply")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"version": 3, "event": "message.received"}, "unsupported version 3; known: [1, 2]"),
        ({"version": True, "event": "message.received"}, "unsupported version True"),
        ({"version": 2, "event": "cron"}, "'cron' found using 'event'"),
        ({"version": 2, "event": "message.received", "channels": ["fax"]}, "channels.0"),
        ({"version": 2, "event": "message.received", "languages": ["EN"]}, "languages.0"),
        ({"version": 2, "event": "message.received", "languages": ["eng"]}, "languages.0"),
        ({"version": 2, "event": "message.received", "topics": []}, "topics: extra inputs"),
        ({"version": 2, "event": "order.event", "topics": ["paid"]}, "topics.0"),
        ({"version": 2, "event": "thread.idle", "since": "our_reply"}, "after_seconds: field"),
        ({"version": 2, "event": "thread.idle", "after_seconds": 60}, "since: field required"),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 59, "since": "our_reply"},
            "greater than or equal to 60",
        ),
        (
            {
                "version": 2,
                "event": "thread.idle",
                "after_seconds": MAX_DELAY_SECONDS + 1,
                "since": "no_decision",
            },
            f"less than or equal to {MAX_DELAY_SECONDS}",
        ),
        (
            {"version": 2, "event": "thread.idle", "after_seconds": 60, "since": "ever"},
            "since",
        ),
    ],
)
def test_bad_triggers_are_refused_with_a_reason(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(PlaybookRuleError) as error:
        parse_trigger(document)
    assert str(error.value).startswith("trigger: ")
    assert reason.lower() in str(error.value).lower()


def test_ninety_days_is_the_longest_idle_time_and_wait() -> None:
    assert MAX_DELAY_SECONDS == 90 * 24 * 3600
    idle = {"version": 2, "event": "thread.idle", "since": "no_decision"}
    assert parse_trigger({**idle, "after_seconds": MAX_DELAY_SECONDS}).after_seconds > 0
    assert parse_trigger({**idle, "after_seconds": 60}).after_seconds == 60
    wait = {"version": 2, "type": "wait"}
    assert parse_actions([{**wait, "seconds": MAX_DELAY_SECONDS}, {**wait, "seconds": 1}])


# --- conditions -----------------------------------------------------------------------------


def test_the_new_fields_and_their_kinds() -> None:
    parsed = parse_conditions(
        [
            cond("customer.total_spent", "gte", 250.5),
            cond("customer.order_count", "gt", "3"),
            cond("customer.email", "contains", "@example.com"),
            cond("order.shipping_country", "in", ["DE", "AT"]),
            cond("message.language", "eq", "de"),
            cond("message.channel", "ne", "api"),
            cond("message.sentiment", "not_in", ["angry", "negative"]),
            cond("message.wants_human", "eq", False),
            cond("message.legal_threat", "eq", False),
            cond("thread.message_count", "lt", 5),
            cond("thread.tags", "contains", "vip"),
            cond("thread.tags", "not_contains", "fraud"),
            cond("time.business_hours", "eq", True),
        ]
    )
    assert [c.value for c in parsed[:2]] == [Decimal("250.5"), Decimal("3")]
    assert OPERATORS_BY_KIND["tags"] == {"contains", "not_contains"}
    assert CONDITION_FIELDS["thread.tags"] == "tags"


def test_groups_nest_one_level() -> None:
    member = cond("order.fulfillment_status", "eq", "unfulfilled")
    parsed = parse_conditions(
        [
            cond("order.cancelled", "eq", False),
            {"version": 2, "any": [member, cond("thread.tags", "contains", "vip")]},
            {"version": 2, "all": [member]},
        ]
    )
    assert isinstance(parsed[0], Condition)
    assert isinstance(parsed[1], AnyGroup) and parsed[1].mode == "any"
    assert isinstance(parsed[2], AllGroup) and parsed[2].members == [Condition(**member)]
    documents = PlaybookRules(
        trigger=MessageReceivedTrigger(), conditions=parsed, actions=parse_actions([ESCALATE])
    ).to_json()[1]
    assert documents[1] == {
        "version": 2,
        "any": [member, cond("thread.tags", "contains", "vip")],
    }
    assert parse_conditions(documents) == parsed


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (
            {"version": 2, "any": [{"version": 2, "all": [cond("order.cancelled", "eq", True)]}]},
            "conditions[0]: any: value error, groups nest one level only",
        ),
        ({"version": 2, "all": []}, "conditions[0]: all: list should have at least 1 item"),
        ({"version": 2, "any": [], "all": []}, "either 'any' or 'all', not both"),
        ({"version": 2, "any": [cond("order.cancelled", "eq", True, version=1)]}, "any.0.version"),
        ({"version": 2, "any": cond("order.cancelled", "eq", True)}, "any: input should be a"),
        ({"version": 2, "any": [cond("order.cancelled", "eq", 1)]}, "bool value, not Decimal('1')"),
        (
            {"version": 2, "any": [cond("order.cancelled", "eq", True)], "mode": "any"},
            "mode: extra inputs",
        ),
    ],
)
def test_bad_groups_are_refused_with_a_reason(item: dict[str, Any], reason: str) -> None:
    with pytest.raises(PlaybookRuleError) as error:
        parse_conditions([item])
    assert reason.lower() in str(error.value).lower()


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (cond("thread.tags", "eq", "vip"), "operator 'eq' does not apply to 'thread.tags'"),
        (cond("thread.tags", "contains", ["vip"]), "'contains' takes a single value"),
        (cond("thread.tags", "contains", "x" * 41), "'thread.tags' compares with a tags value"),
        (cond("thread.tags", "contains", ""), "compares with a tags value"),
        (cond("message.text", "not_contains", "x"), "does not apply to 'message.text'"),
        (cond("customer.total_spent", "gt", "NaN"), "compares with a number value, not 'NaN'"),
        (cond("customer.total_spent", "gt", "Infinity"), "number value"),
        (cond("customer.total_spent", "gt", True), "number value"),
        (cond("time.business_hours", "eq", "yes"), "bool value"),
        (cond("order.colour", "eq", "red"), "unknown field 'order.colour'"),
        (cond("message.channel", "in", "api"), "'in' takes a list"),
        ({"version": 2, "field": "message.channel", "operator": "eq"}, "value: field required"),
        ({**cond("message.channel", "eq", "api"), "note": 1}, "note: extra inputs"),
        ([cond("message.channel", "eq", "api")], "expected an object, got list"),
        (cond({"a": 1}, "eq", 1), "field: input should be a valid string"),  # once a TypeError
        (cond(["order.total_amount"], "eq", 1), "field: input should be a valid string"),
    ],
)
def test_bad_conditions_are_refused_with_a_reason(item: Any, reason: str) -> None:
    with pytest.raises(PlaybookRuleError) as error:
        parse_conditions([item])
    assert str(error.value).startswith("conditions[0]: ")
    assert reason.lower() in str(error.value).lower()


def test_conditions_must_be_a_list() -> None:
    with pytest.raises(PlaybookRuleError, match=r"^conditions: expected a list, got dict"):
        parse_conditions({"version": 2, "any": []})


# --- actions --------------------------------------------------------------------------------


def test_the_new_actions() -> None:
    actions = parse_actions(
        [
            {"version": 2, "type": "wait", "seconds": 3600},
            {"version": 2, "type": "wait", "seconds": 60, "cancel_on_reply": False},
            {
                "version": 2,
                "type": "send_followup",
                "template": "Hi {customer_first_name}, {order_name} ({order_total}) {{ok}}",
            },
            {"version": 2, "type": "tag_thread", "tags": ["vip", "refund", "vip"]},
            {"version": 2, "type": "close_thread"},
        ]
    )
    assert actions == [
        Wait(seconds=3600, cancel_on_reply=True),
        Wait(seconds=60, cancel_on_reply=False),
        SendFollowup(template="Hi {customer_first_name}, {order_name} ({order_total}) {{ok}}"),
        TagThread(tags=["vip", "refund"]),  # each tag once, in the order given
        CloseThread(),
    ]
    assert (
        TEMPLATE_PLACEHOLDERS
        == set(FACT_PLACEHOLDERS)
        >= {
            "customer_name",
            "customer_first_name",
            "order_name",
            "order_status",
            "order_total",
            "tracking_url",
            "store_name",
        }
    )


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"version": 2, "type": "wait", "seconds": 0}, "wait.seconds: input should be greater"),
        ({"version": 2, "type": "wait", "seconds": MAX_DELAY_SECONDS + 1}, "wait.seconds"),
        ({"version": 2, "type": "wait"}, "wait.seconds: field required"),
        ({"version": 2, "type": "tag_thread", "tags": []}, "tag_thread.tags: list should have"),
        ({"version": 2, "type": "tag_thread", "tags": ["t"] * 11}, "at most 10 items"),
        ({"version": 2, "type": "tag_thread", "tags": ["x" * 41]}, "at most 40 characters"),
        ({"version": 2, "type": "tag_thread", "tags": [""]}, "at least 1 character"),
        ({"version": 2, "type": "close_thread", "reason": "x"}, "reason: extra inputs"),
        ({"version": 2, "type": "send_followup", "template": ""}, "at least 1 character"),
        (
            {"version": 2, "type": "send_followup", "template": "{coupon}"},
            "unknown placeholders ['coupon']",
        ),
        (
            {"version": 2, "type": "reply_with_template", "template": "Hi {}"},
            "placeholders need a name",
        ),
        (
            {"version": 2, "type": "reply_with_template", "template": "{customer_name!r}"},
            "no conversion or format",
        ),
        (
            {"version": 2, "type": "reply_with_template", "template": "{order_total:>10}"},
            "no conversion or format",
        ),
        ({"version": 2, "type": "send_followup", "template": "Hi {"}, "not well-formed"),
        (
            {"version": 2, "type": "approve_suggestion", "action_types": ["WIRE"]},
            "approve_suggestion.action_types.0",
        ),
        ({"version": 2, "type": "snooze"}, "'snooze' found using 'type'"),
    ],
)
def test_bad_actions_are_refused_with_a_reason(item: dict[str, Any], reason: str) -> None:
    with pytest.raises(PlaybookRuleError) as error:
        parse_actions([ESCALATE, item])
    assert str(error.value).startswith("actions[1]: ")
    assert reason.lower() in str(error.value).lower()


def test_a_playbook_needs_an_action() -> None:
    with pytest.raises(PlaybookRuleError, match=r"^actions: a playbook needs at least one action"):
        parse_actions([])


# --- one shape in memory, whichever way it travels -----------------------------------------


def _full_rules() -> PlaybookRules:
    return PlaybookRules.parse(
        {"version": 2, "event": "thread.idle", "after_seconds": 7200, "since": "our_reply"},
        [
            cond("suggestion.refund_amount", "lte", "49.90"),
            {"version": 2, "all": [cond("thread.tags", "not_contains", "vip")]},
        ],
        [
            {"version": 2, "type": "wait", "seconds": 600},
            {"version": 2, "type": "send_followup", "template": "Still there, {customer_name}?"},
            {
                "version": 2,
                "type": "approve_suggestion",
                "action_types": ["REFUND"],
                "max_refund_amount": 49.9,
            },
        ],
    )


def test_rules_survive_json_as_a_workflow_argument() -> None:
    """Temporal's pydantic converter sends models as JSON and validates them back."""
    rules = _full_rules()
    assert PlaybookRules.model_validate_json(rules.model_dump_json()) == rules
    assert PlaybookRules.parse(*rules.to_json()) == rules
    assert rules.actions[2] == ApproveSuggestion(
        action_types=["REFUND"], max_refund_amount=Decimal("49.9")
    )


# --- the published JSON Schema says the same ------------------------------------------------


def test_what_is_written_matches_the_published_schemas() -> None:
    """A client can send back what it read: every stored document matches the OpenAPI
    schemas (which tests/test_openapi_fuzz.py checks the domain accepts)."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")  # schemathesis' own validator
    validators = [
        jsonschema_rs.validator_for(s) for s in (TRIGGER_SCHEMA, CONDITIONS_SCHEMA, ACTIONS_SCHEMA)
    ]
    documents = [
        PlaybookRules.parse(t.trigger, t.conditions, t.actions).to_json() for t in DEFAULT_PLAYBOOKS
    ]
    documents.append(_full_rules().to_json())
    documents.append(
        PlaybookRules.parse(
            {"version": 1, "event": "message.received"},
            [cond("order.cancelled", "eq", False, version=1)],
            [
                {"version": 2, "type": "tag_thread", "tags": ["a"]},
                {"version": 2, "type": "close_thread"},
            ],
        ).to_json()
    )
    for written in documents:
        for validator, document in zip(validators, written, strict=True):
            assert validator.is_valid(document), document
    # And the schemas refuse what the domain refuses, where they can say it.
    assert not validators[1].is_valid(
        [{"version": 2, "any": [{"version": 2, "all": [cond("order.cancelled", "eq", True)]}]}]
    )
    assert not validators[1].is_valid([{"version": 2, "any": []}])
    assert not validators[0].is_valid(
        {"version": 2, "event": "message.received", "languages": ["en\n"]}
    )
    assert not validators[2].is_valid([{"version": 1, "type": "close_thread"}])
