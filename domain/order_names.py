"""Order names a customer quotes in their text."""

from __future__ import annotations

import re
import unicodedata

# The word for an order in the languages we answer in, and the compounds that name its
# number ("Bestellnummer", "numer zamówienia" ends in "zamówienia", "注文番号").
_ORDER_WORD = (
    r"\b(?:orders?|ordernummer|order-?nr|pedido|encomenda|commande|bestellung|bestellnummer"
    r"|bestelling|bestelnummer|ordine|zam[óo]wieni[ea]\w{0,2})"
    r"|ご?注文番号|ご?注文"
)
# What may stand between that word and the number: "no.", "number", "n°", "is", ":"...
_FILLER = (
    r"(?:\s{0,3}(?:[:\uff1a.#\uff03]|n[°º]\.?|\bn\.|\b(?:no|nr|number|nummer|num[eé]ro|n[uú]mero"
    r"|numer|is|was|ist|est|[ée]|[èe]|es|jest)\b\.?|は)){0,3}"
)
# "#1001", "order 1001", "pedido nº 1001", "bestelling 1008"; four digits or more, to avoid
# matching quantities. The number ends where no Latin letter or digit follows: Japanese
# text runs on without a space ("注文#1004を"), and `\b` sees no boundary between a digit
# and a kana. Japanese input methods also type the number sign and the digits full-width.
_ORDER_NAME = re.compile(
    rf"(?:[#\uff03]|(?:{_ORDER_WORD}){_FILLER}\s{{0,3}}[#\uff03]?)\s{{0,3}}(\d{{4,10}})"
    r"(?![0-9A-Za-z_])"
    # "the order was 1200 dollars" is an amount, not a name.
    r"(?!\s{0,2}(?:[$€£¥₹]|(?:usd|eur|gbp|jpy|pln|dollars?|euros?|pounds?|yen|z[łl]))(?!\w))",
    re.I,
)


def order_names_in(text: str) -> list[str]:
    """Order names quoted in the text, as Shopify writes them ("#1001"), first seen first."""
    seen: list[str] = []
    for number in _ORDER_NAME.findall(text):
        name = f"#{unicodedata.normalize('NFKC', number)}"
        if name not in seen:
            seen.append(name)
    return seen
