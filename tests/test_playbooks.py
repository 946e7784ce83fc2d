"""Default playbooks and the versioned schemas of playbook rules."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.default_playbooks import DEFAULT_PLAYBOOKS
from domain.playbook_rules import (
    ApproveSuggestion,
    PlaybookRuleError,
    PlaybookRules,
    parse_actions,
    parse_conditions,
    parse_trigger,
)
from kernel.enums import PlaybookCategory
from models import Playbook
from models.event import Event
from services.playbook_settings import (
    PlaybookPatch,
    PlaybookRulesIn,
    patch_playbook_flags,
    update_playbook_rules,
)
from services.playbooks import seed_default_playbooks
from tests.factories import make_user


async def test_seeding_creates_the_starter_set_once(session: AsyncSession) -> None:
    user = await make_user(session)
    first = await seed_default_playbooks(session, user.id)
    second = await seed_default_playbooks(session, user.id)
    assert [p.id for p in first] == [p.id for p in second]
    assert {p.template_key for p in first} == {t.key for t in DEFAULT_PLAYBOOKS}
    assert all(p.is_default and p.enabled and p.requires_approval for p in first)
    for playbook in first:  # stored in version 2, and it parses back to the same documents
        documents = (playbook.trigger, playbook.conditions, playbook.actions)
        assert PlaybookRules.parse(*documents).to_json() == documents
        assert playbook.trigger["version"] == 2 and playbook.trigger["channels"] == []
        assert all(d["version"] == 2 for d in [*playbook.conditions, *playbook.actions])
        assert (playbook.priority, playbook.stop_processing) == (100, False)


async def test_starter_set_covers_the_common_requests() -> None:
    intents = {i for t in DEFAULT_PLAYBOOKS for i in t.trigger["intents"]}
    assert intents >= {
        "damaged_item",
        "cancel_request",
        "address_change",
        "order_status",
        "wrong_item",
    }
    assert {t.category for t in DEFAULT_PLAYBOOKS} >= {
        PlaybookCategory.REFUND_RETURN,
        PlaybookCategory.FULFILLMENT,
        PlaybookCategory.SUPPORT,
    }


async def test_reseeding_leaves_a_merchants_edits_alone(session: AsyncSession) -> None:
    user = await make_user(session)
    playbooks = await seed_default_playbooks(session, user.id)
    playbooks[0].enabled = False
    playbooks[0].name = "My refunds"
    await session.flush()
    again = {p.id: p for p in await seed_default_playbooks(session, user.id)}
    assert again[playbooks[0].id].name == "My refunds"
    assert again[playbooks[0].id].enabled is False
    assert len(again) == len(DEFAULT_PLAYBOOKS)


async def test_concurrent_seeding_creates_each_template_once(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session, session.begin():
        user = await make_user(session)

    async def seed() -> None:
        async with own_sessions() as s, s.begin():
            await seed_default_playbooks(s, user.id)

    await asyncio.gather(*(seed() for _ in range(10)))
    async with own_sessions() as session:
        count = (await session.execute(select(func.count()).select_from(Playbook))).scalar_one()
    assert count == len(DEFAULT_PLAYBOOKS)


def test_valid_rules_parse_to_typed_models() -> None:
    rules = PlaybookRules.parse(
        {"version": 1, "event": "message.received", "intents": ["damaged_item"]},
        [
            {"version": 1, "field": "order.total_amount", "operator": "lte", "value": 80},
            {"version": 1, "field": "order.cancelled", "operator": "eq", "value": False},
            {
                "version": 1,
                "field": "suggestion.action_type",
                "operator": "in",
                "value": ["REFUND", "NONE"],
            },
        ],
        [
            {
                "version": 1,
                "type": "approve_suggestion",
                "action_types": ["REFUND"],
                "max_refund_amount": "80.00",
            }
        ],
    )
    assert rules.conditions[0].value == Decimal("80")
    assert isinstance(rules.actions[0], ApproveSuggestion)
    assert rules.actions[0].max_refund_amount == Decimal("80.00")
    trigger, conditions, actions = rules.to_json()
    assert PlaybookRules.parse(trigger, conditions, actions) == rules


@pytest.mark.parametrize(
    ("part", "document", "reason"),
    [
        ("trigger", {"event": "message.received"}, "unsupported version None"),
        ("trigger", {"version": 3, "event": "message.received"}, "unsupported version 3"),
        ("trigger", {"version": 1, "event": "cron"}, "event"),
        ("trigger", {"version": 1, "event": "message.received", "intents": ["bribe"]}, "intents"),
        ("trigger", ["not", "an", "object"], "expected an object"),
        ("conditions", {"version": 1}, "expected a list"),
        (
            "conditions",
            [{"version": 1, "field": "order.secret", "operator": "eq", "value": "x"}],
            "unknown field",
        ),
        (
            "conditions",
            [{"version": 1, "field": "order.total_amount", "operator": "contains", "value": 1}],
            "does not apply",
        ),
        (
            "conditions",
            [{"version": 1, "field": "order.total_amount", "operator": "lt", "value": "lots"}],
            "number value",
        ),
        (
            "conditions",
            [{"version": 1, "field": "order.cancelled", "operator": "eq", "value": "no"}],
            "bool value",
        ),
        (
            "conditions",
            [
                {
                    "version": 1,
                    "field": "suggestion.action_type",
                    "operator": "in",
                    "value": "REFUND",
                }
            ],
            "takes a list",
        ),
        (
            "conditions",
            [
                {
                    "version": 1,
                    "field": "suggestion.action_type",
                    "operator": "eq",
                    "value": "WIRE_MONEY",
                }
            ],
            "action type value",
        ),
        ("actions", [], "at least one action"),
        ("actions", [{"version": 1, "type": "transfer_funds"}], "type"),
        (
            "actions",
            [{"version": 1, "type": "approve_suggestion", "action_types": []}],
            "action_types",
        ),
        (
            "actions",
            [
                {
                    "version": 1,
                    "type": "approve_suggestion",
                    "action_types": ["REFUND"],
                    "max_refund_amount": "-5",
                }
            ],
            "max_refund_amount",
        ),
        (
            "actions",
            [{"version": 1, "type": "reply_with_template", "template": "Hi {password}"}],
            "unknown placeholders",
        ),
        (
            "actions",
            [{"version": 1, "type": "reply_with_template", "template": "Hi {"}],
            "not well-formed",
        ),
        ("actions", [{"version": 1, "type": "escalate", "reason": "x", "extra": 1}], "extra"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(part: str, document: Any, reason: str) -> None:
    parser = {"trigger": parse_trigger, "conditions": parse_conditions, "actions": parse_actions}[
        part
    ]
    with pytest.raises(PlaybookRuleError) as error:
        parser(document)
    assert str(error.value).startswith(part)
    assert reason.lower() in str(error.value).lower()


async def _events(session: AsyncSession, playbook: Playbook) -> list[tuple[str, Any]]:
    """The playbook's Events (in one transaction they share a time, so in a stable order)."""
    rows = await session.execute(
        select(Event.type, Event.payload).where(
            Event.entity == "playbook", Event.entity_id == str(playbook.id)
        )
    )
    return sorted((tuple(row) for row in rows), key=repr)


