"""The sandbox store's model: shops, orders and every change Shopify would make to them.

Pure Python, no I/O: the GraphQL resolvers and the HTTP server call into it, and tests
can read it directly. A refusal is a `Refusal`, which the resolvers turn into the
mutation's own `userErrors` shape. Changes that Shopify announces by webhook are queued
in `ShopifyState.outbox` for the dispatcher to deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
ORDER_SCOPES = (
    "read_orders,write_orders,read_customers,read_returns,write_returns,write_order_edits"
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def cents(value: Decimal | str | float | int) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def parse_gid(value: str, kind: str | None = None) -> int | None:
    """The numeric id of `gid://shopify/{kind}/{n}`, or None when it is not one."""
    prefix, _, number = value.rpartition("/")
    if not prefix.startswith("gid://shopify/") or not number.isdigit():
        return None
    if kind is not None and prefix != f"gid://shopify/{kind}":
        return None
    return int(number)


class Refusal(Exception):
    """Shopify would answer with a userError: `field` is the input path, `code` the enum."""

    def __init__(self, message: str, field: list[str] | None = None, code: str = "INVALID") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


# --- the catalogue and the people ---------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    id: int
    product_id: int
    product_title: str
    title: str  # "M / Blue", or "Default Title" for single-variant products
    sku: str
    price: Decimal


@dataclass
class Customer:
    id: int
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


# --- orders -------------------------------------------------------------------------------


@dataclass
class LineItem:
    id: int
    variant: Variant | None
    title: str
    sku: str | None
    quantity: int  # as ordered, or as added by an order edit
    unit_price: Decimal
    removed: int = 0  # taken off by an order edit
    refunded: int = 0
    fulfilled: int = 0

    @property
    def refundable_quantity(self) -> int:
        return self.quantity - self.removed - self.refunded

    @property
    def unfulfilled_quantity(self) -> int:
        return max(self.refundable_quantity - self.fulfilled, 0)


@dataclass
class Transaction:
    id: int
    kind: str  # OrderTransactionKind: SALE, REFUND, ...
    gateway: str
    amount: Decimal
    created_at: datetime
    status: str = "SUCCESS"
    parent_id: int | None = None


@dataclass
class FulfillmentLine:
    id: int
    line_item_id: int
    quantity: int


@dataclass
class Fulfillment:
    id: int
    created_at: datetime
    lines: list[FulfillmentLine]
    tracking_company: str = "UPS"
    tracking_number: str = ""
    status: str = "SUCCESS"


@dataclass
class RefundLine:
    line_item_id: int
    quantity: int
    restock_type: str
    subtotal: Decimal


@dataclass
class Refund:
    id: int
    order_id: int
    created_at: datetime
    note: str | None
    lines: list[RefundLine]
    shipping: Decimal
    transactions: list[Transaction]

    @property
    def total(self) -> Decimal:
        return sum((t.amount for t in self.transactions), Decimal("0.00"))


@dataclass
class Order:
    id: int
    number: int
    email: str | None
    customer: Customer | None
    created_at: datetime
    currency: str
    shipping_address: dict[str, str | None] | None
    line_items: list[LineItem]
    shipping_price: Decimal
    transactions: list[Transaction] = field(default_factory=list)
    fulfillments: list[Fulfillment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    updated_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    shipping_refunded: Decimal = Decimal("0.00")
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    phone: str | None = None
    edited: bool = False
    cancelling: bool = False  # an orderCancel job is queued

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def gid(self) -> str:
        return gid("Order", self.id)

    def line(self, line_id: int) -> LineItem | None:
        return next((item for item in self.line_items if item.id == line_id), None)

    @property
    def total_price(self) -> Decimal:
        """What the customer was charged: lines as ordered (edits included) plus shipping."""
        lines = sum((i.unit_price * (i.quantity - i.removed) for i in self.line_items), 0)
        return cents(lines + self.shipping_price)

    def current_quantity(self, item: LineItem) -> int:
        return 0 if self.cancelled_at else item.refundable_quantity

    @property
    def current_subtotal(self) -> Decimal:
        lines = sum((i.unit_price * self.current_quantity(i) for i in self.line_items), 0)
        return cents(lines)

    @property
    def current_total(self) -> Decimal:
        if self.cancelled_at:
            return Decimal("0.00")
        return cents(self.current_subtotal + self.shipping_price - self.shipping_refunded)

    def _sum(self, kinds: tuple[str, ...]) -> Decimal:
        return cents(
            sum(
                (t.amount for t in self.transactions if t.kind in kinds and t.status == "SUCCESS"),
                0,
            )
        )

    @property
    def received(self) -> Decimal:
        return self._sum(("SALE", "CAPTURE"))

    @property
    def refunded(self) -> Decimal:
        return self._sum(("REFUND",))

    @property
    def refundable(self) -> Decimal:
        """Money that can still go back: captured minus refunded."""
        return max(self.received - self.refunded, Decimal("0.00"))

    @property
    def outstanding(self) -> Decimal:
        return max(self.total_price - self.received, Decimal("0.00"))

    @property
    def financial_status(self) -> str:
        if self.received == 0:
            return "VOIDED" if self.cancelled_at else "PENDING"
        if self.refunded == 0:
            return "PARTIALLY_PAID" if self.outstanding > 0 else "PAID"
        return "REFUNDED" if self.refunded >= self.received else "PARTIALLY_REFUNDED"

    @property
    def fulfillment_status(self) -> str:
        fulfilled = sum(i.fulfilled for i in self.line_items)
        if fulfilled == 0:
            return "UNFULFILLED"
        if all(i.unfulfilled_quantity == 0 for i in self.line_items):
            return "FULFILLED"
        return "PARTIALLY_FULFILLED"

    def sale(self) -> Transaction | None:
        """The payment a refund goes back to."""
        return next(
            (
                t
                for t in self.transactions
                if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"
            ),
            None,
        )

    def fulfillment_line(self, line_id: int) -> tuple[Fulfillment, FulfillmentLine] | None:
        for fulfillment in self.fulfillments:
            for line in fulfillment.lines:
                if line.id == line_id:
                    return fulfillment, line
        return None


# --- the rest of a shop's records ---------------------------------------------------------


@dataclass
class Job:
    id: str  # a UUID, as Shopify's job ids are
    due_at: datetime
    run: Callable[[], None]
    done: bool = False


@dataclass
class EditLine:
    """A line of a CalculatedOrder: an existing line with its new quantity, or an added one."""

    id: int  # the LineItem id, or a fresh id for an added variant
    variant: Variant | None
    title: str
    sku: str | None
    unit_price: Decimal
    quantity: int
    original: LineItem | None = None
    restock: bool = False


@dataclass
class OrderEdit:
    id: int
    order_id: int
    lines: list[EditLine]
    added: list[EditLine] = field(default_factory=list)
    committed: bool = False

    def line(self, line_id: int) -> EditLine | None:
        return next((x for x in [*self.lines, *self.added] if x.id == line_id), None)


@dataclass
class ReturnLine:
    id: int
    fulfillment_line_id: int
    line_item_id: int
    quantity: int
    reason: str
    note: str


@dataclass
class ExchangeLine:
    id: int
    variant: Variant
    quantity: int


@dataclass
class Return:
    id: int
    order_id: int
    name: str
    created_at: datetime
    lines: list[ReturnLine]
    exchanges: list[ExchangeLine]
    status: str = "OPEN"


@dataclass
class WebhookSubscription:
    id: int
    topic: str  # the GraphQL enum: ORDERS_UPDATED
    uri: str
    format: str
    created_at: datetime

    @property
    def rest_topic(self) -> str:
        """orders/updated: the form of the X-Shopify-Topic header."""
        head, _, tail = self.topic.lower().partition("_")
        return f"{head}/{tail}"


@dataclass
class Idempotent:
    mutation: str
    fingerprint: str
    result: Any


@dataclass
class Bucket:
    """Shopify's leaky bucket of query cost points for one shop."""

    maximum: float
    restore_rate: float  # points per second
    available: float
    at: datetime

    def refill(self, now: datetime) -> None:
        elapsed = max((now - self.at).total_seconds(), 0.0)
        self.available = min(self.maximum, self.available + elapsed * self.restore_rate)
        self.at = now


