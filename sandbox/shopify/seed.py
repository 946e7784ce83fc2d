"""A deterministic demo catalogue and order book: the same seed always gives the same store."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.shopify.state import (
    Customer,
    Fulfillment,
    FulfillmentLine,
    LineItem,
    Order,
    Refund,
    RefundLine,
    Shop,
    Transaction,
    Variant,
    cents,
)

_PRODUCTS: list[tuple[str, str, Decimal, list[str]]] = [
    ("Linen Shirt", "LS", Decimal("49.00"), ["S / White", "M / White", "L / Sand", "M / Sand"]),
    ("Canvas Tote", "CT", Decimal("24.50"), ["Default Title"]),
    ("Wool Beanie", "WB", Decimal("19.90"), ["Charcoal", "Rust"]),
    ("Ceramic Mug", "CM", Decimal("14.00"), ["Default Title"]),
    ("Leather Wallet", "LW", Decimal("59.00"), ["Brown", "Black"]),
    ("Running Socks (3 pack)", "RS", Decimal("12.99"), ["S", "M", "L"]),
    ("Merino Sweater", "MS", Decimal("89.00"), ["S / Navy", "M / Navy", "L / Navy", "M / Oat"]),
    ("Trail Cap", "TC", Decimal("27.00"), ["Default Title"]),
]
_FIRST = [
    "Ava",
    "Liam",
    "Maya",
    "Noah",
    "Zoe",
    "Ethan",
    "Isla",
    "Leo",
    "Mia",
    "Omar",
    "Priya",
    "Jonas",
]
_LAST = ["Patel", "Garcia", "Smith", "Okafor", "Rossi", "Kim", "Novak", "Silva", "Meyer", "Tanaka"]
_PLACES = [
    ("Springfield", "IL", "62701"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "73301"),
    ("Denver", "CO", "80202"),
    ("Boston", "MA", "02108"),
    ("Madison", "WI", "53703"),
]
_STREETS = ["Market Street", "Oak Avenue", "Pine Road", "Elm Street", "Lake Drive", "Hill Lane"]
GATEWAY = "shopify_payments"
FIRST_ORDER_NUMBER = 1001
# Mixed states, cycled through the order book; see _apply_state.
STATES = (
    "paid",
    "paid",
    "fulfilled",
    "partially_refunded",
    "paid",
    "fulfilled",
    "cancelled",
    "partially_fulfilled",
    "refunded",
    "paid",
)


def catalogue(shop: Shop) -> list[Variant]:
    variants: list[Variant] = []
    for p_index, (title, code, price, options) in enumerate(_PRODUCTS):
        product_id = shop.id * 100 + p_index + 1
        for v_index, option in enumerate(options):
            suffix = "" if option == "Default Title" else "-" + option.replace(" / ", "-").upper()
            variants.append(
                Variant(
                    product_id * 100 + v_index + 1,
                    product_id,
                    title,
                    option,
                    f"{code}-{p_index + 1:02d}{suffix}",
                    price,
                )
            )
    for variant in variants:
        shop.variants[variant.id] = variant
    return variants


def seed_shop(
    shop: Shop,
    *,
    count: int = 60,
    seed: int = 7,
    start: datetime | None = None,
    first_number: int = FIRST_ORDER_NUMBER,
    first_customer_id: int | None = None,
) -> list[Order]:
    """Add `count` orders to `shop` without webhooks: paid, fulfilled, refunded, cancelled.
    A second call needs its own `first_number` and `first_customer_id`, past the first's."""
    rng = random.Random(seed)
    variants = catalogue(shop)
    start = start or (shop.state.clock() - timedelta(days=45))
    customers = [
        Customer(
            (shop.id * 10 if first_customer_id is None else first_customer_id) + index,
            first,
            last,
            f"{first}.{last}@example.com".lower(),
            f"+1555{rng.randint(1000000, 9999999)}",
        )
        for index, (first, last) in enumerate(
            (rng.choice(_FIRST), rng.choice(_LAST)) for _ in range(24)
        )
    ]
    created: list[Order] = []
    for index in range(count):
        customer = customers[index % len(customers)] if index % 11 else rng.choice(customers)
        city, province, zip_code = rng.choice(_PLACES)
        at = start + timedelta(hours=17 * index, minutes=rng.randint(0, 59))
        lines = []
        for variant in rng.sample(variants, rng.randint(1, 3)):
            lines.append(
                LineItem(
                    shop.next_id(), variant, variant.product_title, variant.sku,
                    rng.randint(1, 3), variant.price,
                )
            )  # fmt: skip
        order = Order(
            id=shop.next_id(),
            number=first_number + index,
            email=customer.email,
            customer=customer,
            created_at=at,
            updated_at=at,
            currency=shop.currency,
            shipping_address={
                "firstName": customer.first_name,
                "lastName": customer.last_name,
                "company": None,
                "address1": f"{rng.randint(1, 400)} {rng.choice(_STREETS)}",
                "address2": rng.choice([None, None, f"Apt {rng.randint(1, 30)}"]),
                "city": city,
                "province": None,
                "provinceCode": province,
                "zip": zip_code,
                "country": "United States",
                "countryCodeV2": "US",
                "phone": customer.phone,
            },
            line_items=lines,
            shipping_price=Decimal("0.00") if index % 4 == 0 else Decimal("6.90"),
        )
        order.transactions.append(
            Transaction(shop.next_id(), "SALE", GATEWAY, order.total_price, at)
        )
        _apply_state(shop, order, STATES[index % len(STATES)], at, rng)
        shop.add_order(order, announce=False)
        created.append(order)
    return created