async def test_patch_sets_the_ordering_flags_and_logs_what_changed(session: AsyncSession) -> None:
    user = await make_user(session)
    playbook = (await seed_default_playbooks(session, user.id))[0]
    patch = PlaybookPatch(priority=10, stop_processing=True, requires_approval=True)
    await patch_playbook_flags(session, user.id, playbook.id, patch)
    assert (playbook.priority, playbook.stop_processing, playbook.run_once_per_thread) == (
        10,
        True,
        False,
    )
    await patch_playbook_flags(session, user.id, playbook.id, PlaybookPatch())  # nothing
    await patch_playbook_flags(
        session, user.id, playbook.id, PlaybookPatch(run_once_per_thread=True)
    )
    assert playbook.run_once_per_thread and playbook.priority == 10
    # requires_approval was already on: not a change.
    assert await _events(session, playbook) == [
        ("playbook.updated", {"priority": 10, "stop_processing": True}),
        ("playbook.updated", {"run_once_per_thread": True}),
    ]


async def test_switching_a_paused_playbook_back_on_clears_the_pause(
    session: AsyncSession,
) -> None:
    user = await make_user(session)
    playbook = (await seed_default_playbooks(session, user.id))[0]
    playbook.enabled, playbook.disabled_reason, playbook.consecutive_failures = (
        False,
        "paused after 3 failed executions",
        3,
    )
    await session.flush()
    await patch_playbook_flags(session, user.id, playbook.id, PlaybookPatch(enabled=True))
    assert playbook.enabled and playbook.disabled_reason is None
    assert playbook.consecutive_failures == 0
    assert await _events(session, playbook) == [("playbook.enabled", None)]


async def test_put_rules_stores_version_2_and_sets_the_flags(session: AsyncSession) -> None:
    user = await make_user(session)
    playbook = (await seed_default_playbooks(session, user.id))[0]
    rules = PlaybookRulesIn(
        trigger={"version": 1, "event": "message.received", "intents": ["other"]},
        conditions=[
            {
                "version": 2,
                "any": [
                    {"version": 2, "field": "thread.tags", "operator": "contains", "value": "vip"}
                ],
            }
        ],
        actions=[{"version": 1, "type": "escalate", "reason": "a person looks"}],
        priority=5,
        run_once_per_thread=True,
    )
    await update_playbook_rules(session, user.id, playbook.id, rules)
    assert playbook.trigger == {
        "version": 2,
        "event": "message.received",
        "intents": ["other"],
        "channels": [],
        "languages": [],
    }
    assert playbook.actions == [{"version": 2, "type": "escalate", "reason": "a person looks"}]
    assert (playbook.priority, playbook.run_once_per_thread) == (5, True)
    assert playbook.stop_processing is False  # not given: unchanged
    assert await _events(session, playbook) == [
        ("playbook.updated", {"priority": 5, "run_once_per_thread": True})
    ]


@pytest.mark.parametrize("priority", [-1, 1001])
def test_priority_is_from_0_to_1000(priority: int) -> None:
    with pytest.raises(ValidationError):
        PlaybookPatch(priority=priority)
    assert PlaybookPatch(priority=0).priority == 0
    assert PlaybookPatch(priority=1000).priority == 1000