@dataclass
class App:
    api_key: str
    secret: str
    scopes: str = ORDER_SCOPES
    redirect_urls: list[str] = field(default_factory=list)  # empty: any redirect_uri
    compliance_url: str | None = None  # where the mandatory compliance topics go


@dataclass
class Event:
    """One webhook to deliver: what Shopify's event bus would hand to its delivery system."""

    shop: str
    topic: str  # REST form, orders/updated
    payload: dict[str, Any]
    url: str
    secret: str
    event_id: str
    triggered_at: datetime


# --- a shop -------------------------------------------------------------------------------


class Shop:
    """One store and everything the Admin API can see or change on it."""

    def __init__(
        self,
        state: ShopifyState,
        domain: str,
        *,
        name: str,
        shop_id: int,
        currency: str = "USD",
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
    ) -> None:
        self.state = state
        self.domain = domain
        self.name = name
        self.id = shop_id
        self.currency = currency
        self.email = f"owner@{domain}"
        self.tokens: dict[str, tuple[str, str]] = {}  # access token -> (app api key, scope)
        self.orders: dict[int, Order] = {}
        self.variants: dict[int, Variant] = {}
        self.jobs: dict[str, Job] = {}
        self.edits: dict[int, OrderEdit] = {}
        self.returns: dict[int, Return] = {}
        self.subscriptions: dict[int, WebhookSubscription] = {}
        self.idempotency: dict[str, Idempotent] = {}
        self.ledger: list[dict[str, Any]] = []
        self.bucket = Bucket(bucket_size, restore_rate, bucket_size, state.clock())
        self.job_delay = timedelta(seconds=0.05)  # orderCancel completes after this
        self._ids = itertools.count(shop_id * 1000 + 1)

    # ids and lookups

    def next_id(self) -> int:
        return next(self._ids)

    def order(self, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise Refusal("Order does not exist", code="NOT_FOUND")
        return order

    def by_name(self, name: str) -> Order | None:
        wanted = name if name.startswith("#") else f"#{name}"
        return next((o for o in self.orders.values() if o.name == wanted), None)

    def app_for(self, token: str) -> App | None:
        entry = self.tokens.get(token)
        return None if entry is None else self.state.apps.get(entry[0])

    def installed_apps(self) -> list[App]:
        keys = dict.fromkeys(api_key for api_key, _ in self.tokens.values())
        return [self.state.apps[k] for k in keys if k in self.state.apps]

    # bookkeeping every effect shares

    def _record(self, kind: str, order: Order, **detail: Any) -> None:
        order.updated_at = self.state.clock()
        self.ledger.append(
            {"type": kind, "order": order.name, "order_id": order.gid, "at": iso(order.updated_at)}
            | detail
        )

    def _announce(self, order: Order, *topics: str) -> None:
        from sandbox.shopify import webhooks  # the REST payload shape lives with delivery

        payload = webhooks.order_payload(self, order)
        for topic in topics:
            self.state.emit(self, topic, payload)

    # orders

    def add_order(self, order: Order, *, announce: bool = True) -> Order:
        self.orders[order.id] = order
        for item in order.line_items:
            if item.variant is not None:
                self.variants.setdefault(item.variant.id, item.variant)
        if announce:
            self._announce(order, "orders/create")
        return order

    def fulfil(self, order_id: int) -> Fulfillment:
        """Ship every unfulfilled unit (a test and demo helper; the app never fulfils)."""
        order = self.order(order_id)
        if order.cancelled_at is not None:
            raise Refusal("A cancelled order cannot be fulfilled", ["orderId"])
        lines = []
        for item in order.line_items:
            if item.unfulfilled_quantity:
                lines.append(FulfillmentLine(self.next_id(), item.id, item.unfulfilled_quantity))
                item.fulfilled += item.unfulfilled_quantity
        if not lines:
            raise Refusal("Nothing left to fulfil", ["orderId"])
        fulfillment = Fulfillment(
            self.next_id(), self.state.clock(), lines, tracking_number=f"1Z{self.next_id()}"
        )
        order.fulfillments.append(fulfillment)
        self._record("fulfillment", order, fulfillment_id=gid("Fulfillment", fulfillment.id))
        self._announce(order, "orders/fulfilled", "orders/updated")
        return fulfillment

    def suggest_refund(
        self,
        order: Order,
        lines: list[tuple[int, int]],
        *,
        refund_shipping: bool = False,
        shipping_amount: Decimal | None = None,
        full: bool = False,
    ) -> tuple[Decimal, list[tuple[LineItem, int]], Decimal]:
        """(amount, lines with quantities, shipping) Shopify would suggest, capped by what is left."""
        if full:
            chosen = [(i, i.refundable_quantity) for i in order.line_items if i.refundable_quantity]
            refund_shipping = True
        else:
            chosen = []
            for line_id, quantity in lines:
                item = order.line(line_id)
                if item is not None:
                    chosen.append((item, max(min(quantity, item.refundable_quantity), 0)))
        shipping_left = order.shipping_price - order.shipping_refunded
        if shipping_amount is not None:
            shipping = min(cents(shipping_amount), shipping_left)
        else:
            shipping = shipping_left if refund_shipping else Decimal("0.00")
        subtotal = sum((item.unit_price * qty for item, qty in chosen), Decimal("0"))
        amount = min(cents(subtotal + shipping), order.refundable)
        if full:
            amount = order.refundable
        return amount, chosen, shipping

    def refund(
        self,
        order_id: int,
        *,
        lines: list[dict[str, Any]],
        transactions: list[dict[str, Any]],
        shipping: dict[str, Any] | None,
        note: str | None,
        idempotency_key: str | None,
    ) -> Refund:
        order = self.order(order_id)
        refund_lines: list[RefundLine] = []
        for index, entry in enumerate(lines):
            line_id = parse_gid(str(entry["lineItemId"]), "LineItem")
            item = order.line(line_id) if line_id is not None else None
            path = ["refundLineItems", str(index)]
            if item is None:
                raise Refusal("Line item does not exist on this order", [*path, "lineItemId"])
            quantity = int(entry["quantity"])
            if quantity <= 0:
                raise Refusal("Quantity must be greater than 0", [*path, "quantity"])
            if quantity > item.refundable_quantity:
                raise Refusal(
                    f"Quantity cannot refund more items than were purchased ({item.refundable_quantity} refundable)",
                    [*path, "quantity"],
                )
            restock = entry.get("restockType") or "NO_RESTOCK"
            refund_lines.append(
                RefundLine(item.id, quantity, restock, cents(item.unit_price * quantity))
            )
        shipping_amount = Decimal("0.00")
        shipping_left = order.shipping_price - order.shipping_refunded
        if shipping:
            if shipping.get("fullRefund"):
                shipping_amount = shipping_left
            elif shipping.get("amount") is not None:
                shipping_amount = cents(shipping["amount"])
            if shipping_amount > shipping_left:
                raise Refusal(
                    f"Shipping refund amount exceeds the refundable shipping {shipping_left}",
                    ["shipping", "amount"],
                )
        money: list[Transaction] = []
        total = Decimal("0.00")
        for index, entry in enumerate(transactions):
            path = ["transactions", str(index)]
            if entry.get("kind") != "REFUND":
                raise Refusal("Transaction kind must be REFUND", [*path, "kind"])
            amount = cents(entry["amount"])
            if amount <= 0:
                raise Refusal("Amount must be greater than 0", [*path, "amount"])
            parent = order.sale()
            if entry.get("parentId"):
                parent_id = parse_gid(str(entry["parentId"]), "OrderTransaction")
                parent = next((t for t in order.transactions if t.id == parent_id), None)
                if parent is None or parent.kind not in ("SALE", "CAPTURE"):
                    raise Refusal("Parent transaction does not exist", [*path, "parentId"])
            if parent is None:
                raise Refusal("The order has no payment to refund", [*path, "parentId"])
            if entry.get("gateway") != parent.gateway:
                raise Refusal(
                    f"Gateway must match the parent transaction ({parent.gateway})",
                    [*path, "gateway"],
                )
            total += amount
            money.append(
                Transaction(
                    self.next_id(),
                    "REFUND",
                    parent.gateway,
                    amount,
                    self.state.clock(),
                    parent_id=parent.id,
                )
            )
        if total > order.refundable:
            raise Refusal(
                f"Refund amount {total} is greater than the refundable amount {order.refundable}",
                ["transactions"],
            )
        if not refund_lines and not money and shipping_amount == 0:
            raise Refusal("A refund needs line items, shipping or a transaction", ["input"])
        refund = Refund(
            self.next_id(),
            order.id,
            self.state.clock(),
            note,
            refund_lines,
            shipping_amount,
            money,
        )
        for line in refund_lines:
            item = order.line(line.line_item_id)
            assert item is not None
            item.refunded += line.quantity
        order.shipping_refunded += shipping_amount
        order.transactions.extend(money)
        order.refunds.append(refund)
        self._record(
            "refund",
            order,
            refund_id=gid("Refund", refund.id),
            amount=str(refund.total),
            currency=order.currency,
            line_items=[
                {"line_item_id": gid("LineItem", x.line_item_id), "quantity": x.quantity}
                for x in refund_lines
            ],
            shipping=str(shipping_amount),
            idempotency_key=idempotency_key,
        )
        self._announce(order, "orders/updated")
        return refund

    def cancel(
        self,
        order_id: int,
        *,
        reason: str,
        restock: bool,
        refund: bool,
        notify: bool,
        staff_note: str | None,
    ) -> Job:
        """Queue the cancellation as Shopify does: a job that completes a moment later."""
        order = self.order(order_id)
        if order.cancelled_at is not None:
            raise Refusal("Order has already been cancelled", ["orderId"])
        if order.cancelling:
            raise Refusal("Order is already being cancelled", ["orderId"])
        if order.fulfillments:
            raise Refusal("Cannot cancel an order that has fulfillments", ["orderId"])
        order.cancelling = True

        def run() -> None:
            order.cancelling = False
            order.cancelled_at = self.state.clock()
            order.cancel_reason = reason
            refunded = Decimal("0.00")
            parent = order.sale()
            if refund and parent is not None and order.refundable > 0:
                refunded = order.refundable
                money = Transaction(
                    self.next_id(),
                    "REFUND",
                    parent.gateway,
                    refunded,
                    self.state.clock(),
                    parent_id=parent.id,
                )
                order.transactions.append(money)
                order.refunds.append(
                    Refund(
                        self.next_id(), order.id, money.created_at, None, [], Decimal(0), [money]
                    )
                )
            self._record(
                "cancel",
                order,
                job_id=f"gid://shopify/Job/{job.id}",
                reason=reason,
                restock=restock,
                refunded=str(refunded),
                notify_customer=notify,
                staff_note=staff_note,
            )
            self._announce(order, "orders/cancelled", "orders/updated")

        job = Job(secrets.token_hex(16), self.state.clock() + self.job_delay, run)
        self.jobs[job.id] = job
        return job

    def run_due_jobs(self, *, everything: bool = False) -> None:
        now = self.state.clock()
        for job in self.jobs.values():
            if not job.done and (everything or job.due_at <= now):
                job.done = True
                job.run()

    def update_order(self, order_id: int, changes: dict[str, Any]) -> Order:
        order = self.order(order_id)
        if "shippingAddress" in changes and changes["shippingAddress"] is not None:
            if order.cancelled_at is not None:
                raise Refusal(
                    "Cannot change the shipping address of a cancelled order", ["shippingAddress"]
                )
            if order.fulfillments:
                raise Refusal(
                    "Shipping address cannot be changed after the order has been fulfilled",
                    ["shippingAddress"],
                )
            order.shipping_address = mailing_address(changes["shippingAddress"])
        for key in ("email", "note", "phone"):
            if key in changes:
                setattr(order, key, changes[key])
        if changes.get("tags") is not None:
            order.tags = list(changes["tags"])
        self._record(
            "order_update",
            order,
            shipping_address=dict(order.shipping_address or {})
            if "shippingAddress" in changes
            else None,
            fields=sorted(k for k in changes if k != "id"),
        )
        self._announce(order, "orders/updated")
        return order

    # order edits

    def begin_edit(self, order_id: int) -> OrderEdit:
        order = self.order(order_id)
        if order.cancelled_at is not None:
            raise Refusal("The order is cancelled and cannot be edited", ["id"])
        lines = [
            EditLine(
                i.id, i.variant, i.title, i.sku, i.unit_price, i.refundable_quantity, original=i
            )
            for i in order.line_items
            if i.refundable_quantity > 0
        ]
        edit = OrderEdit(self.next_id(), order.id, lines)
        self.edits[edit.id] = edit
        return edit

    def open_edit(self, edit_id: int) -> OrderEdit:
        edit = self.edits.get(edit_id)
        if edit is None:
            raise Refusal("The calculated order does not exist", ["id"])
        if edit.committed:
            raise Refusal("The order edit has already been committed", ["id"])
        return edit

    def edit_set_quantity(
        self, edit_id: int, line_id: int, quantity: int, restock: bool
    ) -> tuple[OrderEdit, EditLine]:
        edit = self.open_edit(edit_id)
        line = edit.line(line_id)
        if line is None:
            raise Refusal("The line item does not exist on the calculated order", ["lineItemId"])
        if quantity < 0:
            raise Refusal("Quantity must be greater than or equal to 0", ["quantity"])
        if line.original is not None and quantity < line.original.fulfilled:
            raise Refusal(
                "Quantity cannot be lower than the fulfilled quantity "
                f"({line.original.fulfilled}); fulfilled items need a return",
                ["quantity"],
            )
        line.quantity = quantity
        line.restock = restock
        return edit, line

    def edit_add_variant(
        self, edit_id: int, variant_id: int, quantity: int
    ) -> tuple[OrderEdit, EditLine]:
        edit = self.open_edit(edit_id)
        variant = self.variants.get(variant_id)
        if variant is None:
            raise Refusal("The variant does not exist", ["variantId"])
        if quantity <= 0:
            raise Refusal("Quantity must be greater than 0", ["quantity"])
        line = EditLine(
            self.next_id(), variant, variant.product_title, variant.sku, variant.price, quantity
        )
        edit.added.append(line)
        return edit, line

    def commit_edit(self, edit_id: int, *, notify: bool, staff_note: str | None) -> Order:
        edit = self.open_edit(edit_id)
        order = self.order(edit.order_id)
        if order.cancelled_at is not None:
            raise Refusal("The order is cancelled and cannot be edited", ["id"])
        changes: list[dict[str, Any]] = []
        for line in edit.lines:
            item = line.original
            assert item is not None
            delta = line.quantity - item.refundable_quantity
            if delta < 0:
                item.removed += -delta
            elif delta > 0:
                item.quantity += delta
            if delta:
                changes.append({"line_item_id": gid("LineItem", item.id), "delta": delta})
        for line in edit.added:
            assert line.variant is not None
            order.line_items.append(
                LineItem(
                    line.id, line.variant, line.title, line.sku, line.quantity, line.unit_price
                )
            )
            changes.append(
                {
                    "line_item_id": gid("LineItem", line.id),
                    "variant_id": gid("ProductVariant", line.variant.id),
                    "delta": line.quantity,
                }
            )
        edit.committed = True
        order.edited = True
        self._record(
            "order_edit",
            order,
            edit_id=gid("CalculatedOrder", edit.id),
            changes=changes,
            notify_customer=notify,
            staff_note=staff_note,
        )
        self._announce(order, "orders/edited", "orders/updated")
        return order

    # returns

    def create_return(
        self, order_id: int, lines: list[dict[str, Any]], exchanges: list[dict[str, Any]]
    ) -> Return:
        order = self.order(order_id)
        if not lines:
            raise Refusal("Return line items can't be blank", ["returnLineItems"], "BLANK")
        returned: dict[int, int] = {}
        for existing in self.returns.values():
            if existing.order_id == order.id and existing.status != "CANCELED":
                for line in existing.lines:
                    returned[line.fulfillment_line_id] = (
                        returned.get(line.fulfillment_line_id, 0) + line.quantity
                    )
        return_lines: list[ReturnLine] = []
        for index, entry in enumerate(lines):
            path = ["returnLineItems", str(index)]
            fl_id = parse_gid(str(entry["fulfillmentLineItemId"]), "FulfillmentLineItem")
            found = order.fulfillment_line(fl_id) if fl_id is not None else None
            if found is None:
                raise Refusal(
                    "Fulfillment line item does not exist",
                    [*path, "fulfillmentLineItemId"],
                    "NOT_FOUND",
                )
            _, fulfillment_line = found
            quantity = int(entry["quantity"])
            left = fulfillment_line.quantity - returned.get(fulfillment_line.id, 0)
            if quantity <= 0 or quantity > left:
                raise Refusal(
                    f"Quantity must be between 1 and the returnable quantity {left}",
                    [*path, "quantity"],
                    "INVALID",
                )
            return_lines.append(
                ReturnLine(
                    self.next_id(),
                    fulfillment_line.id,
                    fulfillment_line.line_item_id,
                    quantity,
                    entry.get("returnReason") or "OTHER",
                    entry.get("returnReasonNote") or "",
                )
            )
        exchange_lines: list[ExchangeLine] = []
        for index, entry in enumerate(exchanges):
            path = ["exchangeLineItems", str(index)]
            variant_id = parse_gid(str(entry.get("variantId") or ""), "ProductVariant")
            variant = self.variants.get(variant_id) if variant_id is not None else None
            if variant is None:
                raise Refusal("Variant does not exist", [*path, "variantId"], "NOT_FOUND")
            quantity = int(entry["quantity"])
            if quantity <= 0:
                raise Refusal(
                    "Quantity must be greater than 0", [*path, "quantity"], "GREATER_THAN"
                )
            exchange_lines.append(ExchangeLine(self.next_id(), variant, quantity))
        count = sum(1 for r in self.returns.values() if r.order_id == order.id)
        created = Return(
            self.next_id(),
            order.id,
            f"{order.name}-R{count + 1}",
            self.state.clock(),
            return_lines,
            exchange_lines,
        )
        self.returns[created.id] = created
        self._record(
            "return",
            order,
            return_id=gid("Return", created.id),
            line_items=[
                {
                    "fulfillment_line_item_id": gid("FulfillmentLineItem", x.fulfillment_line_id),
                    "quantity": x.quantity,
                }
                for x in return_lines
            ],
            exchange_line_items=[
                {"variant_id": gid("ProductVariant", x.variant.id), "quantity": x.quantity}
                for x in exchange_lines
            ],
        )
        self._announce(order, "orders/updated")
        return created

    # webhooks

    def subscribe(self, topic: str, uri: str, fmt: str) -> WebhookSubscription:
        if not uri.startswith(("https://", "http://")):
            raise Refusal("Address is invalid", ["webhookSubscription", "callbackUrl"])
        for existing in self.subscriptions.values():
            if existing.topic == topic and existing.uri == uri:
                raise Refusal(
                    "Address for this topic has already been taken",
                    ["webhookSubscription", "callbackUrl"],
                )
        created = WebhookSubscription(self.next_id(), topic, uri, fmt, self.state.clock())
        self.subscriptions[created.id] = created
        return created

    def search(self, query: str | None) -> Iterator[Order]:
        from sandbox.shopify.search import matches

        for order in self.orders.values():
            if matches(order, query):
                yield order


# --- the whole sandbox --------------------------------------------------------------------


class ShopifyState:
    """Every shop and app the sandbox knows, the OAuth codes in flight and the webhook outbox."""

    def __init__(self, clock: Callable[[], datetime] = now_utc) -> None:
        self.clock = clock
        self.apps: dict[str, App] = {}
        self.shops: dict[str, Shop] = {}
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> (shop, api key, scope)
        self.outbox: list[Event] = []
        self.on_emit: Callable[[], None] | None = None  # the dispatcher's wake-up

    def register_app(self, api_key: str, secret: str, **options: Any) -> App:
        app = App(api_key, secret, **options)
        self.apps[api_key] = app
        return app

    def add_shop(self, domain: str, *, name: str | None = None, **options: Any) -> Shop:
        number = int.from_bytes(hashlib.sha256(domain.encode()).digest()[:4], "big") % 10**8
        shop = Shop(self, domain, name=name or domain.split(".")[0], shop_id=number, **options)
        self.shops[domain] = shop
        return shop

    def install(
        self, shop: Shop, api_key: str, *, token: str | None = None, scope: str | None = None
    ) -> str:
        """Give `api_key`'s app an offline token on `shop`; a known token for tests and the demo."""
        app = self.apps[api_key]
        token = token or f"shpat_{secrets.token_hex(16)}"
        shop.tokens[token] = (api_key, scope or app.scopes)
        return token

    def issue_code(self, shop: Shop, api_key: str, scope: str) -> str:
        code = secrets.token_hex(16)
        self.codes[code] = (shop.domain, api_key, scope)
        return code

    def redeem_code(self, shop: Shop, api_key: str, secret: str, code: str) -> tuple[str, str]:
        """The token for a code, once: a second redemption fails like Shopify's."""
        app = self.apps.get(api_key)
        if app is None or not hmac.compare_digest(app.secret, secret):
            raise Refusal("Invalid client credentials", code="invalid_client")
        entry = self.codes.get(code)
        if entry is None or entry[0] != shop.domain or entry[1] != api_key:
            raise Refusal(
                "The authorization code was not found or was already used", code="invalid_request"
            )
        del self.codes[code]
        return self.install(shop, api_key, scope=entry[2]), entry[2]

    def uninstall(self, shop: Shop, api_key: str) -> None:
        """Revoke the app's tokens and webhooks; `app/uninstalled` goes out first."""
        from sandbox.shopify import webhooks

        self.emit(shop, "app/uninstalled", webhooks.shop_payload(shop), only_app=api_key)
        shop.tokens = {t: v for t, v in shop.tokens.items() if v[0] != api_key}
        if not shop.installed_apps():
            shop.subscriptions.clear()

    def emit(
        self, shop: Shop, topic: str, payload: dict[str, Any], *, only_app: str | None = None
    ) -> None:
        """Queue `topic` for every subscription to it, signed with each installed app's secret."""
        wanted = topic.replace("/", "_").upper()
        apps = [a for a in shop.installed_apps() if only_app in (None, a.api_key)]
        if not apps:
            return
        event_id = secrets.token_hex(16)
        for subscription in shop.subscriptions.values():
            if subscription.topic != wanted:
                continue
            for app in apps:
                self.outbox.append(
                    Event(
                        shop.domain,
                        topic,
                        payload,
                        subscription.uri,
                        app.secret,
                        event_id,
                        self.clock(),
                    )
                )
        if self.on_emit is not None:
            self.on_emit()

    def emit_to(
        self, shop: Shop, topic: str, payload: dict[str, Any], url: str, secret: str
    ) -> Event:
        """Queue one delivery outside any subscription: the compliance topics go to the app's URL."""
        event = Event(shop.domain, topic, payload, url, secret, secrets.token_hex(16), self.clock())
        self.outbox.append(event)
        if self.on_emit is not None:
            self.on_emit()
        return event


# --- helpers ------------------------------------------------------------------------------

_COUNTRIES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "IN": "India",
    "AU": "Australia",
    "FR": "France",
}


def mailing_address(given: dict[str, Any]) -> dict[str, str | None]:
    """A MailingAddress from a MailingAddressInput; the input replaces the whole address."""
    code = given.get("countryCode")
    address = {
        key: given.get(key)
        for key in (
            "firstName",
            "lastName",
            "company",
            "address1",
            "address2",
            "city",
            "province",
            "provinceCode",
            "zip",
            "phone",
        )
    }
    address["countryCodeV2"] = code
    address["country"] = given.get("country") or _COUNTRIES.get(code or "", code)
    return address


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
