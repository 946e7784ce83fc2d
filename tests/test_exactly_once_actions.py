"""Every write action happens once in the store however often it is retried (issue 12).

A retry here is what the worker does after an answer was lost: the same prepared request
under the same key, performed again. The first attempt's answer is lost for real: the
sandbox holds the request until our client gives up on it (as a dead or timed-out worker
does) and then carries it out. The store's own records count the effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from integrations.shopify import admin as shopify_admin
from integrations.shopify import documents as doc
from integrations.shopify.admin import ShopifyAdmin
from integrations.shopify.graphql import DEFAULT_COST, Bucket, ShopifyGraphQL
from kernel.enums import ActionStatus, ActionType
from kernel.errors import IntegrationError
from kernel.values import ActionOutcome, OrderSnapshot, ShopTarget
from sandbox.server import Sandbox, serving, shop_base
from sandbox.shopify.cost import requested_cost
from sandbox.shopify.schema import admin_schema
from sandbox.shopify.state import Order, Shop
from tests.pipeline import running_pipeline, store_message
from tests.test_message_workflow import _awaiting
from workflows.contracts import (
    APPROVE_UPDATE,
    EXECUTE_ACTION,
    MESSAGE_WORKFLOW,
    ApproveInput,
    MessageState,
    MessageWorkflowInput,
    Stage,
)
from workflows.message import execute_timeouts

APP = "exactly-once-tests"
KEY = "deskpilot-action-retried"
NEW_ADDRESS = {
    "address1": "1 New Road",
    "city": "Springfield",
    "zip": "12345",
    "countryCode": "US",
    "firstName": "Ada",
    "lastName": "Lovelace",
}


async def _until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@dataclass
class Store:
    sandbox: Sandbox
    admin: ShopifyAdmin
    target: ShopTarget
    shop: Shop
    sent: list[dict[str, Any]] = field(default_factory=list)  # every GraphQL request body

    def order(self, snapshot: OrderSnapshot) -> Order:
        return self.shop.orders[int(snapshot.id.rsplit("/", 1)[-1])]

    async def first(self, wanted: Callable[[OrderSnapshot], bool]) -> OrderSnapshot:
        for order in sorted(self.shop.orders.values(), key=lambda o: o.number):
            snapshot = await self.admin.get_order(self.target, order.gid)
            if wanted(snapshot):
                return snapshot
        raise AssertionError("no such order in the seed")

    def ledger(self, kind: str, order: OrderSnapshot) -> list[dict[str, Any]]:
        return [e for e in self.shop.ledger if e["type"] == kind and e["order"] == order.name]

    async def prepare(
        self, order: OrderSnapshot, action: ActionType, payload: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.admin.prepare(self.target, order.id, action, payload)

    async def perform(
        self,
        order: OrderSnapshot,
        action: ActionType,
        prepared: dict[str, Any],
        progress: Callable[[], None] | None = None,
        key: str = KEY,
    ) -> ActionOutcome:
        return await self.admin.perform(self.target, order.id, action, prepared, key, progress)

    async def answer_lost(
        self,
        marker: str,
        order: OrderSnapshot,
        action: ActionType,
        prepared: dict[str, Any],
        carried_out: Callable[[], bool],
    ) -> None:
        """Perform until the store receives the request containing `marker`; give up on it
        while the store goes on to carry it out, and wait until it has."""
        held, release = asyncio.Event(), asyncio.Event()

        async def hold(body: dict[str, Any]) -> None:
            self.sent.append(body)
            if marker in str(body.get("query")) and not release.is_set():
                held.set()
                await release.wait()

        self.sandbox.shopify.before_graphql = hold
        first = asyncio.create_task(self.perform(order, action, prepared))
        try:
            await asyncio.wait_for(held.wait(), 10)
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            release.set()
        await _until(carried_out, f"the store to carry out {marker}")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    sandbox = Sandbox()
    sandbox.shopify.state.register_app(APP, "secret")
    domain = f"once-{uuid.uuid4().hex[:6]}.myshopify.com"
    shop = sandbox.shopify.add_shop(domain, api_key=APP, token="shpat_once")
    admin = ShopifyAdmin()
    async with serving(sandbox) as url:
        target = ShopTarget(
            shop_domain=domain, access_token="shpat_once", api_base=shop_base(url, domain)
        )
        yield Store(sandbox, admin, target, shop)
    await admin.aclose()


def _open_paid(o: OrderSnapshot) -> bool:
    return (
        o.fulfillment_status == "UNFULFILLED" and not o.cancelled and o.financial_status == "PAID"
    )


def _shipped(o: OrderSnapshot) -> bool:
    return o.fulfillment_status == "FULFILLED" and not o.cancelled


def _other_variant(store: Store, line_variant: str | None) -> str:
    gids = (f"gid://shopify/ProductVariant/{v.id}" for v in store.shop.variants.values())
    return next(g for g in gids if g != line_variant)


# --- cancel -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lost",
    ["orderCancel(", "job(id:"],
    ids=["answer-to-orderCancel-lost", "died-waiting-for-the-job"],
)
async def test_cancel_retried_while_the_first_job_runs_waits_for_that_job(
    store: Store, lost: str
) -> None:
    store.shop.job_delay = timedelta(seconds=2)  # the first job outlives the first attempt
    order = await store.first(_open_paid)
    prepared = await store.prepare(order, ActionType.CANCEL, {"reason": "CUSTOMER"})
    state = store.order(order)
    await store.answer_lost(lost, order, ActionType.CANCEL, prepared, lambda: state.cancelling)
    assert state.cancelling and state.cancelled_at is None  # the first job is still running

    beats: list[float] = []
    retried = await store.perform(
        order, ActionType.CANCEL, prepared, progress=lambda: beats.append(time.monotonic())
    )

    (cancel,) = store.ledger("cancel", order)
    assert state.cancelled_at is not None and not state.cancelling
    assert retried.reference == cancel["job_id"]  # waited for the first attempt's job
    assert retried.detail == {"cancelled": True} and beats  # and said so while it waited
    cancels = [b for b in store.sent if "orderCancel(" in str(b.get("query"))]
    assert len(cancels) == 2 and cancels[0] == cancels[1]  # the same request, the same key

    again = await store.perform(order, ActionType.CANCEL, prepared)  # after it finished
    assert again.detail == {"already_cancelled": True}
    assert len(store.ledger("cancel", order)) == 1


async def test_cancel_performed_twice_cancels_once(store: Store) -> None:
    order = await store.first(_open_paid)
    prepared = await store.prepare(order, ActionType.CANCEL, {})
    await store.perform(order, ActionType.CANCEL, prepared)
    again = await store.perform(order, ActionType.CANCEL, prepared)
    assert again.detail == {"already_cancelled": True}
    assert len(store.ledger("cancel", order)) == 1


# --- replacement --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lost", "committed"),
    [("orderEditCommit(", True), ("orderEditAddVariant(", False)],
    ids=["answer-to-commit-lost", "died-before-commit"],
)
async def test_replacement_by_edit_retried_edits_once(
    store: Store, lost: str, committed: bool
) -> None:
    order = await store.first(_open_paid)
    line = order.line_items[0]
    variant = _other_variant(store, line.variant_id)
    payload = {"line_item_id": line.id, "variant_id": variant}
    prepared = await store.prepare(order, ActionType.REPLACE_ITEM, payload)

    def edited() -> bool:
        if committed:
            return bool(store.ledger("order_edit", order))
        return any(
            e.order_id == store.order(order).id and e.added for e in store.shop.edits.values()
        )

    await store.answer_lost(lost, order, ActionType.REPLACE_ITEM, prepared, edited)
    retried = await store.perform(order, ActionType.REPLACE_ITEM, prepared)
    assert ("already_replaced" in retried.detail) is committed
    await store.perform(order, ActionType.REPLACE_ITEM, prepared)  # and once more

    assert len(store.ledger("order_edit", order)) == 1
    after = await store.admin.get_order(store.target, order.id)
    (old,) = [item for item in after.line_items if item.id == line.id]
    assert old.quantity == 0
    assert [item.variant_id for item in after.line_items if item.quantity > 0].count(variant) == 1


async def test_a_line_swapped_for_another_variant_is_not_taken_for_this_replacement(
    store: Store,
) -> None:
    """A line at zero counts as this action's edit only with its new variant on the order."""
    order = await store.first(_open_paid)
    line = order.line_items[0]
    first = _other_variant(store, line.variant_id)
    second = next(
        gid
        for gid in (f"gid://shopify/ProductVariant/{v.id}" for v in store.shop.variants.values())
        if gid not in (line.variant_id, first)
    )
    swap = await store.prepare(
        order, ActionType.REPLACE_ITEM, {"line_item_id": line.id, "variant_id": first}
    )
    await store.perform(order, ActionType.REPLACE_ITEM, swap, key="another-action")
    other = await store.prepare(
        order, ActionType.REPLACE_ITEM, {"line_item_id": line.id, "variant_id": second}
    )
    with pytest.raises(IntegrationError, match="was removed") as refused:
        await store.perform(order, ActionType.REPLACE_ITEM, other)
    assert not refused.value.retryable and len(store.ledger("order_edit", order)) == 1


