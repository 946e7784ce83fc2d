"""ShopifyPort over the Admin GraphQL API: reading orders and the four write actions.

Each action re-reads what it needs from Shopify and turns `userErrors` into a
non-retryable IntegrationError carrying Shopify's message, which the merchant sees.

Every action happens once however often it is performed under the same key: refundCreate,
orderCancel and returnCreate carry `@idempotent(key:)` (an action sends at most one keyed
mutation, so the action's key serves as is), and a retry first looks for what an earlier
attempt did where Shopify may not remember (an order already cancelled, an edit already
committed, an exchange already open). An address change sets the whole address, so
sending it again changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.shopify import documents as doc
from integrations.shopify.graphql import ShopifyGraphQL, user_errors
from integrations.shopify.orders import order_snapshot
from integrations.shopify.refund_plan import RefundPlanError, plan_transactions
from kernel.enums import ActionType
from kernel.errors import IntegrationError
from kernel.values import MAILING_ADDRESS_FIELDS, ActionOutcome, OrderSnapshot, ShopTarget

JOB_POLL_SECONDS = 0.5
JOB_PATIENCE_SECONDS = 30.0  # then a retryable error: the retry waits for the same job
PROGRESS_EVERY_SECONDS = 1.0  # the longest a wait goes without reporting progress

# Who to tell that the action performed in this task is still alive (the execution
# activity's heartbeat). A context variable, because the GraphQL client's rate-limit waits
# run inside calls that know nothing of the action; each task sees only its own.
_progress: ContextVar[Callable[[], None] | None] = ContextVar("shopify_progress", default=None)


@contextmanager
def _reporting(progress: Callable[[], None] | None) -> Iterator[None]:
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


async def _wait(seconds: float) -> None:
    """Sleep, reporting progress at least every PROGRESS_EVERY_SECONDS while an action waits."""
    progress = _progress.get()
    if progress is None:
        await asyncio.sleep(seconds)
        return
    remaining = seconds
    while remaining > 0:
        progress()
        step = min(remaining, PROGRESS_EVERY_SECONDS)
        await asyncio.sleep(step)
        remaining -= step
    progress()


def _refused(action: str, messages: list[str]) -> IntegrationError:
    return IntegrationError(f"Shopify refused {action}: {'; '.join(messages)}", retryable=False)


def _numeric_id(gid: str) -> str:
    return gid.rsplit("/", 1)[-1]


class ShopifyAdmin:
    def __init__(self, graphql: ShopifyGraphQL | None = None) -> None:
        # Our own client waits out rate limits with `_wait`, so those waits report progress.
        self._graphql = graphql or ShopifyGraphQL(sleep=_wait)

    async def aclose(self) -> None:
        await self._graphql.aclose()

    # --- reading --------------------------------------------------------------------------

    async def get_order(
        self, shop: ShopTarget, order_id: str, *, line_items: bool = True
    ) -> OrderSnapshot:
        """The order now; without `line_items`, only its state (status, what it can still
        refund) and no lines, for a fraction of the points."""
        document = doc.ORDER if line_items else doc.ORDER_STATE
        data = await self._graphql.execute(shop, document, {"id": order_id})
        order = data.get("order")
        if order is None:
            raise IntegrationError(
                f"order {order_id} not found in {shop.shop_domain}", retryable=False
            )
        if line_items:
            page = order["lineItems"]
            while page["pageInfo"]["hasNextPage"]:
                more = await self._graphql.execute(
                    shop,
                    doc.ORDER_LINE_ITEMS,
                    {"id": order_id, "after": page["pageInfo"]["endCursor"]},
                )
                page = ((more.get("order") or {}).get("lineItems")) or {
                    "nodes": [],
                    "pageInfo": {"hasNextPage": False},
                }
                order["lineItems"]["nodes"] += page["nodes"]
        return order_snapshot(order)

    async def find_orders(
        self, shop: ShopTarget, query: str, limit: int = 50
    ) -> list[OrderSnapshot]:
        """Orders matching a Shopify search (`name:#1001`, `email:a@b.c`), newest first."""
        found: list[OrderSnapshot] = []
        after = None
        while len(found) < limit:
            data = await self._graphql.execute(
                shop,
                doc.ORDERS_SEARCH,
                {"query": query, "first": min(50, limit - len(found)), "after": after},
            )
            page = data["orders"]
            found += [order_snapshot(node) for node in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        return found

    async def order_by_name(self, shop: ShopTarget, name: str) -> OrderSnapshot | None:
        number = name.lstrip("#")
        matches = await self.find_orders(shop, f"name:#{number}", limit=1)
        return matches[0] if matches else None

    async def orders_by_email(self, shop: ShopTarget, email: str) -> list[OrderSnapshot]:
        """The customer's orders, newest first (summaries: no line items)."""
        return await self.find_orders(shop, f"email:{email.strip()}", limit=20)

    async def list_orders(self, shop: ShopTarget) -> list[OrderSnapshot]:
        return await self.find_orders(shop, "", limit=250)

    async def shop_owner_email(self, shop: ShopTarget) -> str:
        """The address Shopify has for the store's owner."""
        data = await self._graphql.execute(shop, doc.SHOP_EMAIL, {})
        found = data.get("shop") or {}
        email = found.get("email") or found.get("contactEmail")
        if not isinstance(email, str) or "@" not in email:
            raise IntegrationError(
                f"Shopify gave no owner email for {shop.shop_domain}", retryable=False
            )
        return email.strip()

    async def subscribe_webhooks(
        self, shop: ShopTarget, topics: tuple[str, ...], uri: str
    ) -> dict[str, str]:
        """Subscribe the shop to each topic; topic → outcome ("registered", "exists" or why
        not). Never raises: a failed subscription is reported and the caller decides."""
        outcomes: dict[str, str] = {}
        for topic in topics:
            try:
                data = await self._graphql.execute(
                    shop, doc.WEBHOOK_SUBSCRIPTION_CREATE, {"topic": topic, "uri": uri}
                )
            except IntegrationError as exc:
                outcomes[topic] = str(exc)
                continue
            result = data.get("webhookSubscriptionCreate") or {}
            if errors := user_errors(result):
                messages = "; ".join(errors)
                # A reinstall finds its earlier subscription: that is the state we want.
                outcomes[topic] = "exists" if "already been taken" in messages else messages
            else:
                outcomes[topic] = (
                    "registered"
                    if result.get("webhookSubscription")
                    else "no subscription returned"
                )
        return outcomes

    # --- writing --------------------------------------------------------------------------

    async def prepare(
        self, shop: ShopTarget, order_id: str, action: ActionType, payload: dict[str, Any]
    ) -> dict[str, Any]:
        if action is ActionType.REFUND:
            return {"refund_input": await self.plan_refund(shop, order_id, payload)}
        return dict(payload)

    async def perform(
        self,
        shop: ShopTarget,
        order_id: str,
        action: ActionType,
        prepared: dict[str, Any],
        idempotency_key: str,
        progress: Callable[[], None] | None = None,
    ) -> ActionOutcome:
        with _reporting(progress):
            if action is ActionType.REFUND:
                return await self.create_refund(shop, prepared["refund_input"], idempotency_key)
            if action is ActionType.CANCEL:
                return await self.cancel(shop, order_id, prepared, idempotency_key)
            if action is ActionType.ADDRESS_CHANGE:
                return await self.change_address(shop, order_id, prepared)
            if action is ActionType.REPLACE_ITEM:
                return await self.replace_item(shop, order_id, prepared, idempotency_key)
            return ActionOutcome()  # NONE and INFO_REQUEST change nothing in the store

    async def plan_refund(
        self, shop: ShopTarget, order_id: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """The RefundInput for a full refund, one by line items, or an amount; never more
        than Shopify says is refundable."""
        lines = [
            {
                "lineItemId": line["line_item_id"],
                "quantity": int(line.get("quantity", 1)),
                "restockType": "NO_RESTOCK",
            }
            for line in payload.get("line_items") or []
        ]
        amount = None
        if payload.get("amount") is not None:
            try:
                amount = Decimal(str(payload["amount"]))
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite():  # NaN would not even compare with the maximum
                raise _refused(
                    "the refund", [f"refund amount {payload['amount']!r} is not a number"]
                )
        data = await self._graphql.execute(
            shop,
            doc.SUGGESTED_REFUND,
            {"id": order_id, "lines": lines or None, "full": not lines},
        )
        suggestion = (data.get("order") or {}).get("suggestedRefund")
        if suggestion is None:
            raise IntegrationError(
                f"order {order_id} not found in {shop.shop_domain}", retryable=False
            )
        try:
            transactions = plan_transactions(order_id, suggestion, amount)
        except RefundPlanError as exc:
            raise _refused("the refund", [str(exc)]) from exc
        refund_input: dict[str, Any] = {
            "orderId": order_id,
            "note": payload.get("note") or "Refund approved in deskpilot",
            "notify": True,
            "transactions": transactions,
        }
        if lines:
            refund_input["refundLineItems"] = lines
        return refund_input

    async def create_refund(
        self, shop: ShopTarget, refund_input: dict[str, Any], key: str
    ) -> ActionOutcome:
        data = await self._graphql.execute(
            shop, doc.REFUND_CREATE, {"input": refund_input, "key": key}
        )
        result = data["refundCreate"]
        if errors := user_errors(result):
            raise _refused("the refund", errors)
        refund = result["refund"]
        total = ((refund.get("totalRefundedSet") or {}).get("shopMoney") or {}).get("amount")
        return ActionOutcome(reference=refund["id"], detail={"amount": total})

    async def cancel(
        self, shop: ShopTarget, order_id: str, payload: dict[str, Any], key: str
    ) -> ActionOutcome:
        # An order already cancelled was most likely cancelled by an earlier attempt.
        current = await self.get_order(shop, order_id, line_items=False)
        if current.cancelled:
            return ActionOutcome(reference=order_id, detail={"already_cancelled": True})
        # Not cancelled yet, but an earlier attempt's job may still be running: under the
        # same key Shopify hands back that attempt's answer (its job) instead of cancelling
        # again or refusing an order that is being cancelled, and we wait for that job.
        result = (
            await self._graphql.execute(
                shop,
                doc.ORDER_CANCEL,
                {
                    "id": order_id,
                    "reason": payload.get("reason", "CUSTOMER"),
                    "note": payload.get("note"),
                    "key": key,
                },
            )
        )["orderCancel"]
        if errors := user_errors(result, "orderCancelUserErrors"):
            # A key Shopify no longer remembers, and the earlier job finished meanwhile.
            if (await self.get_order(shop, order_id, line_items=False)).cancelled:
                return ActionOutcome(reference=order_id, detail={"already_cancelled": True})
            raise _refused("the cancellation", errors)
        job = result.get("job") or {}
        if job.get("id") and not job.get("done"):
            await self._wait_for_job(shop, job["id"])
        return ActionOutcome(reference=job.get("id"), detail={"cancelled": True})

    async def _wait_for_job(self, shop: ShopTarget, job_id: str) -> None:
        """Poll until the job is done, for JOB_PATIENCE_SECONDS of wall time in all."""
        deadline = time.monotonic() + JOB_PATIENCE_SECONDS
        while True:
            data = await self._graphql.execute(shop, doc.JOB, {"id": job_id})
            if (data.get("job") or {}).get("done"):
                return
            if time.monotonic() >= deadline:
                raise IntegrationError(f"Shopify job {job_id} is still running", retryable=True)
            await _wait(JOB_POLL_SECONDS)

    async def change_address(
        self, shop: ShopTarget, order_id: str, payload: dict[str, Any]
    ) -> ActionOutcome:
        address = payload.get("address")
        if not isinstance(address, dict) or not address.get("address1"):
            raise _refused("the address change", ["a full shipping address is required"])
        # Every field is sent, null where the customer gave none, so the order ends with
        # exactly this address whatever it had before: a repeat after a lost answer sets
        # the same address again and is harmless, and needs no key.
        shipping = {k: address.get(k) for k in MAILING_ADDRESS_FIELDS}
        result = (
            await self._graphql.execute(
                shop,
                doc.ORDER_UPDATE_ADDRESS,
                {"input": {"id": order_id, "shippingAddress": shipping}},
            )
        )["orderUpdate"]
        if errors := user_errors(result):
            raise _refused("the address change", errors)
        return ActionOutcome(reference=order_id, detail={"address": shipping})

    async def replace_item(
        self, shop: ShopTarget, order_id: str, payload: dict[str, Any], key: str
    ) -> ActionOutcome:
        """An unfulfilled line is swapped by an order edit; a fulfilled one becomes an exchange."""
        line_id = payload.get("line_item_id")
        quantity = int(payload.get("quantity", 1))
        order = await self.get_order(shop, order_id)
        line = next((item for item in order.line_items if item.id == line_id), None)
        if line is None:
            raise _refused("the replacement", [f"line item {line_id} is not on order {order.name}"])
        variant_id = payload.get("variant_id") or line.variant_id
        if not variant_id:
            raise _refused("the replacement", ["no replacement variant given"])
        if line.quantity == 0:
            # Order edits take no key. A committed edit of an earlier attempt left the line
            # at zero and the new variant on another line: do not edit the order again.
            if any(
                item.id != line_id and item.variant_id == variant_id and item.quantity > 0
                for item in order.line_items
            ):
                return ActionOutcome(reference=order_id, detail={"already_replaced": line_id})
            raise _refused("the replacement", [f"line item {line_id} was removed from the order"])
        if line.fulfilled:
            return await self._exchange(shop, order_id, line_id, variant_id, quantity, key)
        return await self._edit(shop, order_id, line_id, variant_id, quantity)

    async def _edit(
        self, shop: ShopTarget, order_id: str, line_id: str, variant_id: str, quantity: int
    ) -> ActionOutcome:
        begin = (await self._graphql.execute(shop, doc.ORDER_EDIT_BEGIN, {"id": order_id}))[
            "orderEditBegin"
        ]
        if errors := user_errors(begin):
            raise _refused("the order edit", errors)
        calculated = begin["calculatedOrder"]
        # A calculated line carries the number of the order line it stands for.
        calculated_line = next(
            (
                n
                for n in calculated["lineItems"]["nodes"]
                if _numeric_id(n["id"]) == _numeric_id(line_id)
            ),
            None,
        )
        if calculated_line is None:
            raise _refused("the order edit", [f"line item {line_id} cannot be edited"])
        steps = (
            (
                doc.ORDER_EDIT_SET_QUANTITY,
                "orderEditSetQuantity",
                {"id": calculated["id"], "lineItemId": calculated_line["id"], "quantity": 0},
            ),
            (
                doc.ORDER_EDIT_ADD_VARIANT,
                "orderEditAddVariant",
                {"id": calculated["id"], "variantId": variant_id, "quantity": quantity},
            ),
            (
                doc.ORDER_EDIT_COMMIT,
                "orderEditCommit",
                {"id": calculated["id"], "note": "Replacement approved in deskpilot"},
            ),
        )
        for document, field, variables in steps:
            result = (await self._graphql.execute(shop, document, variables))[field]
            if errors := user_errors(result):
                raise _refused("the order edit", errors)
        return ActionOutcome(
            reference=calculated["id"], detail={"replaced": line_id, "with": variant_id}
        )

    async def _exchange(
        self,
        shop: ShopTarget,
        order_id: str,
        line_id: str,
        variant_id: str,
        quantity: int,
        key: str,
    ) -> ActionOutcome:
        data = await self._graphql.execute(shop, doc.FULFILLMENT_LINES, {"id": order_id})
        order = data.get("order") or {}
        fulfillment_line = next(
            (
                node
                for fulfillment in order.get("fulfillments") or []
                for node in fulfillment["fulfillmentLineItems"]["nodes"]
                if node["lineItem"]["id"] == line_id
            ),
            None,
        )
        if fulfillment_line is None:
            raise _refused("the exchange", [f"line item {line_id} has no fulfilment to return"])
        # The key covers a retry Shopify still remembers; an open return of this line for
        # this variant is the earlier attempt's exchange whether or not it does.
        earlier = _exchange_of(order, fulfillment_line["id"], variant_id)
        if earlier is not None:
            return ActionOutcome(
                reference=earlier,
                detail={"exchange": line_id, "with": variant_id, "already_exchanged": True},
            )
        return_input = {
            "orderId": order_id,
            "returnLineItems": [
                {
                    "fulfillmentLineItemId": fulfillment_line["id"],
                    "quantity": quantity,
                    "returnReason": "WRONG_ITEM",
                }
            ],
            "exchangeLineItems": [{"variantId": variant_id, "quantity": quantity}],
            "notifyCustomer": True,
        }
        result = (
            await self._graphql.execute(
                shop, doc.RETURN_CREATE, {"input": return_input, "key": key}
            )
        )["returnCreate"]
        if errors := user_errors(result):
            raise _refused("the exchange", errors)
        return ActionOutcome(
            reference=result["return"]["id"], detail={"exchange": line_id, "with": variant_id}
        )


def _exchange_of(order: dict[str, Any], fulfillment_line_id: str, variant_id: str) -> str | None:
    """The id of a live return that sends this fulfilment line back for this variant."""
    for found in (order.get("returns") or {}).get("nodes") or []:
        if found.get("status") in ("CANCELED", "DECLINED"):
            continue
        returned = {
            (node.get("fulfillmentLineItem") or {}).get("id")
            for node in found["returnLineItems"]["nodes"]
        }
        wanted = {node.get("variantId") for node in found["exchangeLineItems"]["nodes"]}
        if fulfillment_line_id in returned and variant_id in wanted:
            return str(found["id"])
    return None
