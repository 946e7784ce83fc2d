"""Replies the guardrails put in place of the model's. They promise only what the draft does."""

from __future__ import annotations

from decimal import Decimal


def _letter(store_name: str, body: str) -> str:
    return f"Hi,\n\n{body}\n\nBest regards,\n{store_name}"


def ask_for_order(store_name: str) -> str:
    # Names no order: the one in question may be someone else's.
    return _letter(
        store_name,
        "Thanks for getting in touch. So that we can help, could you reply with your order "
        "number (you will find it in your order confirmation), writing from the email address "
        "you used when you ordered?",
    )


def hold(store_name: str, order_name: str | None) -> str:
    about = f" about order {order_name}" if order_name else ""
    return _letter(
        store_name,
        f"Thanks for your message{about}. A member of our team is looking into it and will "
        "get back to you personally.",
    )


def ask_for_address(store_name: str, order_name: str | None) -> str:
    of = f" of order {order_name}" if order_name else ""
    return _letter(
        store_name,
        f"Happy to help with the delivery address{of}. Could you reply with "
        "the complete new address: street and number, city, postcode and country?",
    )


def refunded(store_name: str, order_name: str, amount: Decimal | None, currency: str) -> str:
    what = f"{amount} {currency}" if amount is not None else "the items you wrote about"
    return _letter(
        store_name,
        f"We're sorry for the trouble with order {order_name}. We have refunded {what} to "
        "your original payment method.",
    )


def cancelled(store_name: str, order_name: str) -> str:
    return _letter(
        store_name,
        f"As you asked, we have cancelled order {order_name}. The payment goes back to your "
        "original payment method.",
    )


def replacing(store_name: str, order_name: str) -> str:
    return _letter(
        store_name,
        f"We're sorry for the mix-up with order {order_name}. We will send you a replacement "
        "as soon as possible.",
    )


def address_changed(store_name: str, order_name: str) -> str:
    return _letter(
        store_name, f"We have updated the delivery address of order {order_name} as you asked."
    )
