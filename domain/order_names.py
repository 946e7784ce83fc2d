"""Order names a customer quotes in their text."""

from __future__ import annotations

import re
import unicodedata

# "#1001", "order 1001", "order no. 1001"; four digits or more, to avoid matching quantities.
# The number ends where no Latin letter or digit follows: Japanese text runs on without a
# space ("注文#1004を"), and `\b` sees no boundary between a digit and a kana. Japanese
# input methods also type the number sign and the digits full-width (U+FF03, U+FF10...).
_ORDER_NAME = re.compile(
    r"(?:[#\uff03]|\border\s{0,3}(?:no\.?|number|nr\.?)?\s{0,3}[#\uff03]?)\s{0,3}(\d{4,10})"
    r"(?![0-9A-Za-z_])",
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
