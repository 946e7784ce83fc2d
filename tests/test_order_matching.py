"""Order numbers quoted in a customer's text, in any script."""

from __future__ import annotations

import pytest

from domain.order_names import order_names_in


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("My order #1001 arrived broken", ["#1001"]),
        ("order no. 1003 and order number 1004", ["#1003", "#1004"]),
        ("#1001, #1002 and #1001 again", ["#1001", "#1002"]),
        # Japanese runs on without spaces: the number is glued to kana or kanji.
        ("注文#1004をキャンセルしてください", ["#1004"]),
        ("ご注文#1021が届きました。", ["#1021"]),
        # Full-width number sign and digits, as Japanese input methods type them.
        ("ご注文\uff03\uff11\uff10\uff10\uff14について", ["#1004"]),
        # Without "#": the word for an order, in each language we answer in, then its number.
        ("my order is 1007, it never came", ["#1007"]),
        ("Order: 1025", ["#1025"]),
        ("bestelling 1008 is kapot aangekomen", ["#1008"]),
        ("Bestellnummer 1009", ["#1009"]),
        ("pedido nº 1010", ["#1010"]),
        ("número do pedido 1011", ["#1011"]),
        ("a encomenda 1012 não chegou", ["#1012"]),
        ("commande n° 1013", ["#1013"]),
        ("ordine n. 1014", ["#1014"]),
        ("numer zamówienia 1015", ["#1015"]),
        ("zamowienie 1016", ["#1016"]),
        ("ご注文番号は1018です", ["#1018"]),
    ],
)
def test_order_names_are_found(text: str, names: list[str]) -> None:
    assert order_names_in(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "I bought 2000 mugs",
        "#1001x",
        "ref #12",
        "order abc1001",
        "I ordered 1022 stickers",
        "my order from 2025",
        "the order was 1200 dollars",  # an amount, not a name
        "un pedido de 1500 euros",
    ],
)
def test_what_is_not_an_order_number(text: str) -> None:
    assert order_names_in(text) == []