async def test_replacement_by_exchange_retried_returns_once(store: Store) -> None:
    order = await store.first(_shipped)
    line = order.line_items[0]
    variant = _other_variant(store, line.variant_id)
    payload = {"line_item_id": line.id, "variant_id": variant}
    prepared = await store.prepare(order, ActionType.REPLACE_ITEM, payload)
    state = store.order(order)

    def returns() -> list[Any]:
        return [r for r in store.shop.returns.values() if r.order_id == state.id]

    await store.answer_lost(
        "returnCreate(", order, ActionType.REPLACE_ITEM, prepared, lambda: bool(returns())
    )
    retried = await store.perform(order, ActionType.REPLACE_ITEM, prepared)
    await store.perform(order, ActionType.REPLACE_ITEM, prepared)

    (made,) = returns()
    assert retried.reference == f"gid://shopify/Return/{made.id}"
    assert [(x.variant.id, x.quantity) for x in made.exchanges] == [
        (int(variant.rsplit("/", 1)[-1]), 1)
    ]
    assert len(store.ledger("return", order)) == 1


async def test_keyed_mutations_answer_a_repeat_with_the_first_result(store: Store) -> None:
    """Shopify's own guarantee, without our checks in front: the same key acts once."""
    client = ShopifyGraphQL()
    try:
        shipped = await store.first(_shipped)
        fulfillment = store.order(shipped).fulfillments[0]
        variant = _other_variant(store, shipped.line_items[0].variant_id)
        return_input = {
            "orderId": shipped.id,
            "returnLineItems": [
                {
                    "fulfillmentLineItemId": f"gid://shopify/FulfillmentLineItem/{fulfillment.lines[0].id}",
                    "quantity": 1,
                    "returnReason": "WRONG_ITEM",
                }
            ],
            "exchangeLineItems": [{"variantId": variant, "quantity": 1}],
        }
        created = [
            await client.execute(
                store.target, doc.RETURN_CREATE, {"input": return_input, "key": KEY + "-r"}
            )
            for _ in range(2)
        ]
        assert created[0] == created[1] and not created[0]["returnCreate"]["userErrors"]
        assert len(store.ledger("return", shipped)) == 1

        unshipped = await store.first(_open_paid)
        variables = {"id": unshipped.id, "reason": "CUSTOMER", "note": None, "key": KEY + "-c"}
        cancelled = [
            await client.execute(store.target, doc.ORDER_CANCEL, variables) for _ in range(2)
        ]
        first, second = (c["orderCancel"] for c in cancelled)
        assert first["job"]["id"] == second["job"]["id"] and not second["orderCancelUserErrors"]
        await _until(lambda: store.order(unshipped).cancelled_at is not None, "the cancel job")
        assert len(store.ledger("cancel", unshipped)) == 1
    finally:
        await client.aclose()


