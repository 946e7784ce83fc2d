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
    OPERATORS_BY_KIND,
    TEMPLATE_PLACEHOLDERS,
    Intent,
    PlaybookRuleError,
    PlaybookRules,
)
from kernel.enums import ActionType
from kernel.errors import NotFound
from kernel.values import STORABLE_TEXT
from models.event import log_event
from models.playbook import Playbook

# --- the rules' JSON Schema, for OpenAPI -----------------------------------------------------
# domain.playbook_rules validates the documents (and says why one is refused, 422); these
# schemas describe the same documents for clients, built from the domain's own vocabulary,
# so a document that matches them is accepted. Every document states its version.

_V1 = {"type": "integer", "enum": [1]}
_TEXT = {"type": "string", "pattern": STORABLE_TEXT}
_ACTION_TYPE = {"type": "string", "enum": [t.value for t in ActionType]}
_SINGLE_VALUE: dict[str, dict[str, Any]] = {
    "number": {"type": "number"},
    "text": _TEXT,
    "action_type": _ACTION_TYPE,
    "bool": {"type": "boolean"},
}
_MANY = ("in", "not_in")


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["version", *required],
        "properties": {"version": _V1, **properties},
    }


def _condition_schemas() -> list[dict[str, Any]]:
    """One shape per kind of fact and arity: its fields, its operators, its value."""
    shapes = []
    for kind, operators in OPERATORS_BY_KIND.items():
        fields = sorted(f for f, k in CONDITION_FIELDS.items() if k == kind)
        single = sorted(operators.difference(_MANY))
        many = sorted(operators.intersection(_MANY))
        for ops, value in (
            (single, _SINGLE_VALUE[kind]),
            (many, {"type": "array", "items": _SINGLE_VALUE[kind]}),
        ):
            if ops:
                shapes.append(
                    _object(
                        ["field", "operator", "value"],
                        {
                            "field": {"type": "string", "enum": fields},
                            "operator": {"type": "string", "enum": ops},
                            "value": value,
                        },
                    )
                )
    return shapes


# Literal text, {{ and }} escapes, and the known {placeholders}: what str.format can parse.
_TEMPLATE_PATTERN = (
    r"^(?:[^{}\x00]|\{\{|\}\}|\{(?:" + "|".join(sorted(TEMPLATE_PLACEHOLDERS)) + r")\})*$"
)

TRIGGER_SCHEMA = _object(
    ["event"],
    {
        "event": {"type": "string", "enum": ["message.received"]},
        "intents": {
            "type": "array",
            "items": {"type": "string", "enum": [i.value for i in Intent]},
            "description": "empty: any intent",
        },
    },
)
CONDITIONS_SCHEMA = {"type": "array", "items": {"oneOf": _condition_schemas()}}
ACTIONS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "oneOf": [
            _object(
                ["type", "action_types"],
                {
                    "type": {"type": "string", "enum": ["approve_suggestion"]},
                    "action_types": {"type": "array", "minItems": 1, "items": _ACTION_TYPE},
                    "max_refund_amount": {"type": ["number", "null"], "minimum": 0},
                },
            ),
            _object(
                ["type", "template"],
                {
                    "type": {"type": "string", "enum": ["reply_with_template"]},
                    "template": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 10_000,
                        "pattern": _TEMPLATE_PATTERN,
                    },
                },
            ),
            _object(
                ["type", "reason"],
                {
                    "type": {"type": "string", "enum": ["escalate"]},
                    "reason": {**_TEXT, "minLength": 1, "maxLength": 500},
                },
            ),
        ]
    },
}


class PlaybookRulesIn(BaseModel):
    # Read as given and validated by the domain, which names the part and the reason.
    trigger: Annotated[Any, WithJsonSchema(TRIGGER_SCHEMA)]
    conditions: Annotated[Any, WithJsonSchema(CONDITIONS_SCHEMA)]
    actions: Annotated[Any, WithJsonSchema(ACTIONS_SCHEMA)]
    confidence_threshold: float | None = Field(default=None, ge=0, le=1)
    requires_approval: bool | None = None


class PlaybookPatch(BaseModel):
    enabled: bool | None = None
    requires_approval: bool | None = None


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
        if _holds_nul(document):
            raise PlaybookRuleError(f"{part}: text cannot contain the NUL character")
    playbook.trigger, playbook.conditions, playbook.actions = documents
    if rules.confidence_threshold is not None:
        playbook.confidence_threshold = rules.confidence_threshold
    if rules.requires_approval is not None:
        playbook.requires_approval = rules.requires_approval
    await log_event(
        session, "playbook.updated", user_id=user_id, entity="playbook", entity_id=playbook.id
    )
    await session.flush()
    await session.refresh(playbook)
    return playbook


def _holds_nul(document: Any) -> bool:
    """PostgreSQL's JSON cannot store it (see kernel.values.STORABLE_TEXT)."""
    if isinstance(document, str):
        return "\x00" in document
    if isinstance(document, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in document.items())
    if isinstance(document, list):
        return any(_holds_nul(item) for item in document)
    return False


async def patch_playbook_flags(
    session: AsyncSession, user_id: uuid.UUID, playbook_id: uuid.UUID, patch: PlaybookPatch
) -> Playbook:
    playbook = await get_playbook(session, user_id, playbook_id, lock=True)
    if patch.enabled is not None and patch.enabled != playbook.enabled:
        playbook.enabled = patch.enabled
        await log_event(
            session,
            "playbook.enabled" if patch.enabled else "playbook.disabled",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
        )
    if (
        patch.requires_approval is not None
        and patch.requires_approval != playbook.requires_approval
    ):
        playbook.requires_approval = patch.requires_approval
        await log_event(
            session,
            "playbook.updated",
            user_id=user_id,
            entity="playbook",
            entity_id=playbook.id,
            payload={"requires_approval": patch.requires_approval},
        )
    await session.flush()
    await session.refresh(playbook)
    return playbook
