"""Every merchant-owned row reaches its user, and the database refuses cross-tenant links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kernel.enums import ActionType, ConnectionType
from models import (
    Action,
    AISuggestion,
    Connection,
    CustomEmailMetadata,
    Event,
    Message,
    Order,
    Playbook,
    PlaybookExecution,
    Subscription,
    Thread,
    UsageRecord,
    User,
    log_event,
)
from services.playbooks import seed_default_playbooks
from services.usage import ensure_subscription, increment_email_received
from tests.factories import (
    make_message,
    make_order,
    make_shopify_connection,
    make_thread,
    make_user,
)

OWNED = [
    Subscription,
    UsageRecord,
    Connection,
    Order,
    Thread,
    Message,
    AISuggestion,
    Action,
    Event,
    Playbook,
    PlaybookExecution,
]


async def _count(session: AsyncSession, model: type) -> int:
    return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def _populate(session: AsyncSession, user: User) -> None:
    await ensure_subscription(session, user.id)
    await increment_email_received(session, user.id)  # creates the period's UsageRecord
    playbooks = await seed_default_playbooks(session, user.id)
    session.add(
        PlaybookExecution(
            playbook_id=playbooks[0].id,
            user_id=user.id,
            trigger_key="message:test",
            confidence=0.95,
            trigger_data={},
        )
    )
    shop = await make_shopify_connection(session, user)
    order = await make_order(session, shop)
    thread = await make_thread(session, user)
    message = await make_message(session, thread)
    message.order_id = order.id
    suggestion = AISuggestion(
        message_id=message.id,
        reply="Sorry about that, refunding now.",
        proposed_action=ActionType.REFUND,
        order_id=order.id,
        confidence=0.8,
    )
    session.add(suggestion)
    await session.flush()
    session.add(
        Action(
            user_id=user.id,
            message_id=message.id,
            suggestion_id=suggestion.id,
            order_id=order.id,
            type=ActionType.REFUND,
            payload={"amount": "10.00"},
        )
    )
    await log_event(session, "test.populated", user_id=user.id)
    await session.flush()


async def test_deleting_a_user_removes_everything_they_own(session: AsyncSession) -> None:
    keep, gone = await make_user(session), await make_user(session)
    await _populate(session, keep)
    await _populate(session, gone)
    before = {m.__name__: await _count(session, m) for m in OWNED}
    assert all(n >= 2 for n in before.values()), before

    await session.delete(gone)
    await session.flush()
    session.expunge_all()

    after = {m.__name__: await _count(session, m) for m in OWNED}
    assert after == {name: n // 2 for name, n in before.items()}


async def test_message_cannot_join_another_merchants_thread(session: AsyncSession) -> None:
    alice, mallory = await make_user(session), await make_user(session)
    alices_thread = await make_thread(session, alice)
    with pytest.raises(IntegrityError, match="fk_messages_thread_id_user_id_threads"):
        await make_message(session, alices_thread, user_id=mallory.id)


async def test_message_id_is_unique_per_owner_only(session: AsyncSession) -> None:
    alice, bob = await make_user(session), await make_user(session)
    await make_message(session, await make_thread(session, alice), "<same@x>")
    await make_message(session, await make_thread(session, bob), "<same@x>")  # another owner: fine
    with pytest.raises(IntegrityError, match="uq_messages_user_id_message_id"):
        await make_message(session, await make_thread(session, alice), "<same@x>")


async def test_order_is_unique_per_shop(session: AsyncSession) -> None:
    user = await make_user(session)
    shop = await make_shopify_connection(session, user)
    order = await make_order(session, shop)
    session.add(
        Order(
            connection_id=shop.id,
            shop_domain=shop.shop_domain,
            shopify_id=order.shopify_id,
            name="#1001",
            status="open",
            total_amount=1,
            currency="EUR",
        )
    )
    with pytest.raises(IntegrityError, match="uq_orders_shop_domain_shopify_id"):
        await session.flush()


async def test_a_shop_connects_to_one_merchant(session: AsyncSession) -> None:
    alice, bob = await make_user(session), await make_user(session)
    await make_shopify_connection(session, alice, shop="one.myshopify.com")
    with pytest.raises(IntegrityError, match="uq_connections_shopify_shop_domain"):
        await make_shopify_connection(session, bob, shop="one.myshopify.com")


async def test_alias_is_unique_across_merchants_case_insensitively(session: AsyncSession) -> None:
    alice, bob = await make_user(session), await make_user(session)

    def alias_connection(user: User, alias: str) -> Connection:
        meta = CustomEmailMetadata(
            alias=alias,
            domain="inbound.example.com",
            support_email="help@store.example",
            store_name="Store",
        )
        return Connection(
            user_id=user.id,
            type=ConnectionType.CUSTOM_EMAIL,
            access_token="unused",
            metadata_=meta.to_json(),
        )

    session.add(alias_connection(alice, "store-a1@inbound.example.com"))
    await session.flush()
    session.add(alias_connection(bob, "Store-A1@inbound.example.com"))
    with pytest.raises(IntegrityError, match="uq_connections_custom_email_alias"):
        await session.flush()


async def test_custom_email_metadata_keeps_the_seed_keys() -> None:
    meta = CustomEmailMetadata(
        alias="a@in.example.com",
        domain="in.example.com",
        shop_domain="s.myshopify.com",
        support_email="help@s.example",
        store_name="S",
    )
    assert meta.to_json() == {
        "alias": "a@in.example.com",
        "domain": "in.example.com",
        "shopDomain": "s.myshopify.com",
        "disabled": False,
        "supportEmail": "help@s.example",
        "storeName": "S",
    }
    assert CustomEmailMetadata.model_validate(meta.to_json()) == meta


async def test_email_is_unique_case_insensitively(session: AsyncSession) -> None:
    await make_user(session, "Owner@Store.example")
    with pytest.raises(IntegrityError, match="uq_users_email_lower"):
        await make_user(session, "owner@store.example")


async def test_confidence_outside_zero_to_one_is_refused(session: AsyncSession) -> None:
    user = await make_user(session)
    message = await make_message(session, await make_thread(session, user))
    session.add(
        AISuggestion(
            message_id=message.id, reply="x", proposed_action=ActionType.NONE, confidence=1.5
        )
    )
    with pytest.raises(IntegrityError, match="ck_ai_suggestions_confidence_range"):
        await session.flush()


async def test_new_action_is_pending_and_times_are_aware(session: AsyncSession) -> None:
    user = await make_user(session)
    action = Action(user_id=user.id, type=ActionType.INFO_REQUEST)
    session.add(action)
    await session.flush()
    await session.refresh(action)
    assert action.status == "PENDING"
    assert action.payload == {}
    assert action.created_at.tzinfo is not None
    assert action.created_at <= datetime.now(UTC)


async def test_log_event_appends_in_the_callers_transaction(session: AsyncSession) -> None:
    user = await make_user(session)
    event = await log_event(
        session,
        "action.approved",
        user_id=user.id,
        entity="action",
        entity_id=user.id,
        payload={"by": "me"},
    )
    stored = (await session.execute(select(Event).where(Event.id == event.id))).scalar_one()
    assert (stored.type, stored.entity, stored.entity_id, stored.payload) == (
        "action.approved",
        "action",
        str(user.id),
        {"by": "me"},
    )
