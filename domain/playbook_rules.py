"""Versioned schemas for a Playbook's `trigger`, `conditions` and `actions` JSON.

Every document carries `version`; a reader picks the model for that version, so rules
written earlier keep parsing after the format grows. Version-1 documents
(`domain.playbook_rules_v1`) are read into the version-2 shapes
(`domain.playbook_rules_v2`), which is what the engine (`domain.playbook_engine`) evaluates
and what `to_json()` writes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.playbook_rules_base import TAG_MAX_LENGTH, Intent, PlaybookRuleError
from domain.playbook_rules_v1 import (
    CONDITION_FIELDS_V1,
    OPERATORS_BY_KIND_V1,
    TEMPLATE_PLACEHOLDERS_V1,
    ConditionV1,
    PlaybookActionV1,
    TriggerV1,
)
from domain.playbook_rules_v2 import (
    CONDITION_FIELDS,
    FACT_PLACEHOLDERS,
    MAX_DELAY_SECONDS,
    MIN_IDLE_SECONDS,
    OPERATORS_BY_KIND,
    TEMPLATE_PLACEHOLDERS,
    ActionDocument,
    AllGroup,
    AnyGroup,
    ApproveSuggestion,
    Channel,
    CloseThread,
    Condition,
    ConditionDocument,
    ConditionGroup,
    ConditionItem,
    Escalate,
    MessageReceivedTrigger,
    OrderEventTrigger,
    OrderTopic,
    PlaybookAction,
    ReplyWithTemplate,
    SendFollowup,
    TagThread,
    ThreadIdleTrigger,
    Trigger,
    TriggerDocument,
    Wait,
    condition_shape,
)

__all__ = [
    "CONDITION_FIELDS",
    "CONDITION_FIELDS_V1",
    "FACT_PLACEHOLDERS",
    "MAX_DELAY_SECONDS",
    "MIN_IDLE_SECONDS",
    "OPERATORS_BY_KIND",
    "OPERATORS_BY_KIND_V1",
    "TAG_MAX_LENGTH",
    "TEMPLATE_PLACEHOLDERS",
    "TEMPLATE_PLACEHOLDERS_V1",
    "AllGroup",
    "AnyGroup",
    "ApproveSuggestion",
    "Channel",
    "CloseThread",
    "Condition",
    "ConditionGroup",
    "ConditionItem",
    "Escalate",
    "Intent",
    "MessageReceivedTrigger",
    "OrderEventTrigger",
    "OrderTopic",
    "PlaybookAction",
    "PlaybookRuleError",
    "PlaybookRules",
    "ReplyWithTemplate",
    "SendFollowup",
    "TagThread",
    "ThreadIdleTrigger",
    "Trigger",
    "Wait",
    "parse_actions",
    "parse_conditions",
    "parse_trigger",
]

# Per version, the model a document is read with; a version-1 model upgrades itself.
_TRIGGERS: dict[int, TypeAdapter[Any]] = {
    1: TypeAdapter(TriggerV1),
    2: TypeAdapter(TriggerDocument),
}
_CONDITIONS: dict[int, TypeAdapter[Any]] = {1: TypeAdapter(ConditionV1), 2: TypeAdapter(Condition)}
# Groups exist from version 2 on; picked by their "any" or "all" key.
_GROUPS: dict[int, dict[str, TypeAdapter[Any]]] = {
    2: {"any": TypeAdapter(AnyGroup), "all": TypeAdapter(AllGroup)}
}
_ACTIONS: dict[int, TypeAdapter[Any]] = {
    1: TypeAdapter(PlaybookActionV1),
    2: TypeAdapter(ActionDocument),
}


def _version(part: str, data: Any, known: list[int]) -> int:
    if not isinstance(data, dict):
        raise PlaybookRuleError(f"{part}: expected an object, got {type(data).__name__}")
    version = data.get("version")
    # bool is an int to Python, not a version to anyone.
    if isinstance(version, bool) or version not in known:
        raise PlaybookRuleError(f"{part}: unsupported version {version!r}; known: {known}")
    return version


def _validate(part: str, data: Any, adapter: TypeAdapter[Any]) -> Any:
    try:
        parsed = adapter.validate_python(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        raise PlaybookRuleError(f"{part}: {reasons}") from exc
    upgrade = getattr(parsed, "upgrade", None)
    return upgrade() if upgrade is not None else parsed


def _parse(part: str, data: Any, versions: dict[int, TypeAdapter[Any]]) -> Any:
    return _validate(part, data, versions[_version(part, data, list(versions))])


def _parse_condition(part: str, data: Any) -> ConditionItem:
    version = _version(part, data, list(_CONDITIONS))
    shape = condition_shape(data)
    if shape == "condition":
        return _validate(part, data, _CONDITIONS[version])
    if "any" in data and "all" in data:
        raise PlaybookRuleError(f"{part}: a group has either 'any' or 'all', not both")
    groups = _GROUPS.get(version)
    if groups is None:
        raise PlaybookRuleError(f"{part}: groups ('{shape}') need version {min(_GROUPS)}")
    return _validate(part, data, groups[shape])


def _list(part: str, data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise PlaybookRuleError(f"{part}: expected a list, got {type(data).__name__}")
    return data


def parse_trigger(data: Any) -> Trigger:
    return _parse("trigger", data, _TRIGGERS)


def parse_conditions(data: Any) -> list[ConditionItem]:
    """The list is an implicit "all"; an item is a condition or an any/all group of them."""
    return [
        _parse_condition(f"conditions[{i}]", item)
        for i, item in enumerate(_list("conditions", data))
    ]


def parse_actions(data: Any) -> list[PlaybookAction]:
    actions = [
        _parse(f"actions[{i}]", item, _ACTIONS) for i, item in enumerate(_list("actions", data))
    ]
    if not actions:
        raise PlaybookRuleError("actions: a playbook needs at least one action")
    return actions


class PlaybookRules(BaseModel):
    """The three JSON documents of a playbook, parsed together, in their version-2 shapes."""

    trigger: TriggerDocument
    conditions: list[ConditionDocument]
    actions: list[ActionDocument]

    @classmethod
    def parse(cls, trigger: Any, conditions: Any, actions: Any) -> PlaybookRules:
        return cls(
            trigger=parse_trigger(trigger),
            conditions=parse_conditions(conditions),
            actions=parse_actions(actions),
        )

    def to_json(self) -> tuple[dict[str, Any], list[Any], list[Any]]:
        """The documents as stored in the playbook's JSONB columns: always version 2."""
        return (
            self.trigger.model_dump(mode="json"),
            [c.model_dump(mode="json") for c in self.conditions],
            [a.model_dump(mode="json") for a in self.actions],
        )