# --- address ------------------------------------------------------------------------------


async def test_address_change_retried_leaves_the_same_full_address(store: Store) -> None:
    order = await store.first(_open_paid)
    assert (order.shipping_address or {}).get("provinceCode")  # NEW_ADDRESS has none
    prepared = await store.prepare(order, ActionType.ADDRESS_CHANGE, {"address": NEW_ADDRESS})
    await store.answer_lost(
        "orderUpdate(",
        order,
        ActionType.ADDRESS_CHANGE,
        prepared,
        lambda: bool(store.ledger("order_update", order)),
    )
    after_first = dict(store.order(order).shipping_address or {})
    await store.perform(order, ActionType.ADDRESS_CHANGE, prepared)

    first, second = store.ledger("order_update", order)
    assert first["shipping_address"] == second["shipping_address"] == after_first
    assert store.order(order).shipping_address == after_first
    # The whole address is ours: nothing of the old one (its province) survives.
    assert after_first["address1"] == "1 New Road" and after_first["provinceCode"] is None


# --- timeouts -----------------------------------------------------------------------------


def _longest_wait(body: dict[str, Any]) -> float:
    """The longest the GraphQL client can wait on Shopify's rate limit for one request: a
    wait before every post (the first and every retry after a THROTTLED answer) for the
    document's cost, or the default before Shopify has reported it, restored at 50 points
    a second (the client's own assumption; every plan is faster)."""
    retries = inspect.signature(ShopifyGraphQL).parameters["max_throttle_retries"].default
    ast = parse(body["query"])
    operation = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    cost = requested_cost(admin_schema(), operation, fragments, body.get("variables") or {})
    empty = Bucket(available=0, maximum=2000, restore_rate=50, observed_at=0)
    return (retries + 1) * empty.wait_for(max(cost, DEFAULT_COST), 0)


