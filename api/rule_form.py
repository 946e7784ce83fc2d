"""The rule builder's form: the playbook page's WHEN / IF / THEN controls, read from and
turned into the version-2 rule documents. Pure: no I/O, no request; the domain
(`domain.playbook_rules`) still validates what this builds and names the part in error.

Field names (one form, rows by index; the page renders them from `RuleForm`):

- ``trigger.event``; ``trigger.intents`` / ``trigger.channels`` / ``trigger.topics``
  (repeated checkboxes); ``trigger.languages`` (comma-separated codes);
  ``trigger.after`` + ``trigger.after_unit``; ``trigger.since``;
- ``c{i}.mode`` (``condition``, ``any`` or ``all``) and its rows
  ``c{i}.{j}.field`` / ``.operator`` / ``.value`` (a list is comma-separated);
- ``a{k}.type`` with ``.action_types`` (repeated), ``.max_refund_amount``, ``.template``,
  ``.reason``, ``.wait`` + ``.wait_unit``, ``.cancel_on_reply``, ``.tags``.

A row left blank (no field, no action type) is dropped; the maps in `Built` say which form
block each document item came from, so an error the domain names by its index ("conditions[1]")
lands beside the right block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.playbook_rules import (
    CONDITION_FIELDS,
    OPERATORS_BY_KIND,
    AllGroup,
    AnyGroup,
    ApproveSuggestion,
    Condition,
    Escalate,
    MessageReceivedTrigger,
    OrderEventTrigger,
    PlaybookRules,
    ReplyWithTemplate,
    SendFollowup,
    TagThread,
    ThreadIdleTrigger,
    Wait,
)

FormData = Mapping[str, Sequence[str]]

EVENTS = ("message.received", "order.event", "thread.idle")
MODES = ("condition", "any", "all")
ACTION_TYPES = (
    "approve_suggestion",
    "reply_with_template",
    "escalate",
    "wait",
    "send_followup",
    "tag_thread",
    "close_thread",
)
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
LIST_OPERATORS = frozenset({"in", "not_in"})
# Operators in the order a person reads them, with their labels.
OPERATOR_LABELS = {
    "eq": "is",
    "ne": "is not",
    "lt": "<",
    "lte": "≤",
    "gt": ">",
    "gte": "≥",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "not_contains": "does not contain",
}
_ROW = re.compile(r"^c(\d{1,3})\.(\d{1,3})\.field$")
_BLOCK = re.compile(r"^c(\d{1,3})\.mode$")
_ACTION = re.compile(r"^a(\d{1,3})\.type$")


def operators_for(field_name: str) -> list[str]:
    """The operators that apply to a field, in reading order (every one for no field)."""
    kind = CONDITION_FIELDS.get(field_name)
    allowed = OPERATORS_BY_KIND[kind] if kind else set(OPERATOR_LABELS)
    return [op for op in OPERATOR_LABELS if op in allowed]


def value_kind(field_name: str, operator: str) -> str:
    """How the value is typed: "list" (comma-separated), else the field's kind."""
    if operator in LIST_OPERATORS:
        return "list"
    return CONDITION_FIELDS.get(field_name, "text")


@dataclass
class TriggerForm:
    event: str = "message.received"
    intents: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    languages: str = ""
    topics: list[str] = field(default_factory=list)
    after: str = "2"
    after_unit: str = "days"
    since: str = "our_reply"


@dataclass
class ConditionRow:
    field: str = ""
    operator: str = "eq"
    value: str = ""


@dataclass
class ConditionBlock:
    mode: str = "condition"
    rows: list[ConditionRow] = field(default_factory=lambda: [ConditionRow()])


@dataclass
class ActionForm:
    type: str = ""
    action_types: list[str] = field(default_factory=list)
    max_refund_amount: str = ""
    template: str = ""
    reason: str = ""
    wait: str = "1"
    wait_unit: str = "days"
    cancel_on_reply: bool = True
    tags: str = ""


@dataclass
class RuleForm:
    trigger: TriggerForm = field(default_factory=TriggerForm)
    conditions: list[ConditionBlock] = field(default_factory=list)
    actions: list[ActionForm] = field(default_factory=list)


