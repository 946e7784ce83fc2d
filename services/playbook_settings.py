"""Changing a merchant's playbooks: their rules (validated together, stored normalised) and
their flags, each change in the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.playbook_rules import (
    CONDITION_FIELDS,
    CONDITION_FIELDS_V1,
    MAX_DELAY_SECONDS,
    MIN_IDLE_SECONDS,
    OPERATORS_BY_KIND,
    OPERATORS_BY_KIND_V1,
    TAG_MAX_LENGTH,
    TEMPLATE_PLACEHOLDERS,
    TEMPLATE_PLACEHOLDERS_V1,
    Channel,
    Intent,
    OrderTopic,
    PlaybookRuleError,
    PlaybookRules,
)
from kernel.enums import ActionType
from kernel.errors import NotFound
from kernel.values import STORABLE_TEXT, holds_nul
from models.event import log_event
from models.playbook import Playbook

# --- the rules' JSON Schema, for OpenAPI -----------------------------------------------------
# domain.playbook_rules validates the documents (and says why one is refused, 422); these
# schemas describe the same documents for clients, built from the domain's own vocabulary,
# so a document that matches them is accepted. Every document states its version: version 2
# is what is written back; version 1 is still accepted (and stored as version 2).

_TEXT = {"type": "string", "pattern": STORABLE_TEXT}
_ACTION_TYPE = {"type": "string", "enum": [t.value for t in ActionType]}
_TAG = {**_TEXT, "minLength": 1, "maxLength": TAG_MAX_LENGTH}
# Numbers are stored as decimal text ("100.50"), so a document read back can be sent again.
_DECIMAL = {"type": ["number", "string"], "pattern": r"^-?[0-9]+(?:\.[0-9]+)?$"}
_SINGLE_VALUE: dict[str, dict[str, Any]] = {
    "number": _DECIMAL,
    "text": _TEXT,
    "action_type": _ACTION_TYPE,
    "bool": {"type": "boolean"},
    "tags": _TAG,
}
_MANY = ("in", "not_in")
# Two lowercase letters. Without "$": Python's "$" also matches before a final newline,
# which the domain (and ECMA) would not; the length pins the end instead.
_LANGUAGE = {"type": "string", "minLength": 2, "maxLength": 2, "pattern": "^[a-z]{2}"}


def _object(version: int, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["version", *required],
        "properties": {"version": {"type": "integer", "enum": [version]}, **properties},
    }


def _enum(values: Any, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": [str(v) for v in values]}
    return {**schema, "description": description} if description else schema


def _list_of(items: dict[str, Any], description: str = "empty: any") -> dict[str, Any]:
    return {"type": "array", "items": items, "description": description}


def _condition_schemas(
    version: int, fields_by_kind: dict[str, str], operators_by_kind: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """One shape per kind of fact and arity: its fields, its operators, its value."""
    shapes = []
    for kind, operators in operators_by_kind.items():
        fields = sorted(f for f, k in fields_by_kind.items() if k == kind)
        single = sorted(operators.difference(_MANY))
        many = sorted(operators.intersection(_MANY))
        for ops, value in (
            (single, _SINGLE_VALUE[kind]),
            (many, {"type": "array", "items": _SINGLE_VALUE[kind]}),
        ):
            if ops:
                shapes.append(
                    _object(
                        version,
                        ["field", "operator", "value"],
                        {"field": _enum(fields), "operator": _enum(ops), "value": value},
                    )
                )
    return shapes


def _template(placeholders: frozenset[str]) -> dict[str, Any]:
    # Literal text, {{ and }} escapes, and the known {placeholders}: what the domain reads.
    pattern = r"^(?:[^{}\x00]|\{\{|\}\}|\{(?:" + "|".join(sorted(placeholders)) + r")\})*$"
    return {"type": "string", "minLength": 1, "maxLength": 10_000, "pattern": pattern}


def _trigger_schemas() -> list[dict[str, Any]]:
    intents = _list_of(_enum(Intent), "empty: any intent")
    return [
        _object(1, ["event"], {"event": _enum(["message.received"]), "intents": intents}),
        _object(
            2,
            ["event"],
            {
                "event": _enum(["message.received"]),
                "intents": intents,
                "channels": _list_of(_enum(Channel), "empty: any channel"),
                "languages": _list_of(_LANGUAGE, "ISO 639-1 codes; empty: any language"),
            },
        ),
        _object(
            2,
            ["event"],
            {
                "event": _enum(["order.event"]),
                "topics": _list_of(_enum(OrderTopic), "Shopify order webhooks; empty: any"),
            },
        ),
        _object(
            2,
            ["event", "after_seconds", "since"],
            {
                "event": _enum(["thread.idle"]),
                "after_seconds": {
                    "type": "integer",
                    "minimum": MIN_IDLE_SECONDS,
                    "maximum": MAX_DELAY_SECONDS,
                },
                "since": _enum(
                    ["our_reply", "no_decision"],
                    "our_reply: no customer reply since ours; no_decision: a suggestion waits",
                ),
            },
        ),
    ]


def _conditions_schema() -> dict[str, Any]:
    conditions_v2 = _condition_schemas(2, CONDITION_FIELDS, OPERATORS_BY_KIND)
    groups = [
        _object(
            2, [mode], {mode: {"type": "array", "minItems": 1, "items": {"oneOf": conditions_v2}}}
        )
        for mode in ("any", "all")
    ]
    items = [
        *_condition_schemas(1, CONDITION_FIELDS_V1, OPERATORS_BY_KIND_V1),
        *conditions_v2,
        *groups,
    ]
    return {
        "type": "array",
        "items": {"oneOf": items},
        "description": "all must hold; an any/all group holds one level of conditions",
    }


def _action_schemas(version: int) -> list[dict[str, Any]]:
    placeholders = TEMPLATE_PLACEHOLDERS_V1 if version == 1 else TEMPLATE_PLACEHOLDERS
    shapes = [
        _object(
            version,
            ["type", "action_types"],
            {
                "type": _enum(["approve_suggestion"]),
                "action_types": {"type": "array", "minItems": 1, "items": _ACTION_TYPE},
                "max_refund_amount": {
                    "type": ["number", "string", "null"],
                    "minimum": 0,
                    "pattern": r"^[0-9]+(?:\.[0-9]+)?$",
                },
            },
        ),
        _object(
            version,
            ["type", "template"],
            {"type": _enum(["reply_with_template"]), "template": _template(placeholders)},
        ),
        _object(
            version,
            ["type", "reason"],
            {
                "type": _enum(["escalate"]),
                "reason": {**_TEXT, "minLength": 1, "maxLength": 500},
            },
        ),
    ]
    if version == 1:
        return shapes
    return [
        *shapes,
        _object(
            2,
            ["type", "seconds"],
            {
                "type": _enum(["wait"]),
                "seconds": {"type": "integer", "minimum": 1, "maximum": MAX_DELAY_SECONDS},
                "cancel_on_reply": {
                    "type": "boolean",
                    "description": "a customer's reply ends the wait (default true)",
                },
            },
        ),
        _object(
            2,
            ["type", "template"],
            {"type": _enum(["send_followup"]), "template": _template(placeholders)},
        ),
        _object(
            2,
            ["type", "tags"],
            {
                "type": _enum(["tag_thread"]),
                "tags": {"type": "array", "minItems": 1, "maxItems": 10, "items": _TAG},
            },
        ),
        _object(2, ["type"], {"type": _enum(["close_thread"])}),
    ]


TRIGGER_SCHEMA = {"oneOf": _trigger_schemas()}
CONDITIONS_SCHEMA = _conditions_schema()
ACTIONS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {"oneOf": [*_action_schemas(1), *_action_schemas(2)]},
}
# Lower runs first; ties go to the older playbook.
Priority = Annotated[int, Field(ge=0, le=1_000, description="lower runs first")]
# The flags both PUT /rules and PATCH may change, with the Event each change logs.
_FLAGS = ("requires_approval", "priority", "stop_processing", "run_once_per_thread")


class PlaybookRulesIn(BaseModel):
    # Read as given and validated by the domain, which names the part and the reason.
    trigger: Annotated[Any, WithJsonSchema(TRIGGER_SCHEMA)]
    conditions: Annotated[Any, WithJsonSchema(CONDITIONS_SCHEMA)]
    actions: Annotated[Any, WithJsonSchema(ACTIONS_SCHEMA)]
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    # Left out (None): unchanged.
    requires_approval: bool | None = None
    priority: Priority | None = None
    stop_processing: bool | None = Field(default=None, description="no later playbook runs")
    run_once_per_thread: bool | None = None


class PlaybookPatch(BaseModel):
    """Each flag given is set; a flag left out (None) is unchanged."""

    enabled: bool | None = None
    requires_approval: bool | None = None
    priority: Priority | None = None
    stop_processing: bool | None = Field(default=None, description="no later playbook runs")
    run_once_per_thread: bool | None = None


async def list_playbooks(session: AsyncSession, user_id: uuid.UUID) -> list[Playbook]:
    rows = await session.execute(
        select(Playbook).where(Playbook.user_id == user_id).order_by(Playbook.name, Playbook.id)
    )
    return list(rows.scalars())


async def get_playbook(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, *, lock: bool = False
) -> Playbook:
    query = select(Playbook).where(Playbook.id == playbook_id, Playbook.user_id == user_id)
    if lock:
        query = query.with_for_update()
    playbook = (await session.execute(query)).scalar_one_or_none()
    if playbook is None:
        raise NotFound("playbook not found")
    return playbook


async def update_playbook_rules(
    session: AsyncSession,
    user_id: uuid.UUID,
    playbook_id: uuid.UUID,
    rules: PlaybookRulesIn,
) -> Playbook:
    """Validate the three documents together and store their normalised form."""
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    # A PlaybookRuleError answers 422 with the part and the reason.
    parsed = PlaybookRules.parse(rules.trigger, rules.conditions, rules.actions)
    documents = parsed.to_json()
    for part, document in zip(("trigger", "conditions", "actions"), documents, strict=True):
        if holds_nul(document):  # PostgreSQL's JSON cannot store it
            raise PlaybookRuleError(f"{part}: text cannot contain the NUL character")
    playbook.trigger, playbook.conditions, playbook.actions = documents
    if rules.confidence_threshold is not None:
        playbook.confidence_threshold = rules.confidence_threshold
    changed = _set_flags(playbook, rules)
    await log_event(
        session,
        "playbook.updated",
        user_id=user_id,
        entity="playbook",
        entity_id=playbook.id,
        payload=changed or None,
    )
    await session.flush()
    await session.refresh(playbook)
    return playbook


async def patch_playbook_flags(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, patch: PlaybookPatch
) -> Playbook:
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    if patch.enabled is not None and patch.enabled != playbook.enabled:
        playbook.enabled = patch.enabled
        if patch.enabled:
            # Switched back on by a person: a self-pause and its failure count are over.
            playbook.disabled_reason = None
            playbook.consecutive_failures = 0
        await log_event(
            session,
            "playbook.enabled" if patch.enabled else "playbook.disabled",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
        )
    changed = _set_flags(playbook, patch)
    if changed:
        await log_event(
            session,
            "playbook.updated",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
            payload=changed,
        )
    await session.flush()
    await session.refresh(playbook)
    return playbook


def _set_flags(playbook: Playbook, given: PlaybookRulesIn | PlaybookPatch) -> dict[str, Any]:
    """Set the flags given that differ from the playbook's; return them, for the Event."""
    changed: dict[str, Any] = {}
    for name in _FLAGS:
        value = getattr(given, name)
        if value is not None and value != getattr(playbook, name):
            setattr(playbook, name, value)
            changed[name] = value
    return changed
