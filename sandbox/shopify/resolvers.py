"""What each Admin API field returns, over the store model in state.py.

graphql-core's default field resolver reads an attribute of the parent value and, when
it is a method, calls it with the field's arguments (named as in the schema, hence the
camelCase methods). So each GraphQL type the sandbox serves is a small view class here
and the schema itself is Shopify's, untouched: a field the sandbox does not model
resolves to null, which fails loudly where the schema says it cannot be null.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from graphql import GraphQLError, GraphQLResolveInfo, get_directive_values

from sandbox.shopify.schema import API_VERSION, admin_schema
from sandbox.shopify.search import parse
from sandbox.shopify.state import (
    EditLine,
    Fulfillment,
    FulfillmentLine,
    Idempotent,
    LineItem,
    Order,
    OrderEdit,
    Refund,
    RefundLine,
    Refusal,
    Return,
    Shop,
    Transaction,
    Variant,
    WebhookSubscription,
    cents,
    fingerprint,
    gid,
    iso,
    parse_gid,
)

T = TypeVar("T")
MAX_PAGE = 250
ZERO = Decimal("0.00")


@dataclass
class Context:
    """Who is asking: the shop and the scopes of the access token."""

    shop: Shop
    scopes: frozenset[str]
    search_warnings: list[dict[str, Any]]

    def require(self, scope: str, what: str) -> None:
        # write_x grants read_x, as on Shopify.
        held = self.scopes | {s.replace("write_", "read_", 1) for s in self.scopes}
        if scope not in held:
            raise GraphQLError(
                f"Access denied for {what} field. Required access: `{scope}` access scope.",
                extensions={"code": "ACCESS_DENIED"},
            )


def resolve_type(value: Any, _info: GraphQLResolveInfo, _abstract: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("__typename")
    return getattr(value, "typename", None)


# --- small shapes -------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(cents(amount)), "currencyCode": currency}


def bag(amount: Decimal, currency: str) -> dict[str, dict[str, str]]:
    value = money(amount, currency)
    return {"shopMoney": value, "presentmentMoney": value}


def _cursor(key: int) -> str:
    return base64.b64encode(json.dumps({"last_id": key}).encode()).decode()


def _after(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["last_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from exc


def connection(
    items: Sequence[T],
    wrap: Callable[[T], Any],
    key: Callable[[T], int],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    reverse: bool | None = False,
    **_: Any,
) -> dict[str, Any]:
    """A Relay connection as Shopify pages them: first/after or last/before, opaque cursors."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if (first or 0) > MAX_PAGE or (last or 0) > MAX_PAGE:
        raise GraphQLError(f"The maximum page size is {MAX_PAGE}")
    ordered = list(reversed(items)) if reverse else list(items)
    keys = [key(x) for x in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        mark = _after(after)
        start = keys.index(mark) + 1 if mark in keys else len(keys)
    if before is not None:
        mark = _after(before)
        end = keys.index(mark) if mark in keys else end
    window = ordered[start:end]
    has_next, has_previous = False, start > 0
    if first is not None:
        has_next = len(window) > first or end < len(ordered)
        window = window[:first]
    if last is not None:
        has_previous = len(window) > last or has_previous
        window = window[-last:] if last else []
    nodes = [wrap(x) for x in window]
    cursors = [_cursor(key(x)) for x in window]
    return {
        "nodes": nodes,
        "edges": [{"node": n, "cursor": c} for n, c in zip(nodes, cursors, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _limit(items: list[T], first: int | None) -> list[T]:
    return items if first is None else items[:first]


def _user_errors(refusal: Refusal, *, with_code: bool = False) -> list[dict[str, Any]]:
    error: dict[str, Any] = {"field": refusal.field, "message": refusal.message}
    if with_code:
        error["code"] = refusal.code
    return [error]


def _id(value: str, kind: str, *also: str) -> int:
    """The number in a gid of `kind`; a malformed id is a top-level error, as on Shopify."""
    for allowed in (kind, *also):
        number = parse_gid(value, allowed)
        if number is not None:
            return number
    raise GraphQLError(
        f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"}
    )


# --- views --------------------------------------------------------------------------------


class VariantView:
    def __init__(self, variant: Variant, currency: str) -> None:
        self.v = variant
        self.currency = currency
        self.id = gid("ProductVariant", variant.id)
        self.legacyResourceId = str(variant.id)
        self.title = variant.title
        self.sku = variant.sku
        self.price = str(variant.price)
        self.displayName = f"{variant.product_title} - {variant.title}"
        self.availableForSale = True
        self.taxable = True
        self.position = 1
        self.selectedOptions: list[dict[str, str]] = []

    def product(self, _info: GraphQLResolveInfo) -> dict[str, Any]:
        return {
            "id": gid("Product", self.v.product_id),
            "legacyResourceId": str(self.v.product_id),
            "title": self.v.product_title,
            "handle": self.v.product_title.lower().replace(" ", "-"),
            "vendor": "Demo Goods",
            "productType": "",
            "status": "ACTIVE",
            "tags": [],
        }


class CustomerView:
    def __init__(self, shop: Shop, order: Order) -> None:
        customer = order.customer
        assert customer is not None
        self.id = gid("Customer", customer.id)
        self.legacyResourceId = str(customer.id)
        self.firstName = customer.first_name
        self.lastName = customer.last_name
        self.displayName = f"{customer.first_name} {customer.last_name}"
        self.email = customer.email
        self.phone = customer.phone
        self.tags: list[str] = []
        self.defaultEmailAddress = {
            "emailAddress": customer.email,
            "validFormat": True,
            "marketingState": "NOT_SUBSCRIBED",
        }
        self.defaultPhoneNumber = (
            {"phoneNumber": customer.phone, "marketingState": "NOT_SUBSCRIBED"}
            if customer.phone
            else None
        )
        self.numberOfOrders = str(
            sum(1 for o in shop.orders.values() if o.customer and o.customer.id == customer.id)
        )


class LineItemView:
    def __init__(self, order: Order, item: LineItem) -> None:
        currency = order.currency
        self.item = item
        self.id = gid("LineItem", item.id)
        self.title = item.title
        self.sku = item.sku
        self.quantity = item.quantity
        self.currentQuantity = order.current_quantity(item)
        self.refundableQuantity = item.refundable_quantity
        self.unfulfilledQuantity = 0 if order.cancelled_at else item.unfulfilled_quantity
        self.fulfillableQuantity = self.unfulfilledQuantity
        self.nonFulfillableQuantity = item.quantity - self.unfulfilledQuantity - item.fulfilled
        self.variantTitle = None if item.variant is None else item.variant.title
        self.name = item.title if not self.variantTitle else f"{item.title} - {self.variantTitle}"
        self.vendor = "Demo Goods"
        self.variant = None if item.variant is None else VariantView(item.variant, currency)
        unit, total = bag(item.unit_price, currency), bag(item.unit_price * item.quantity, currency)
        self.originalUnitPriceSet = self.discountedUnitPriceSet = unit
        self.discountedUnitPriceAfterAllDiscountsSet = unit
        self.originalUnitPrice = self.discountedUnitPrice = str(item.unit_price)
        self.originalTotalSet = total
        self.originalTotal = self.discountedTotal = str(cents(item.unit_price * item.quantity))
        self.unfulfilledOriginalTotalSet = self.unfulfilledDiscountedTotalSet = bag(
            item.unit_price * self.unfulfilledQuantity, currency
        )
        self.totalDiscountSet = bag(ZERO, currency)
        self.requiresShipping = self.taxable = self.restockable = self.canRestock = True
        self.merchantEditable = True
        self.isGiftCard = False
        self.fulfillmentStatus = (
            "fulfilled"
            if item.fulfilled and not item.unfulfilled_quantity
            else "partial"
            if item.fulfilled
            else "unfulfilled"
        )
        self.customAttributes: list[Any] = []
        self.discountAllocations: list[Any] = []
        self.duties: list[Any] = []

    def discountedTotalSet(self, _info: GraphQLResolveInfo, **_: Any) -> dict[str, Any]:
        return self.originalTotalSet

    def taxLines(self, _info: GraphQLResolveInfo, **_: Any) -> list[Any]:
        return []


class TransactionView:
    def __init__(self, order: Order, transaction: Transaction) -> None:
        self.order_ = order
        self.t = transaction
        self.id = gid("OrderTransaction", transaction.id)
        self.kind = transaction.kind
        self.status = transaction.status
        self.gateway = transaction.gateway
        self.formattedGateway = (
            "Shopify Payments" if transaction.gateway == "shopify_payments" else transaction.gateway
        )
        self.amountSet = bag(transaction.amount, order.currency)
        self.amount = str(transaction.amount)
        self.amountV2 = money(transaction.amount, order.currency)
        self.createdAt = self.processedAt = iso(transaction.created_at)
        self.test = self.manualPaymentGateway = self.manuallyCapturable = False
        self.multiCapturable = False
        self.fees: list[Any] = []
        if transaction.kind in ("SALE", "CAPTURE"):
            self.maximumRefundable = str(order.refundable)
            self.maximumRefundableV2 = money(order.refundable, order.currency)

    def parentTransaction(self, _info: GraphQLResolveInfo) -> TransactionView | None:
        parent = next((t for t in self.order_.transactions if t.id == self.t.parent_id), None)
        return None if parent is None else TransactionView(self.order_, parent)


class FulfillmentView:
    def __init__(self, order: Order, fulfillment: Fulfillment, index: int) -> None:
        self.o = order
        self.f = fulfillment
        self.id = gid("Fulfillment", fulfillment.id)
        self.legacyResourceId = str(fulfillment.id)
        self.name = f"{order.name}-F{index + 1}"
        self.status = fulfillment.status
        self.displayStatus = "FULFILLED"
        self.createdAt = self.updatedAt = iso(fulfillment.created_at)
        self.requiresShipping = True
        self.totalQuantity = sum(x.quantity for x in fulfillment.lines)
        self.deliveredAt = self.inTransitAt = self.estimatedDeliveryAt = None

    def trackingInfo(
        self, _info: GraphQLResolveInfo, first: int | None = None
    ) -> list[dict[str, Any]]:
        number = self.f.tracking_number
        return _limit(
            [
                {
                    "company": self.f.tracking_company,
                    "number": number,
                    "url": f"https://www.ups.com/track?tracknum={number}",
                }
            ],
            first,
        )

    def fulfillmentLineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        def wrap(line: FulfillmentLine) -> dict[str, Any]:
            item = self.o.line(line.line_item_id)
            assert item is not None
            total = bag(item.unit_price * line.quantity, self.o.currency)
            return {
                "id": gid("FulfillmentLineItem", line.id),
                "quantity": line.quantity,
                "lineItem": LineItemView(self.o, item),
                "originalTotalSet": total,
                "discountedTotalSet": total,
            }

        return connection(self.f.lines, wrap, lambda x: x.id, **page)


class RefundLineView:
    def __init__(
        self, order: Order, line: RefundLine | tuple[LineItem, int], restock: str = "NO_RESTOCK"
    ) -> None:
        if isinstance(line, RefundLine):
            item = order.line(line.line_item_id)
            quantity, restock = line.quantity, line.restock_type
        else:
            item, quantity = line
        assert item is not None
        self.id = None
        self.lineItem = LineItemView(order, item)
        self.quantity = quantity
        self.restockType = restock
        self.restocked = restock != "NO_RESTOCK"
        self.priceSet = bag(item.unit_price, order.currency)
        self.price = str(item.unit_price)
        self.subtotalSet = bag(item.unit_price * quantity, order.currency)
        self.subtotal = str(cents(item.unit_price * quantity))
        self.totalTaxSet = bag(ZERO, order.currency)
        self.totalTax = "0.00"
        self.location = None


class RefundView:
    def __init__(self, shop: Shop, refund: Refund) -> None:
        self.shop = shop
        self.r = refund
        self.o = shop.orders[refund.order_id]
        self.id = gid("Refund", refund.id)
        self.legacyResourceId = str(refund.id)
        self.note = refund.note
        self.createdAt = self.processedAt = self.updatedAt = iso(refund.created_at)
        self.totalRefundedSet = bag(refund.total, self.o.currency)
        self.totalRefunded = money(refund.total, self.o.currency)
        self.duties: list[Any] = []
        self.staffMember = None

    def order(self, _info: GraphQLResolveInfo) -> OrderView:
        return OrderView(self.shop, self.o)

    def refundLineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection(
            self.r.lines, lambda x: RefundLineView(self.o, x), lambda x: x.line_item_id, **page
        )

    def transactions(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection(
            self.r.transactions, lambda t: TransactionView(self.o, t), lambda t: t.id, **page
        )

    def refundShippingLines(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection([], lambda x: x, lambda x: 0, **page)

    def orderAdjustments(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection([], lambda x: x, lambda x: 0, **page)


class SuggestedRefundView:
    def __init__(
        self,
        order: Order,
        amount: Decimal,
        lines: list[tuple[LineItem, int]],
        shipping: Decimal,
    ) -> None:
        currency = order.currency
        subtotal = cents(sum((i.unit_price * q for i, q in lines), Decimal(0)))
        self.amountSet = bag(amount, currency)
        self.amount = str(amount)
        self.maximumRefundableSet = bag(order.refundable, currency)
        self.maximumRefundable = str(order.refundable)
        self.subtotalSet = self.discountedSubtotalSet = bag(subtotal, currency)
        self.subtotal = str(subtotal)
        self.totalTaxSet = self.totalCartDiscountAmountSet = self.totalDutiesSet = bag(
            ZERO, currency
        )
        self.totalTaxes = "0.00"
        self.refundDuties: list[Any] = []
        self.suggestedRefundMethods: list[Any] = []
        self.refundLineItems = [RefundLineView(order, (item, q)) for item, q in lines if q]
        shipping_left = order.shipping_price - order.shipping_refunded
        self.shipping = {
            "amountSet": bag(shipping, currency),
            "amount": str(shipping),
            "maximumRefundableSet": bag(shipping_left, currency),
            "maximumRefundable": str(cents(shipping_left)),
            "taxSet": bag(ZERO, currency),
            "tax": "0.00",
        }
        sale = order.sale()
        self.suggestedTransactions = []
        if sale is not None and amount > 0:
            self.suggestedTransactions.append(
                {
                    "amountSet": bag(amount, currency),
                    "amount": str(amount),
                    "gateway": sale.gateway,
                    "formattedGateway": TransactionView(order, sale).formattedGateway,
                    "kind": "SUGGESTED_REFUND",
                    "parentTransaction": TransactionView(order, sale),
                    "maximumRefundableSet": bag(order.refundable, currency),
                    "maximumRefundable": str(order.refundable),
                }
            )


class OrderView:
    def __init__(self, shop: Shop, order: Order) -> None:
        o, currency = order, order.currency
        self.shop = shop
        self.o = order
        self.id = order.gid
        self.legacyResourceId = str(order.id)
        self.name = order.name
        self.number = order.number
        self.email = order.email
        self.phone = order.phone
        self.note = order.note
        self.tags = list(order.tags)
        self.createdAt = self.processedAt = iso(order.created_at)
        self.updatedAt = iso(order.updated_at or order.created_at)
        self.cancelledAt = iso(order.cancelled_at)
        self.cancelReason = order.cancel_reason
        self.closed = order.cancelled_at is not None
        self.closedAt = self.cancelledAt
        self.confirmed = True
        self.test = False
        self.edited = order.edited
        self.currencyCode = self.presentmentCurrencyCode = currency
        self.displayFinancialStatus = order.financial_status
        self.displayFulfillmentStatus = order.fulfillment_status
        self.customer = None if order.customer is None else CustomerView(shop, order)
        self.shippingAddress = self._address(order)
        self.billingAddress = self.shippingAddress
        self.displayAddress = self.shippingAddress
        self.billingAddressMatchesShippingAddress = True
        self.currentTotalPriceSet = bag(o.current_total, currency)
        self.currentSubtotalPriceSet = bag(o.current_subtotal, currency)
        self.currentShippingPriceSet = bag(
            ZERO if o.cancelled_at else o.shipping_price - o.shipping_refunded, currency
        )
        self.totalPriceSet = self.originalTotalPriceSet = bag(o.total_price, currency)
        self.totalPrice = str(o.total_price)
        self.subtotalPriceSet = bag(o.total_price - o.shipping_price, currency)
        self.subtotalPrice = str(cents(o.total_price - o.shipping_price))
        self.totalShippingPriceSet = bag(o.shipping_price, currency)
        self.totalShippingPrice = str(o.shipping_price)
        self.totalRefundedSet = bag(o.refunded, currency)
        self.totalRefunded = str(o.refunded)
        self.totalRefundedShippingSet = bag(o.shipping_refunded, currency)
        self.totalReceivedSet = bag(o.received, currency)
        self.totalReceived = str(o.received)
        self.netPaymentSet = bag(o.received - o.refunded, currency)
        self.netPayment = str(cents(o.received - o.refunded))
        self.totalOutstandingSet = bag(o.outstanding, currency)
        self.totalCapturableSet = bag(ZERO, currency)
        self.totalCapturable = "0.00"
        for name in (
            "totalTaxSet",
            "currentTotalTaxSet",
            "totalDiscountsSet",
            "currentTotalDiscountsSet",
            "currentCartDiscountAmountSet",
            "refundDiscrepancySet",
            "totalTipReceivedSet",
        ):
            setattr(self, name, bag(ZERO, currency))
        self.totalTax = self.totalDiscounts = "0.00"
        self.taxLines: list[Any] = []
        self.currentTaxLines: list[Any] = []
        self.discountCodes: list[str] = []
        self.customAttributes: list[Any] = []
        self.taxesIncluded = self.taxExempt = self.capturable = False
        self.refundable = o.refundable > 0
        self.fullyPaid = o.outstanding == 0
        self.unpaid = o.received == 0
        self.requiresShipping = True
        self.fulfillable = o.cancelled_at is None and any(
            i.unfulfilled_quantity for i in o.line_items
        )
        self.restockable = True
        self.canMarkAsPaid = False
        self.canNotifyCustomer = True
        self.merchantEditable = o.cancelled_at is None
        self.merchantEditableErrors = [] if o.cancelled_at is None else ["Order is cancelled"]
        self.paymentGatewayNames = sorted({t.gateway for t in o.transactions})
        self.subtotalLineItemsQuantity = sum(i.quantity - i.removed for i in o.line_items)
        self.currentSubtotalLineItemsQuantity = sum(o.current_quantity(i) for i in o.line_items)
        self.returnStatus = (
            "RETURN_REQUESTED"
            if any(r.order_id == o.id for r in shop.returns.values())
            else "NO_RETURN"
        )

    @staticmethod
    def _address(order: Order) -> dict[str, Any] | None:
        address = order.shipping_address
        if address is None:
            return None
        return {
            "id": gid("MailingAddress", order.id) + "?model_name=Address",
            "name": " ".join(x for x in (address.get("firstName"), address.get("lastName")) if x),
            "countryCode": address.get("countryCodeV2"),
            "coordinatesValidated": False,
            "formatted": lambda _info, **_: [
                x
                for x in (
                    address.get("address1"),
                    address.get("address2"),
                    " ".join(
                        x
                        for x in (
                            address.get("city"),
                            address.get("provinceCode"),
                            address.get("zip"),
                        )
                        if x
                    ),
                    address.get("country"),
                )
                if x
            ],
            **address,
        }

    def lineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection(
            self.o.line_items, lambda i: LineItemView(self.o, i), lambda i: i.id, **page
        )

    def fulfillments(
        self, _info: GraphQLResolveInfo, first: int | None = None, query: str | None = None
    ) -> list[FulfillmentView]:
        views = [FulfillmentView(self.o, f, n) for n, f in enumerate(self.o.fulfillments)]
        return _limit(views, first)

    def transactions(
        self, _info: GraphQLResolveInfo, first: int | None = None, **_: Any
    ) -> list[TransactionView]:
        return _limit([TransactionView(self.o, t) for t in self.o.transactions], first)

    def refunds(self, _info: GraphQLResolveInfo, first: int | None = None) -> list[RefundView]:
        return _limit([RefundView(self.shop, r) for r in self.o.refunds], first)

    def returns(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        mine = [r for r in self.shop.returns.values() if r.order_id == self.o.id]
        page.pop("query", None)
        return connection(mine, lambda r: ReturnView(self.shop, r), lambda r: r.id, **page)

    def suggestedRefund(
        self,
        _info: GraphQLResolveInfo,
        refundLineItems: list[dict[str, Any]] | None = None,
        refundShipping: bool | None = None,
        shippingAmount: Any = None,
        suggestFullRefund: bool | None = None,
        **_: Any,
    ) -> SuggestedRefundView:
        lines = []
        for index, entry in enumerate(refundLineItems or []):
            number = parse_gid(str(entry["lineItemId"]), "LineItem")
            if number is None or self.o.line(number) is None:
                raise GraphQLError(
                    f"Line item {entry['lineItemId']} does not exist on this order",
                    path=["refundLineItems", index, "lineItemId"],
                )
            lines.append((number, int(entry["quantity"])))
        amount, chosen, shipping = self.shop.suggest_refund(
            self.o,
            lines,
            refund_shipping=bool(refundShipping),
            shipping_amount=None if shippingAmount is None else Decimal(str(shippingAmount)),
            full=bool(suggestFullRefund),
        )
        return SuggestedRefundView(self.o, amount, chosen, shipping)


class CalculatedLineView:
    def __init__(self, edit: OrderEdit, line: EditLine, currency: str) -> None:
        original = line.original
        before = original.refundable_quantity if original is not None else 0
        self.id = gid("CalculatedLineItem", line.id)
        self.title = line.title
        self.sku = line.sku
        self.quantity = line.quantity
        self.editableQuantity = line.quantity - (original.fulfilled if original else 0)
        self.editableQuantityBeforeChanges = before - (original.fulfilled if original else 0)
        self.variant = None if line.variant is None else VariantView(line.variant, currency)
        self.variantTitle = None if line.variant is None else line.variant.title
        self.originalUnitPriceSet = self.discountedUnitPriceSet = bag(line.unit_price, currency)
        self.editableSubtotalSet = bag(line.unit_price * self.editableQuantity, currency)
        self.uneditableSubtotalSet = bag(
            line.unit_price * (line.quantity - self.editableQuantity), currency
        )
        self.restockable = True
        self.restocking = line.restock
        self.hasStagedLineItemDiscount = False
        self.stagedChanges: list[Any] = []
        self.customAttributes: list[Any] = []
        self.discountAllocations: list[Any] = []
        self.calculatedDiscountAllocations: list[Any] = []


class CalculatedOrderView:
    def __init__(self, shop: Shop, edit: OrderEdit) -> None:
        self.shop = shop
        self.e = edit
        self.o = shop.orders[edit.order_id]
        currency = self.o.currency
        self.id = gid("CalculatedOrder", edit.id)
        self.committed = edit.committed
        lines = [*edit.lines, *edit.added]
        subtotal = sum((x.unit_price * x.quantity for x in lines), Decimal(0))
        total = cents(subtotal + self.o.shipping_price)
        self.subtotalPriceSet = bag(subtotal, currency)
        self.totalPriceSet = bag(total, currency)
        self.totalOutstandingSet = bag(
            max(total - self.o.received + self.o.refunded, ZERO), currency
        )
        self.subtotalLineItemsQuantity = sum(x.quantity for x in lines)
        self.notificationPreviewTitle = f"Order {self.o.name} updated"
        self.cartDiscountAmountSet = None
        self.shippingLines: list[Any] = []
        self.taxLines: list[Any] = []

    def originalOrder(self, _info: GraphQLResolveInfo) -> OrderView:
        return OrderView(self.shop, self.o)

    def _lines(self, lines: list[EditLine], page: dict[str, Any]) -> dict[str, Any]:
        page.pop("query", None)
        currency = self.o.currency
        return connection(
            lines, lambda x: CalculatedLineView(self.e, x, currency), lambda x: x.id, **page
        )

    def lineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return self._lines([*self.e.lines, *self.e.added], page)

    def addedLineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return self._lines(self.e.added, page)

    def stagedChanges(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection([], lambda x: x, lambda x: 0, **page)

    def addedDiscountApplications(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection([], lambda x: x, lambda x: 0, **page)


class ReturnView:
    def __init__(self, shop: Shop, created: Return) -> None:
        self.shop = shop
        self.r = created
        self.o = shop.orders[created.order_id]
        self.id = gid("Return", created.id)
        self.name = created.name
        self.status = created.status
        self.createdAt = iso(created.created_at)
        self.closedAt = None
        self.totalQuantity = sum(x.quantity for x in created.lines)
        self.returnShippingFees: list[Any] = []

    def order(self, _info: GraphQLResolveInfo) -> OrderView:
        return OrderView(self.shop, self.o)

    def returnLineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        page.pop("processingStatus", None)

        def wrap(line: Any) -> dict[str, Any]:
            found = self.o.fulfillment_line(line.fulfillment_line_id)
            assert found is not None
            item = self.o.line(line.line_item_id)
            assert item is not None
            return {
                "__typename": "ReturnLineItem",
                "id": gid("ReturnLineItem", line.id),
                "quantity": line.quantity,
                "processableQuantity": line.quantity,
                "processedQuantity": 0,
                "unprocessedQuantity": line.quantity,
                "refundableQuantity": line.quantity,
                "refundedQuantity": 0,
                "returnReason": line.reason,
                "returnReasonNote": line.note,
                "customerNote": None,
                "fulfillmentLineItem": {
                    "id": gid("FulfillmentLineItem", found[1].id),
                    "quantity": found[1].quantity,
                    "lineItem": LineItemView(self.o, item),
                },
            }

        return connection(self.r.lines, wrap, lambda x: x.id, **page)

    def exchangeLineItems(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        for key in ("processingStatus", "includeRemovedItems"):
            page.pop(key, None)

        def wrap(line: Any) -> dict[str, Any]:
            variant: Variant = line.variant
            return {
                "id": gid("ExchangeLineItem", line.id),
                "quantity": line.quantity,
                "processableQuantity": line.quantity,
                "processedQuantity": 0,
                "unprocessedQuantity": line.quantity,
                "title": variant.product_title,
                "variantId": gid("ProductVariant", variant.id),
                "variantTitle": variant.title,
                "variantSku": variant.sku,
                "productId": gid("Product", variant.product_id),
                "lineItem": None,
                "lineItems": None,
            }

        return connection(self.r.exchanges, wrap, lambda x: x.id, **page)

    def refunds(self, _info: GraphQLResolveInfo, **page: Any) -> dict[str, Any]:
        return connection([], lambda x: x, lambda x: 0, **page)


class WebhookSubscriptionView:
    def __init__(self, subscription: WebhookSubscription) -> None:
        self.id = gid("WebhookSubscription", subscription.id)
        self.legacyResourceId = str(subscription.id)
        self.topic = subscription.topic
        self.uri = self.callbackUrl = subscription.uri
        self.format = subscription.format
        self.createdAt = self.updatedAt = iso(subscription.created_at)
        self.apiVersion = {"handle": API_VERSION, "displayName": API_VERSION, "supported": True}
        self.endpoint = {"__typename": "WebhookHttpEndpoint", "callbackUrl": subscription.uri}
        self.includeFields: list[str] = []
        self.metafieldNamespaces: list[str] = []
        self.metafields: list[Any] = []
        self.filter = self.name = None


class JobView:
    def __init__(self, root: Root, job_id: str, done: bool) -> None:
        self.id = f"gid://shopify/Job/{job_id}"
        self.done = done
        self.query = root


# --- the roots ----------------------------------------------------------------------------


class Root:
    """QueryRoot and Mutation in one value: graphql-core hands the same root to both."""

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.store = context.shop  # not `shop`: that is a QueryRoot field

    # queries

    def order(self, _info: GraphQLResolveInfo, id: str) -> OrderView | None:
        self.ctx.require("read_orders", "order")
        order = self.store.orders.get(_id(id, "Order"))
        return None if order is None else OrderView(self.store, order)

    def orders(
        self,
        info: GraphQLResolveInfo,
        query: str | None = None,
        sortKey: str | None = None,
        reverse: bool | None = False,
        **page: Any,
    ) -> dict[str, Any]:
        self.ctx.require("read_orders", "orders")
        page.pop("savedSearchId", None)
        parsed = parse(query)
        if parsed.warnings:
            self.ctx.search_warnings.append(
                {
                    "path": [n for n in info.path.as_list()],
                    "query": query,
                    "warnings": parsed.warnings,
                }
            )
        found = [o for o in self.store.orders.values() if parsed.holds(o)]
        sort: dict[str, Callable[[Order], Any]] = {
            "CREATED_AT": lambda o: (o.created_at, o.id),
            "UPDATED_AT": lambda o: (o.updated_at or o.created_at, o.id),
            "ORDER_NUMBER": lambda o: o.number,
            "TOTAL_PRICE": lambda o: (o.total_price, o.id),
            "CUSTOMER_NAME": lambda o: (o.customer.last_name if o.customer else "", o.id),
        }
        found.sort(key=sort.get(sortKey or "ID", lambda o: o.id))
        return connection(
            found, lambda o: OrderView(self.store, o), lambda o: o.id, reverse=reverse, **page
        )

    def job(self, _info: GraphQLResolveInfo, id: str) -> JobView | None:
        job_id = id.rsplit("/", 1)[-1]
        job = self.store.jobs.get(job_id)
        return None if job is None else JobView(self, job.id, job.done)

    def shop(self, _info: GraphQLResolveInfo) -> dict[str, Any]:
        shop = self.store
        return {
            "id": gid("Shop", shop.id),
            "name": shop.name,
            "email": shop.email,
            "contactEmail": shop.email,
            "myshopifyDomain": shop.domain,
            "currencyCode": shop.currency,
            "ianaTimezone": "UTC",
            "url": f"https://{shop.domain}",
        }

    def webhookSubscriptions(
        self, _info: GraphQLResolveInfo, topics: list[str] | None = None, **page: Any
    ) -> dict[str, Any]:
        for key in ("callbackUrl", "format", "query", "sortKey", "uri"):
            page.pop(key, None)
        found = [s for s in self.store.subscriptions.values() if not topics or s.topic in topics]
        return connection(found, WebhookSubscriptionView, lambda s: s.id, **page)

    # mutations

    def _idempotent(
        self, info: GraphQLResolveInfo, arguments: dict[str, Any], run: Callable[[str | None], Any]
    ) -> Any:
        """Run a mutation once per `@idempotent(key:)`; a repeat gets the first result back."""
        directive = admin_schema().get_directive("idempotent")
        assert directive is not None
        values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
        key = None if values is None else values["key"]
        if key is None:
            return run(None)
        seen = self.store.idempotency.get(key)
        name = info.field_name
        print_ = fingerprint(arguments)
        if seen is not None:
            if seen.mutation != name or seen.fingerprint != print_:
                raise GraphQLError(
                    "The same idempotency key cannot be used with different operation parameters.",
                    extensions={"code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"},
                )
            return seen.result
        result = run(key)
        self.store.idempotency[key] = Idempotent(name, print_, result)
        return result

    def refundCreate(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        self.ctx.require("write_orders", "refundCreate")
        if not any(d.name.value == "idempotent" for d in info.field_nodes[0].directives or ()):
            # Mandatory for refundCreate since 2026-04.
            raise GraphQLError(
                "The @idempotent directive is required for this mutation.",
                extensions={"code": "BAD_REQUEST"},
            )

        def run(key: str | None) -> dict[str, Any]:
            try:
                refund = self.store.refund(
                    _id(input["orderId"], "Order"),
                    lines=input.get("refundLineItems") or [],
                    transactions=input.get("transactions") or [],
                    shipping=input.get("shipping"),
                    note=input.get("note"),
                    idempotency_key=key,
                )
            except Refusal as refusal:
                if refusal.code == "NOT_FOUND":
                    refusal.field = ["orderId"]
                return {"refund": None, "order": None, "userErrors": _user_errors(refusal)}
            return {
                "refund": RefundView(self.store, refund),
                "order": OrderView(self.store, self.store.orders[refund.order_id]),
                "userErrors": [],
            }

        return self._idempotent(info, {"input": input}, run)

    def orderCancel(
        self,
        info: GraphQLResolveInfo,
        orderId: str,
        reason: str,
        restock: bool,
        notifyCustomer: bool | None = None,
        staffNote: str | None = None,
        refund: bool | None = None,
        refundMethod: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.ctx.require("write_orders", "orderCancel")
        arguments = {k: v for k, v in locals().items() if k not in ("self", "info")}

        def run(_key: str | None) -> dict[str, Any]:
            to_original = bool(refund) or bool(
                (refundMethod or {}).get("originalPaymentMethodsRefund")
            )
            try:
                job = self.store.cancel(
                    _id(orderId, "Order"),
                    reason=reason,
                    restock=restock,
                    refund=to_original,
                    notify=bool(notifyCustomer),
                    staff_note=staffNote,
                )
            except Refusal as refusal:
                refusal.field = ["orderId"]
                errors = _user_errors(refusal, with_code=True)
                plain = [{"field": e["field"], "message": e["message"]} for e in errors]
                return {
                    "job": None,
                    "jobResult": None,
                    "orderCancelUserErrors": errors,
                    "userErrors": plain,
                }
            return {
                "job": JobView(self, job.id, job.done),
                "jobResult": None,
                "orderCancelUserErrors": [],
                "userErrors": [],
            }

        return self._idempotent(info, arguments, run)

    def orderUpdate(self, info: GraphQLResolveInfo, input: dict[str, Any]) -> dict[str, Any]:
        self.ctx.require("write_orders", "orderUpdate")
        try:
            order = self.store.update_order(_id(input["id"], "Order"), input)
        except Refusal as refusal:
            if refusal.code == "NOT_FOUND":
                refusal.field = ["id"]
            return {"order": None, "userErrors": _user_errors(refusal)}
        return {"order": OrderView(self.store, order), "userErrors": []}

    def _edit_payload(self, edit: OrderEdit, line: EditLine | None = None) -> dict[str, Any]:
        return {
            "calculatedOrder": CalculatedOrderView(self.store, edit),
            "calculatedLineItem": None
            if line is None
            else CalculatedLineView(edit, line, self.store.orders[edit.order_id].currency),
            "orderEditSession": {"id": gid("OrderEditSession", edit.id)},
            "userErrors": [],
        }

    def _edit_refused(self, refusal: Refusal) -> dict[str, Any]:
        if refusal.code == "NOT_FOUND":
            refusal.field = ["id"]
        return {
            "calculatedOrder": None,
            "calculatedLineItem": None,
            "orderEditSession": None,
            "userErrors": _user_errors(refusal),
        }

    def orderEditBegin(self, _info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        self.ctx.require("write_order_edits", "orderEditBegin")
        try:
            return self._edit_payload(self.store.begin_edit(_id(id, "Order")))
        except Refusal as refusal:
            return self._edit_refused(refusal)

    def orderEditSetQuantity(
        self,
        _info: GraphQLResolveInfo,
        id: str,
        lineItemId: str,
        quantity: int,
        restock: bool | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        self.ctx.require("write_order_edits", "orderEditSetQuantity")
        try:
            edit, line = self.store.edit_set_quantity(
                _id(id, "CalculatedOrder", "OrderEditSession"),
                _id(lineItemId, "CalculatedLineItem", "LineItem"),
                quantity,
                bool(restock),
            )
        except Refusal as refusal:
            return self._edit_refused(refusal)
        return self._edit_payload(edit, line)

    def orderEditAddVariant(
        self,
        _info: GraphQLResolveInfo,
        id: str,
        variantId: str,
        quantity: int,
        **_: Any,
    ) -> dict[str, Any]:
        self.ctx.require("write_order_edits", "orderEditAddVariant")
        try:
            edit, line = self.store.edit_add_variant(
                _id(id, "CalculatedOrder", "OrderEditSession"),
                _id(variantId, "ProductVariant"),
                quantity,
            )
        except Refusal as refusal:
            return self._edit_refused(refusal)
        return self._edit_payload(edit, line)

    def orderEditCommit(
        self,
        _info: GraphQLResolveInfo,
        id: str,
        notifyCustomer: bool | None = None,
        staffNote: str | None = None,
    ) -> dict[str, Any]:
        self.ctx.require("write_order_edits", "orderEditCommit")
        try:
            order = self.store.commit_edit(
                _id(id, "CalculatedOrder", "OrderEditSession"),
                notify=bool(notifyCustomer),
                staff_note=staffNote,
            )
        except Refusal as refusal:
            return {"order": None, "successMessages": None, "userErrors": _user_errors(refusal)}
        return {
            "order": OrderView(self.store, order),
            "successMessages": ["Order updated"],
            "userErrors": [],
        }

    def returnCreate(self, info: GraphQLResolveInfo, returnInput: dict[str, Any]) -> dict[str, Any]:
        self.ctx.require("write_returns", "returnCreate")

        def run(_key: str | None) -> dict[str, Any]:
            try:
                created = self.store.create_return(
                    _id(returnInput["orderId"], "Order"),
                    returnInput.get("returnLineItems") or [],
                    returnInput.get("exchangeLineItems") or [],
                )
            except Refusal as refusal:
                if refusal.code == "NOT_FOUND" and refusal.field is None:
                    refusal.field = ["returnInput", "orderId"]
                elif refusal.field:
                    refusal.field = ["returnInput", *refusal.field]
                return {"return": None, "userErrors": _user_errors(refusal, with_code=True)}
            return {"return": ReturnView(self.store, created), "userErrors": []}

        return self._idempotent(info, {"returnInput": returnInput}, run)

    def webhookSubscriptionCreate(
        self, _info: GraphQLResolveInfo, topic: str, webhookSubscription: dict[str, Any]
    ) -> dict[str, Any]:
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri:
            refusal = Refusal("Address can't be blank", ["webhookSubscription", "uri"])
            return {"webhookSubscription": None, "userErrors": _user_errors(refusal)}
        try:
            created = self.store.subscribe(
                topic, str(uri), webhookSubscription.get("format") or "JSON"
            )
        except Refusal as refusal:
            return {"webhookSubscription": None, "userErrors": _user_errors(refusal)}
        return {"webhookSubscription": WebhookSubscriptionView(created), "userErrors": []}

    def webhookSubscriptionDelete(self, _info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        number = _id(id, "WebhookSubscription")
        if self.store.subscriptions.pop(number, None) is None:
            refusal = Refusal("Webhook subscription does not exist", ["id"])
            return {"deletedWebhookSubscriptionId": None, "userErrors": _user_errors(refusal)}
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}