@dataclass
class Built:
    """The documents the form makes, or the errors that kept it from making them; errors
    are keyed "trigger", "c{i}" (a block) or "a{k}" (an action)."""

    trigger: dict[str, Any] | None
    conditions: list[Any]
    actions: list[Any]
    errors: dict[str, str]
    condition_blocks: list[int]  # conditions[n] came from block condition_blocks[n]
    action_rows: list[int]  # actions[n] came from action row action_rows[n]

    def error_key(self, message: str) -> str:
        """Where a domain error belongs: its part ("conditions[1]: ...") as a form key."""
        part = message.split(":", 1)[0]
        found = re.fullmatch(r"(conditions|actions)\[(\d+)\]", part)
        if found is None:
            return "trigger" if part == "trigger" else part
        index = int(found.group(2))
        rows = self.condition_blocks if found.group(1) == "conditions" else self.action_rows
        prefix = "c" if found.group(1) == "conditions" else "a"
        return f"{prefix}{rows[index]}" if index < len(rows) else found.group(1)


# --- documents -> form ---------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def duration(seconds: int) -> tuple[str, str]:
    """A number of seconds as the largest unit it is a whole number of (else minutes)."""
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            return str(seconds // UNITS[unit]), unit
    return _text(Decimal(seconds) / 60), "minutes"


def _row(condition: Condition) -> ConditionRow:
    return ConditionRow(condition.field, condition.operator, _text(condition.value))


def _trigger_form(trigger: Any) -> TriggerForm:
    if isinstance(trigger, MessageReceivedTrigger):
        return TriggerForm(
            event=trigger.event,
            intents=[str(i) for i in trigger.intents],
            channels=[str(c) for c in trigger.channels],
            languages=", ".join(trigger.languages),
        )
    if isinstance(trigger, OrderEventTrigger):
        return TriggerForm(event=trigger.event, topics=[str(t) for t in trigger.topics])
    assert isinstance(trigger, ThreadIdleTrigger)
    after, unit = duration(trigger.after_seconds)
    return TriggerForm(event=trigger.event, after=after, after_unit=unit, since=trigger.since)


def _action_form(action: Any) -> ActionForm:
    form = ActionForm(type=action.type)
    if isinstance(action, ApproveSuggestion):
        form.action_types = [str(t) for t in action.action_types]
        form.max_refund_amount = _text(action.max_refund_amount)
    elif isinstance(action, ReplyWithTemplate | SendFollowup):
        form.template = action.template
    elif isinstance(action, Escalate):
        form.reason = action.reason
    elif isinstance(action, Wait):
        form.wait, form.wait_unit = duration(action.seconds)
        form.cancel_on_reply = action.cancel_on_reply
    elif isinstance(action, TagThread):
        form.tags = ", ".join(action.tags)
    return form


def form_from_rules(rules: PlaybookRules) -> RuleForm:
    """The builder's controls for stored rules (parsed: version 1 reads as version 2)."""
    blocks = []
    for item in rules.conditions:
        if isinstance(item, AnyGroup | AllGroup):
            blocks.append(ConditionBlock(item.mode, [_row(c) for c in item.members]))
        else:
            blocks.append(ConditionBlock("condition", [_row(item)]))
    return RuleForm(
        trigger=_trigger_form(rules.trigger),
        conditions=blocks,
        actions=[_action_form(a) for a in rules.actions],
    )


# --- posted fields -> form -----------------------------------------------------------------


def first(data: FormData, name: str, default: str = "") -> str:
    """The first value posted under `name`."""
    values = data.get(name) or []
    return values[0] if values else default


def _indices(data: FormData, pattern: re.Pattern[str]) -> list[int]:
    return sorted({int(m.group(1)) for name in data if (m := pattern.match(name))})


def read_form(data: FormData) -> RuleForm:
    """The builder's state as posted (what was typed, unchecked: `build` checks it)."""
    trigger = TriggerForm(
        event=first(data, "trigger.event", "message.received"),
        intents=list(data.get("trigger.intents") or []),
        channels=list(data.get("trigger.channels") or []),
        languages=first(data, "trigger.languages"),
        topics=list(data.get("trigger.topics") or []),
        after=first(data, "trigger.after"),
        after_unit=first(data, "trigger.after_unit", "days"),
        since=first(data, "trigger.since", "our_reply"),
    )
    blocks = []
    rows_of: dict[int, list[int]] = {}
    for name in data:
        if found := _ROW.match(name):
            rows_of.setdefault(int(found.group(1)), []).append(int(found.group(2)))
    for i in sorted(set(rows_of) | set(_indices(data, _BLOCK))):
        rows = [
            ConditionRow(
                field=first(data, f"c{i}.{j}.field"),
                operator=first(data, f"c{i}.{j}.operator", "eq"),
                value=first(data, f"c{i}.{j}.value"),
            )
            for j in sorted(rows_of.get(i, []))
        ]
        blocks.append(ConditionBlock(mode=first(data, f"c{i}.mode", "condition"), rows=rows))
    actions = [
        ActionForm(
            type=first(data, f"a{k}.type"),
            action_types=list(data.get(f"a{k}.action_types") or []),
            max_refund_amount=first(data, f"a{k}.max_refund_amount"),
            template=first(data, f"a{k}.template"),
            reason=first(data, f"a{k}.reason"),
            wait=first(data, f"a{k}.wait"),
            wait_unit=first(data, f"a{k}.wait_unit", "days"),
            cancel_on_reply=bool(data.get(f"a{k}.cancel_on_reply")),
            tags=first(data, f"a{k}.tags"),
        )
        for k in _indices(data, _ACTION)
    ]
    return RuleForm(trigger=trigger, conditions=blocks, actions=actions)


def form_fields(form: RuleForm) -> list[tuple[str, str]]:
    """The (name, value) pairs a browser posts for `form`: the page's field names."""
    t = form.trigger
    fields = [("trigger.event", t.event)]
    fields += [("trigger.intents", v) for v in t.intents]
    fields += [("trigger.channels", v) for v in t.channels]
    fields += [("trigger.topics", v) for v in t.topics]
    fields += [
        ("trigger.languages", t.languages),
        ("trigger.after", t.after),
        ("trigger.after_unit", t.after_unit),
        ("trigger.since", t.since),
    ]
    for i, block in enumerate(form.conditions):
        fields.append((f"c{i}.mode", block.mode))
        for j, row in enumerate(block.rows):
            prefix = f"c{i}.{j}"
            fields += [
                (f"{prefix}.field", row.field),
                (f"{prefix}.operator", row.operator),
                (f"{prefix}.value", row.value),
            ]
    for k, action in enumerate(form.actions):
        fields += [(f"a{k}.type", action.type)]
        fields += [(f"a{k}.action_types", v) for v in action.action_types]
        fields += [
            (f"a{k}.max_refund_amount", action.max_refund_amount),
            (f"a{k}.template", action.template),
            (f"a{k}.reason", action.reason),
            (f"a{k}.wait", action.wait),
            (f"a{k}.wait_unit", action.wait_unit),
            (f"a{k}.tags", action.tags),
        ]
        if action.cancel_on_reply:
            fields.append((f"a{k}.cancel_on_reply", "on"))
    return fields


# --- form -> documents ---------------------------------------------------------------------


class _Refused(ValueError):
    """A control's text cannot become its part of the document; the message says why."""


def _seconds(amount: str, unit: str, what: str) -> int:
    try:
        number = Decimal(amount.strip()) * UNITS[unit]
    except (InvalidOperation, KeyError):
        raise _Refused(f"{what}: a number of minutes, hours or days, such as 2") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise _Refused(f"{what}: a whole number of seconds (try a smaller unit)")
    return int(number)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _value(row: ConditionRow) -> Any:
    kind = value_kind(row.field, row.operator)
    if kind == "list":
        return _split(row.value)
    if kind == "bool":
        if row.value not in ("true", "false"):
            raise _Refused(f"{row.field}: choose yes or no")
        return row.value == "true"
    # Numbers go as text: the domain reads decimal text and says why a word is not one.
    return row.value.strip() if kind in ("number", "action_type") else row.value


def _condition(row: ConditionRow) -> dict[str, Any]:
    return {"version": 2, "field": row.field, "operator": row.operator, "value": _value(row)}


def _trigger(form: TriggerForm) -> dict[str, Any]:
    if form.event == "message.received":
        return {
            "version": 2,
            "event": form.event,
            "intents": form.intents,
            "channels": form.channels,
            "languages": [code.lower() for code in _split(form.languages)],
        }
    if form.event == "order.event":
        return {"version": 2, "event": form.event, "topics": form.topics}
    if form.event == "thread.idle":
        return {
            "version": 2,
            "event": form.event,
            "after_seconds": _seconds(form.after, form.after_unit, "trigger: after"),
            "since": form.since,
        }
    raise _Refused(f"trigger: choose one of {', '.join(EVENTS)}")


def _action(form: ActionForm) -> dict[str, Any]:
    document: dict[str, Any] = {"version": 2, "type": form.type}
    if form.type == "approve_suggestion":
        document["action_types"] = form.action_types
        amount = form.max_refund_amount.strip()
        document["max_refund_amount"] = amount or None
    elif form.type in ("reply_with_template", "send_followup"):
        document["template"] = form.template
    elif form.type == "escalate":
        document["reason"] = form.reason.strip()
    elif form.type == "wait":
        document["seconds"] = _seconds(form.wait, form.wait_unit, "wait")
        document["cancel_on_reply"] = form.cancel_on_reply
    elif form.type == "tag_thread":
        document["tags"] = _split(form.tags)
    elif form.type != "close_thread":
        raise _Refused(f"choose one of {', '.join(ACTION_TYPES)}")
    return document


def _block(block: ConditionBlock) -> dict[str, Any] | None:
    rows = [row for row in block.rows if row.field]
    if not rows:
        return None
    if block.mode == "condition":
        if len(rows) > 1:
            raise _Refused("one condition has one row: make it an any/all group, or remove rows")
        return _condition(rows[0])
    if block.mode not in ("any", "all"):
        raise _Refused("a block is one condition, or an any / all group")
    return {"version": 2, block.mode: [_condition(row) for row in rows]}


def build(form: RuleForm) -> Built:
    """The documents for `form`; blank rows are left out. The domain checks the rest."""
    errors: dict[str, str] = {}
    trigger: dict[str, Any] | None = None
    try:
        trigger = _trigger(form.trigger)
    except _Refused as exc:
        errors["trigger"] = str(exc)
    conditions, blocks = [], []
    for i, block in enumerate(form.conditions):
        try:
            document = _block(block)
        except _Refused as exc:
            errors[f"c{i}"] = str(exc)
            continue
        if document is not None:
            conditions.append(document)
            blocks.append(i)
    actions, rows = [], []
    for k, action in enumerate(form.actions):
        if not action.type:
            continue
        try:
            actions.append(_action(action))
            rows.append(k)
        except _Refused as exc:
            errors[f"a{k}"] = str(exc)
    return Built(trigger, conditions, actions, errors, blocks, rows)


# --- adding and removing rows (the buttons work without JavaScript) ------------------------


def apply_edit(form: RuleForm, edit: str) -> RuleForm:
    """The form after one of the builder's buttons: "add-condition", "add-group",
    "add-row:I", "remove-row:I:J", "remove-condition:I", "add-action", "remove-action:K";
    anything else (such as "refresh") changes nothing."""
    conditions = [replace(b, rows=list(b.rows)) for b in form.conditions]
    actions = list(form.actions)
    verb, _, where = edit.partition(":")
    at = [int(n) for n in where.split(":") if n.isdigit()]
    if verb == "add-condition":
        conditions.append(ConditionBlock())
    elif verb == "add-group":
        conditions.append(ConditionBlock("any", [ConditionRow(), ConditionRow()]))
    elif verb == "add-row" and len(at) == 1 and at[0] < len(conditions):
        conditions[at[0]].rows.append(ConditionRow())
    elif verb == "remove-row" and len(at) == 2 and at[0] < len(conditions):
        rows = conditions[at[0]].rows
        if at[1] < len(rows):
            del rows[at[1]]
        if not rows:
            del conditions[at[0]]
    elif verb == "remove-condition" and len(at) == 1 and at[0] < len(conditions):
        del conditions[at[0]]
    elif verb == "add-action":
        actions.append(ActionForm(type="escalate"))
    elif verb == "remove-action" and len(at) == 1 and at[0] < len(actions):
        del actions[at[0]]
    return RuleForm(trigger=form.trigger, conditions=conditions, actions=actions)


def vocabulary() -> dict[str, Any]:
    """What the page's script needs to follow a field with its operators and value input."""
    return {
        "fields": CONDITION_FIELDS,
        "operators": {kind: operators_for_kind(kind) for kind in OPERATORS_BY_KIND},
        "labels": OPERATOR_LABELS,
    }


def operators_for_kind(kind: str) -> list[str]:
    return [op for op in OPERATOR_LABELS if op in OPERATORS_BY_KIND[kind]]