def _fulfil(
    shop: Shop, order: Order, at: datetime, rng: random.Random, *, partial: bool = False
) -> None:
    chosen = order.line_items[:1] if partial else order.line_items
    fulfillment_lines = []
    for item in chosen:
        item.fulfilled = item.refundable_quantity
        fulfillment_lines.append(FulfillmentLine(shop.next_id(), item.id, item.fulfilled))
    order.fulfillments.append(
        Fulfillment(
            shop.next_id(),
            at + timedelta(days=1),
            fulfillment_lines,
            tracking_number=f"1Z{rng.randint(10**9, 10**10 - 1)}",
        )
    )


def _refund(
    shop: Shop, order: Order, at: datetime, lines: list[tuple[LineItem, int]], shipping: Decimal
) -> None:
    sale = order.sale()
    assert sale is not None
    amount = cents(sum((i.unit_price * q for i, q in lines), Decimal(0)) + shipping)
    money = Transaction(shop.next_id(), "REFUND", sale.gateway, amount, at, parent_id=sale.id)
    order.transactions.append(money)
    for item, quantity in lines:
        item.refunded += quantity
    order.shipping_refunded += shipping
    order.refunds.append(
        Refund(
            shop.next_id(),
            order.id,
            at,
            "Seeded refund",
            [RefundLine(i.id, q, "NO_RESTOCK", cents(i.unit_price * q)) for i, q in lines],
            shipping,
            [money],
        )
    )


def _apply_state(shop: Shop, order: Order, state: str, at: datetime, rng: random.Random) -> None:
    later = at + timedelta(days=2)
    if state == "fulfilled":
        _fulfil(shop, order, at, rng)
    elif state == "partially_fulfilled":
        if len(order.line_items) == 1:
            order.line_items[0].quantity += 1  # so that one unit ships and one waits
            order.transactions[0].amount = order.total_price
        _fulfil(shop, order, at, rng, partial=True)
        if len(order.line_items) == 1:
            order.line_items[0].fulfilled -= 1
            order.fulfillments[0].lines[0].quantity -= 1
    elif state == "partially_refunded":
        _fulfil(shop, order, at, rng)
        _refund(shop, order, later, [(order.line_items[0], 1)], Decimal("0.00"))
    elif state == "refunded":
        _refund(
            shop,
            order,
            later,
            [(i, i.refundable_quantity) for i in order.line_items],
            order.shipping_price,
        )
    elif state == "cancelled":
        # Cancelled with the payment returned in full, as orderCancel with a refund leaves it.
        sale = order.sale()
        assert sale is not None
        money = Transaction(
            shop.next_id(), "REFUND", sale.gateway, order.refundable, later, parent_id=sale.id
        )
        order.transactions.append(money)
        order.refunds.append(
            Refund(shop.next_id(), order.id, later, None, [], Decimal("0.00"), [money])
        )
        order.cancelled_at = later
        order.cancel_reason = rng.choice(["CUSTOMER", "INVENTORY", "OTHER"])
        order.updated_at = later


def create_order(
    shop: Shop,
    *,
    email: str = "new.customer@example.com",
    first_name: str = "Robin",
    last_name: str = "Hale",
    items: list[tuple[int, int]] | None = None,
    shipping: Decimal = Decimal("6.90"),
) -> Order:
    """A new paid, unfulfilled order, announced with `orders/create` as a checkout would be.

    `items` are (variant id, quantity); by default one unit of the first catalogue variant.
    """
    if not shop.variants:
        catalogue(shop)
    chosen = items or [(next(iter(shop.variants)), 1)]
    lines = []
    for variant_id, quantity in chosen:
        variant = shop.variants[variant_id]
        lines.append(
            LineItem(
                shop.next_id(), variant, variant.product_title, variant.sku, quantity, variant.price
            )
        )
    existing = [o.number for o in shop.orders.values()]
    known = next(
        (o.customer for o in shop.orders.values() if o.email == email and o.customer), None
    )
    customer = known or Customer(shop.next_id(), first_name, last_name, email)
    at = shop.state.clock()
    order = Order(
        id=shop.next_id(),
        number=max(existing, default=FIRST_ORDER_NUMBER - 1) + 1,
        email=email,
        customer=customer,
        created_at=at,
        updated_at=at,
        currency=shop.currency,
        shipping_address={
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "company": None,
            "address1": "12 Harbour Road",
            "address2": None,
            "city": "Portland",
            "province": None,
            "provinceCode": "OR",
            "zip": "97205",
            "country": "United States",
            "countryCodeV2": "US",
            "phone": customer.phone,
        },
        line_items=lines,
        shipping_price=shipping,
    )
    order.transactions.append(Transaction(shop.next_id(), "SALE", GATEWAY, order.total_price, at))
    return shop.add_order(order)
