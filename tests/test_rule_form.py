"""The rule builder's form (api.rule_form): posted fields become the version-2 documents the
domain accepts, stored rules become the controls again, blank rows are left out, and an
error the domain names by index lands beside the block it came from."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from api import rule_form
from api.rule_form import ActionForm, ConditionBlock, ConditionRow, RuleForm, TriggerForm
from domain.playbook_rules import PlaybookRuleError, PlaybookRules


def _posted(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = defaultdict(list)
    for name, value in pairs:
        data[name].append(value)
    return dict(data)


def _documents(form: RuleForm) -> tuple[Any, list[Any], list[Any]]:
    built = rule_form.build(rule_form.read_form(_posted(rule_form.form_fields(form))))
    assert built.errors == {}
    return built.trigger, built.conditions, built.actions


EVERYTHING: tuple[dict[str, Any], list[Any], list[Any]] = (
    {
        "version": 2,
        "event": "message.received",
        "intents": ["damaged_item", "refund_request"],
        "channels": ["gmail"],
        "languages": ["en", "de"],
    },
    [
        {"version": 2, "field": "order.total_amount", "operator": "lt", "value": "50.5"},
        {"version": 2, "field": "message.wants_human", "operator": "eq", "value": False},
        {
            "version": 2,
            "any": [
                {"version": 2, "field": "order.shipping_country", "operator": "in",
                 "value": ["DE", "AT"]},
                {"version": 2, "field": "suggestion.action_type", "operator": "eq",
                 "value": "REFUND"},
            ],
        },
        {"version": 2, "all": [
            {"version": 2, "field": "thread.tags", "operator": "not_contains", "value": "vip"},
        ]},
    ],
    [
        {"version": 2, "type": "approve_suggestion", "action_types": ["REFUND"],
         "max_refund_amount": "80"},
        {"version": 2, "type": "reply_with_template", "template": "Hi {customer_first_name}"},
        {"version": 2, "type": "escalate", "reason": "Look at the photo"},
        {"version": 2, "type": "wait", "seconds": 7200, "cancel_on_reply": False},
        {"version": 2, "type": "send_followup", "template": "How was {order_name}?"},
        {"version": 2, "type": "tag_thread", "tags": ["refunded", "auto"]},
        {"version": 2, "type": "close_thread"},
    ],
)  # fmt: skip


def _stored(*documents: Any) -> tuple[Any, list[Any], list[Any]]:
    return PlaybookRules.parse(*documents).to_json()


@pytest.mark.parametrize(
    "trigger",
    [
        EVERYTHING[0],
        {"version": 2, "event": "order.event", "topics": ["fulfilled", "refunded"]},
        {"version": 2, "event": "order.event", "topics": []},
        {"version": 2, "event": "thread.idle", "after_seconds": 3 * 86400, "since": "our_reply"},
        {"version": 2, "event": "thread.idle", "after_seconds": 90, "since": "no_decision"},
    ],
)
def test_stored_rules_make_the_same_documents_through_the_form(trigger: dict[str, Any]) -> None:
    stored = _stored(trigger, EVERYTHING[1], EVERYTHING[2])
    form = rule_form.form_from_rules(PlaybookRules.parse(*stored))
    assert _stored(*_documents(form)) == stored


def test_version_1_rules_read_into_the_builder_and_save_as_version_2() -> None:
    v1 = (
        {"version": 1, "event": "message.received", "intents": ["damaged_item"]},
        [{"version": 1, "field": "order.total_amount", "operator": "lte", "value": 100}],
        [{"version": 1, "type": "escalate", "reason": "a person looks"}],
    )
    form = rule_form.form_from_rules(PlaybookRules.parse(*v1))
    assert form.conditions == [
        ConditionBlock("condition", [ConditionRow("order.total_amount", "lte", "100")])
    ]
    trigger, conditions, actions = _documents(form)
    assert trigger["version"] == 2 and conditions[0]["version"] == 2
    assert actions == [{"version": 2, "type": "escalate", "reason": "a person looks"}]


def test_values_follow_the_kind_of_their_field() -> None:
    form = RuleForm(
        conditions=[
            ConditionBlock(rows=[ConditionRow("customer.order_count", "gte", " 3 ")]),
            ConditionBlock(rows=[ConditionRow("message.legal_threat", "ne", "true")]),
            ConditionBlock(rows=[ConditionRow("message.language", "not_in", "en, , fr ,")]),
            ConditionBlock(rows=[ConditionRow("message.text", "contains", " broken ")]),
        ],
        actions=[ActionForm(type="close_thread")],
    )
    _, conditions, _ = _documents(form)
    assert [c["value"] for c in conditions] == ["3", True, ["en", "fr"], " broken "]
    assert PlaybookRules.parse({"version": 2, "event": "message.received"}, conditions,
                               [{"version": 2, "type": "close_thread"}])  # fmt: skip


def test_durations_take_a_unit() -> None:
    form = RuleForm(
        trigger=TriggerForm(
            event="thread.idle", after="1.5", after_unit="hours", since="our_reply"
        ),
        actions=[ActionForm(type="wait", wait="30", wait_unit="minutes", cancel_on_reply=True)],
    )
    trigger, _, actions = _documents(form)
    assert trigger["after_seconds"] == 5400
    assert actions == [{"version": 2, "type": "wait", "seconds": 1800, "cancel_on_reply": True}]
    assert rule_form.duration(5400) == ("90", "minutes")
    assert rule_form.duration(2 * 86400) == ("2", "days")
    assert rule_form.duration(90) == ("1.5", "minutes")


def test_blank_rows_are_left_out_and_errors_find_their_block() -> None:
    form = RuleForm(
        conditions=[
            ConditionBlock(rows=[ConditionRow()]),  # left blank
            ConditionBlock(rows=[ConditionRow("order.colour", "eq", "red")]),
        ],
        actions=[ActionForm(), ActionForm(type="tag_thread", tags=" , ")],
    )
    built = rule_form.build(form)
    assert built.errors == {}
    assert built.condition_blocks == [1] and built.action_rows == [1]
    with pytest.raises(PlaybookRuleError) as conditions_error:
        PlaybookRules.parse(
            built.trigger, built.conditions, [{"version": 2, "type": "close_thread"}]
        )
    assert conditions_error.value.message.startswith("conditions[0]: ")
    assert built.error_key(conditions_error.value.message) == "c1"  # beside block 2
    with pytest.raises(PlaybookRuleError) as actions_error:
        PlaybookRules.parse(built.trigger, [], built.actions)
    assert built.error_key(actions_error.value.message) == "a1"
    assert built.error_key("trigger: languages.0: bad") == "trigger"
    assert built.error_key("actions: a playbook needs at least one action") == "actions"


def test_what_the_form_cannot_turn_into_a_document_is_refused_beside_it() -> None:
    form = RuleForm(
        trigger=TriggerForm(event="thread.idle", after="soon", after_unit="days"),
        conditions=[
            ConditionBlock("condition", [ConditionRow("order.cancelled", "eq", "maybe")]),
            ConditionBlock("condition", [ConditionRow("order.cancelled", "eq", "true")] * 2),
        ],
        actions=[ActionForm(type="wait", wait="0.5", wait_unit="minutes"),
                 ActionForm(type="launch_rocket")],
    )  # fmt: skip
    built = rule_form.build(form)
    assert set(built.errors) == {"trigger", "c0", "c1", "a1"}
    assert "trigger: after" in built.errors["trigger"]
    assert "yes or no" in built.errors["c0"] and "any/all group" in built.errors["c1"]
    assert built.actions == [{"version": 2, "type": "wait", "seconds": 30, "cancel_on_reply": True}]
    fractional = rule_form.build(
        RuleForm(actions=[ActionForm(type="wait", wait="0.001", wait_unit="minutes")])
    )
    assert "whole number of seconds" in fractional.errors["a0"]


def test_the_buttons_add_and_remove_rows() -> None:
    form = RuleForm(actions=[ActionForm(type="escalate", reason="x")])
    form = rule_form.apply_edit(form, "add-condition")
    form = rule_form.apply_edit(form, "add-group")
    assert [b.mode for b in form.conditions] == ["condition", "any"]
    assert len(form.conditions[1].rows) == 2
    form = rule_form.apply_edit(form, "add-row:1")
    assert len(form.conditions[1].rows) == 3
    form = rule_form.apply_edit(form, "remove-row:1:0")
    assert len(form.conditions[1].rows) == 2
    form = rule_form.apply_edit(form, "remove-condition:0")
    assert [b.mode for b in form.conditions] == ["any"]
    form = rule_form.apply_edit(form, "add-action")
    assert [a.type for a in form.actions] == ["escalate", "escalate"]
    form = rule_form.apply_edit(form, "remove-action:0")
    assert len(form.actions) == 1
    # Out of range or unknown: nothing changes.
    for edit in ("remove-row:9:9", "remove-condition:7", "add-row:x", "refresh", "remove-action:5"):
        assert rule_form.apply_edit(form, edit) == form
    # The last row of a block gone: the block goes too.
    single = rule_form.apply_edit(RuleForm(), "add-condition")
    assert rule_form.apply_edit(single, "remove-row:0:0").conditions == []


def test_posted_fields_read_back_in_index_order() -> None:
    posted = _posted(
        [
            ("c10.mode", "any"),
            ("c10.1.field", "order.cancelled"),
            ("c10.1.operator", "eq"),
            ("c10.1.value", "false"),
            ("c2.mode", "condition"),
            ("c2.0.field", "message.text"),
            ("c2.0.value", "hello"),
            ("a3.type", "close_thread"),
            ("a1.type", "tag_thread"),
            ("a1.tags", "a, b"),
            ("a1.cancel_on_reply", "on"),
            ("cx.mode", "any"),  # not a builder field: ignored
        ]
    )
    form = rule_form.read_form(posted)
    assert [b.mode for b in form.conditions] == ["condition", "any"]
    assert form.conditions[0].rows == [ConditionRow("message.text", "eq", "hello")]
    assert [a.type for a in form.actions] == ["tag_thread", "close_thread"]
    assert form.actions[0].cancel_on_reply is True and form.actions[1].cancel_on_reply is False


def test_the_operators_follow_the_field() -> None:
    assert rule_form.operators_for("order.cancelled") == ["eq", "ne"]
    assert rule_form.operators_for("thread.tags") == ["contains", "not_contains"]
    assert "lt" in rule_form.operators_for("order.total_amount")
    assert "contains" not in rule_form.operators_for("order.total_amount")
    assert rule_form.value_kind("message.language", "in") == "list"
    assert rule_form.value_kind("suggestion.action_type", "eq") == "action_type"
    assert set(rule_form.vocabulary()["fields"]) == set(rule_form.CONDITION_FIELDS)