async def test_execute_step_outlasts_the_longest_wait_on_the_store(store: Store) -> None:
    """The execution step's timeout covers every wait on the store its longest action can
    meet; its heartbeat timeout covers the longest wait that sends no heartbeat."""
    start_to_close, heartbeat = execute_timeouts(
        MessageWorkflowInput.model_fields["step_timeout"].default
    )

    async def record(body: dict[str, Any]) -> None:
        store.sent.append(body)

    store.sandbox.shopify.before_graphql = record
    shipped, unshipped = await store.first(_shipped), await store.first(_open_paid)

    def replace(order: OrderSnapshot) -> dict[str, Any]:
        line = order.line_items[0]
        return {"line_item_id": line.id, "variant_id": _other_variant(store, line.variant_id)}

    cases = [
        (unshipped, ActionType.REFUND, {"amount": "1.00"}),
        (unshipped, ActionType.ADDRESS_CHANGE, {"address": NEW_ADDRESS}),
        (unshipped, ActionType.REPLACE_ITEM, replace(unshipped)),
        (shipped, ActionType.REPLACE_ITEM, replace(shipped)),
        (unshipped, ActionType.CANCEL, {}),
    ]
    for order, action, payload in cases:
        store.sent.clear()
        # The step reads the order before it prepares and performs: none of that heartbeats.
        await store.admin.get_order(store.target, order.id)
        prepared = await store.prepare(order, action, payload)
        silent = list(store.sent)
        await store.perform(order, action, prepared, progress=lambda: None, key=uuid.uuid4().hex)
        performed = store.sent[len(silent) :]
        waits = sum(_longest_wait(b) for b in silent + performed if "job(id:" not in b["query"])
        polls = [b for b in performed if "job(id:" in b["query"]]
        if polls:  # polling for JOB_PATIENCE_SECONDS, then one more poll
            waits += shopify_admin.JOB_PATIENCE_SECONDS + _longest_wait(polls[0])
        print(f"{action.value}: at most {waits:.0f} s waiting on the store, of {start_to_close}")
        assert start_to_close.total_seconds() > waits, (action, waits)
        for body in silent:
            assert heartbeat.total_seconds() > _longest_wait(body), (action, body["query"][:40])
    # Inside `perform` every wait reports progress at least this often.
    assert heartbeat.total_seconds() > max(
        shopify_admin.PROGRESS_EVERY_SECONDS, shopify_admin.JOB_POLL_SECONDS
    )


# --- through the workflow ----------------------------------------------------------------


async def test_a_cancel_job_longer_than_the_heartbeat_timeout_runs_once_in_one_attempt(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The execution step heartbeats while Shopify's job runs, so Temporal neither times it
    out nor starts a second attempt, however much longer than a step the job takes."""
    step = timedelta(seconds=5)  # the heartbeat timeout; the job takes twice as long
    queue = f"once-{uuid.uuid4().hex[:8]}"
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        merchant.shop.job_delay = step * 2
        number = merchant.number(
            lambda o: (
                o["fulfillment_status"] == "UNFULFILLED"
                and not o["cancelled"]
                and o["financial_status"] == "PAID"
            )
        )
        message_id, _, workflow_id = await store_message(
            own_sessions,
            merchant,
            sender=merchant.orders[number]["email"],
            subject="Please cancel",
            text=f"I ordered by mistake, please cancel order #{number}.",
            started=True,
        )
        handle = await temporal_dev.client.start_workflow(
            MESSAGE_WORKFLOW,
            MessageWorkflowInput(
                user_id=merchant.user_id, message_id=message_id, step_timeout=step
            ),
            id=workflow_id,
            task_queue=queue,
            result_type=MessageState,
        )
        state = await _awaiting(handle)
        assert state.action_type == ActionType.CANCEL, state
        await handle.execute_update(APPROVE_UPDATE, ApproveInput(action_id=state.action_id))
        final = await handle.result()

    assert final.stage == Stage.EXECUTED and final.action_status == ActionStatus.EXECUTED, final
    assert [e["type"] for e in merchant.shop.ledger if e["type"] == "cancel"] == ["cancel"]
    history = await handle.fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    (execute_id,) = [i for i, a in scheduled.items() if a.activity_type.name == EXECUTE_ACTION]
    options = scheduled[execute_id]
    assert (
        options.start_to_close_timeout.ToTimedelta(),
        options.heartbeat_timeout.ToTimedelta(),
    ) == execute_timeouts(step)
    (started,) = [
        e.activity_task_started_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id == execute_id
    ]
    assert started.attempt == 1
