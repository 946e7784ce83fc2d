"""Reading facts out of a customer's text: which of the order's items, which order of the
thread, and a new postal address when one is written out in full. Pure."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from domain.order_names import order_names_in
from integrations.offline import lexicon
from kernel.values import LineItem, OrderSnapshot, SuggestionRequest

# --- the order's items ----------------------------------------------------------------------

# Words of a product title that name no product ("Organic T-shirt, size M").
_GENERIC = frozenset(
    {"size", "colour", "color", "with", "and", "for", "the", "set", "pack", "edition", "new"}
)
_TITLE_WORD = re.compile(r"[^\W\d_]{3,}", re.U)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_ALL = re.compile(
    r"\b(?:both|all|every|beide\w*|alle\w*|amb[oa]s|tod[oa]s|les deux|tou(?:s|tes))\b|両方|全部|すべて",
    re.I,
)


def _title_words(title: str) -> list[str]:
    # The part before the first comma names the product; the rest is its variant.
    head = title.split(",", 1)[0]
    return [w.lower() for w in _TITLE_WORD.findall(head) if w.lower() not in _GENERIC]


def _plain(text: str) -> str:
    """Lower case without accents or umlauts: "Blöcke" is read as "blocke"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _mentions(word: str, text: str) -> bool:
    if _CJK.search(word):
        return word in text
    # English and German plurals: mugs, boxes, Blöcke, Tassen, Kissen.
    return re.search(rf"\b{re.escape(_plain(word))}(?:s|es|e|en|n|er)?\b", _plain(text)) is not None


def mentioned_items(order: OrderSnapshot, text: str) -> list[LineItem]:
    """The order's line items the text names: by their title's product noun (its last word
    before any comma) or by two words of the title; best matches first."""
    scored = []
    for item in order.line_items:
        words = _title_words(item.title)
        if not words:
            continue
        hits = sum(_mentions(word, text) for word in words)
        # German writes the title's words as one ("Yoga mat" -> "Yogamatte").
        compound = any(
            re.search(rf"\b{re.escape(_plain(a + b))}", _plain(text))
            for a, b in itertools.pairwise(words)
        )
        hits += 2 * compound
        if _mentions(words[-1], text) or hits >= 2 or item.title.lower() in text.lower():
            scored.append((hits, item))
    scored.sort(key=lambda pair: -pair[0])
    return [item for _, item in scored]


def quantity_for(item: LineItem, text: str) -> int:
    """One unless the text says all or both: most complaints are about one piece."""
    return item.quantity if item.quantity <= 1 or _ALL.search(text) else 1


# --- the order of the thread ----------------------------------------------------------------


def thread_order(request: SuggestionRequest, text: str) -> tuple[OrderSnapshot | None, str]:
    """The order the message is about, and how we know: the matched one, else one of the
    sender's candidates named earlier in the thread or by the items the text mentions."""
    if request.order is not None:
        return request.order, "matched order"
    candidates = request.candidate_orders
    by_name = {order.name: order for order in candidates}
    earlier = [request.quoted, *(turn.text for turn in request.history)]
    for part in earlier:
        for name in order_names_in(part or ""):
            if name in by_name:
                return by_name[name], "order named earlier in the thread"
    by_items = [order for order in candidates if mentioned_items(order, text)]
    if len(by_items) == 1:
        return by_items[0], "the only one of the sender's orders with the items mentioned"
    return None, ""


# --- a new address --------------------------------------------------------------------------

_COUNTRIES: dict[str, str] = {
    "spain": "ES", "españa": "ES", "espana": "ES", "espagne": "ES", "spanien": "ES",
    "germany": "DE", "deutschland": "DE", "alemania": "DE", "allemagne": "DE",
    "france": "FR", "francia": "FR", "frankreich": "FR",
    "japan": "JP", "japón": "JP", "japon": "JP", "日本": "JP",
    "united states": "US", "usa": "US", "u.s.a.": "US", "us": "US", "estados unidos": "US",
    "états-unis": "US", "etats-unis": "US",
    "united kingdom": "GB", "uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "great britain": "GB", "reino unido": "GB", "royaume-uni": "GB", "großbritannien": "GB",
    "canada": "CA", "canadá": "CA", "kanada": "CA",
    "mexico": "MX", "méxico": "MX", "mexique": "MX", "mexiko": "MX",
    "austria": "AT", "österreich": "AT", "autriche": "AT",
    "belgium": "BE", "belgique": "BE", "belgië": "BE", "bélgica": "BE", "belgien": "BE",
    "switzerland": "CH", "schweiz": "CH", "suisse": "CH", "suiza": "CH",
    "italy": "IT", "italia": "IT", "italie": "IT", "italien": "IT",
    "netherlands": "NL", "nederland": "NL", "niederlande": "NL", "pays-bas": "NL",
    "portugal": "PT", "ireland": "IE", "irlanda": "IE", "irlande": "IE", "irland": "IE",
}  # fmt: skip
_LABEL = re.compile(r"^[^:\uff1a\d]{0,40}[:\uff1a]\s*")  # a label, ASCII or full-width colon
# Postcodes of four or five digits, and Portugal's 1200-093, Poland's 31-019 and the
# Netherlands' 1016 GV.
_EU_ZIP = r"(?:\d{4}-\d{3}|\d{2}-\d{3}|\d{4} ?[A-Z]{2}\b|\d{4,5})"
_EU_ZIP_CITY = re.compile(rf"^(?:[A-Z]{{1,2}}-)?({_EU_ZIP})\s+([^\W\d_][^\d]{{1,40}})$", re.U)
_CITY_EU_ZIP = re.compile(r"^([^\W\d_][^\d]{1,40}?)\s+(\d{4,5})$", re.U)
_STATE_ZIP = re.compile(r"^([A-Z]{2})\s+(\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)$")
_CITY_STATE_ZIP = re.compile(
    r"^([^\W\d_][^\d]{1,40}?),?\s+([A-Z]{2})\s+(\d{5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)$", re.U
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
_CITY_UK = re.compile(rf"^([^\W\d_][^\d]{{1,40}}?)\s+({_UK_POSTCODE})$", re.U)
_UK_ONLY = re.compile(rf"^({_UK_POSTCODE})$")
_JP = re.compile(
    r"〒?\s*(\d{3})-?(\d{4})\s*(東京都|北海道|(?:京都|大阪)府|\S{2,3}県)(\S+?[市区町村郡])(\S+)"
)
_STREET = re.compile(r"(?=.*\d)(?=.*[^\W\d_]{2})", re.U)


# "CA 94043 instead please": the sentence goes on after the postal code.
_TRAILING_PROSE = re.compile(
    rf"^(.*\b(?:\d{{5}}(?:-\d{{4}})?|[A-Z]\d[A-Z] ?\d[A-Z]\d|{_UK_POSTCODE}))(?:\s+[a-z][a-z' ]*)$"
)


# No part of an address is longer; skipping longer text keeps the patterns below linear.
_SEGMENT_MAX = 200


def _segments(text: str) -> list[str]:
    parts = []
    for line in text.splitlines():
        line = _LABEL.sub("", line.strip().lstrip(">").strip())
        parts += [
            _TRAILING_PROSE.sub(r"\1", p.strip(" .?!"))
            for p in re.split(r"[,;]", line)
            if p.strip(" .?!") and len(p) <= _SEGMENT_MAX
        ]
    return parts


def _country(segment: str) -> str | None:
    return _COUNTRIES.get(segment.strip(" .?!").lower())


_UNIT = re.compile(
    r"^(?:apt|apartment|suite|unit|flat|floor|piso|planta|puerta|wohnung|etage|stock|app|"
    r"appartement|b[âa]timent|bât|[ée]tage)\b\.?",
    re.I,
)
_NUMBER_FIRST = re.compile(r"(\d+[A-Za-z]?\s+(?:[^\W\d_][\w'.-]*\s*){1,4})$", re.U)
_NUMBER_LAST = re.compile(r"((?:[^\W\d_][\w'.-]*\s+){1,3}\d+[A-Za-z]?)$", re.U)


def _street_before(segments: Sequence[str], index: int) -> tuple[str, str | None] | None:
    """The street line (and a flat or suite line after it) ending just before `index`."""
    for back in (1, 2):
        if index - back < 0:
            return None
        candidate = segments[index - back]
        if not _STREET.match(candidate) or "#" in candidate or len(candidate) > 120:
            continue
        if _UNIT.match(candidate) and index - back - 1 >= 0:
            street = _street_line(segments[index - back - 1])
            if street is not None:
                return street, candidate
        street = _street_line(candidate)
        if street is not None:
            return street, None
    return None


# Words of the request itself that can lead a street segment ("refund Neue Straße 12"):
# written in lower case, unlike a street name that starts with the same word ("Neue").
_REQUEST_SIGNALS = ("refund", "return", "exchange", "cancel", "change", "address")


def _without_request_words(segment: str) -> str:
    words = segment.split()
    while (
        len(words) > 2
        and words[0].islower()
        and any(lexicon.present(s, words[0]) for s in _REQUEST_SIGNALS)
    ):
        words = words[1:]
    return " ".join(words)


def _street_line(segment: str) -> str | None:
    """The street and number, without the sentence around it ("...my order to 88 Pine St")."""
    if not _STREET.match(segment):
        return None
    segment = _without_request_words(segment)
    if len(segment.split()) <= 5:
        return segment
    match = _NUMBER_FIRST.search(segment) or _NUMBER_LAST.search(segment)
    return match[1].strip() if match else None


def new_address(text: str, current: dict[str, Any] | None) -> tuple[dict[str, str], str] | None:
    """A complete address written in the text (street with number, postal code, city, and
    the country or a postal format that tells it), in Shopify's field names, with the
    names and phone of the current address kept; and a note on where the country came
    from. None when the text holds no such address."""
    found = _jp_address(text) or _western_address(_segments(text))
    if found is None:
        return None
    fields, country_note = found
    if "countryCode" not in fields:
        country = (current or {}).get("countryCodeV2") or (current or {}).get("countryCode")
        if not country:
            return None
        fields["countryCode"] = country
        country_note = "country kept from the current address"
    kept = {
        key: str(value)
        for key, value in (current or {}).items()
        if key in ("firstName", "lastName", "company", "phone") and value
    }
    return {**kept, **fields}, country_note


def _jp_address(text: str) -> tuple[dict[str, str], str] | None:
    match = _JP.search(text)
    if match is None:
        return None
    zip_a, zip_b, prefecture, city, rest = match.groups()
    fields = {
        "zip": f"{zip_a}-{zip_b}",
        "city": f"{prefecture}{city}",
        "address1": rest.rstrip("。."),
        "countryCode": "JP",
    }
    return fields, "a Japanese postal code"


def _western_address(segments: Sequence[str]) -> tuple[dict[str, str], str] | None:
    for index, segment in enumerate(segments):
        fields: dict[str, str] = {}
        note = ""
        street_index = index
        if match := _EU_ZIP_CITY.match(segment):
            fields = {"zip": match[1], "city": match[2].strip()}
        elif match := _CITY_STATE_ZIP.match(segment):
            fields = {"city": match[1].strip(), "provinceCode": match[2], "zip": match[3]}
            fields["countryCode"] = "CA" if match[3][0].isalpha() else "US"
            note = "a US or Canadian postal code"
        elif (match := _STATE_ZIP.match(segment)) and index > 0:
            fields = {"city": segments[index - 1], "provinceCode": match[1], "zip": match[2]}
            fields["countryCode"] = "CA" if match[2][0].isalpha() else "US"
            note = "a US or Canadian postal code"
            street_index = index - 1
        elif match := _CITY_UK.match(segment):
            fields = {"city": match[1].strip(), "zip": match[2], "countryCode": "GB"}
            note = "a UK postcode"
        elif (match := _UK_ONLY.match(segment)) and index > 0:
            fields = {"city": segments[index - 1], "zip": match[1], "countryCode": "GB"}
            note = "a UK postcode"
            street_index = index - 1
        elif (match := _CITY_EU_ZIP.match(segment)) and _country(match[1]) is None:
            fields = {"city": match[1].strip(), "zip": match[2]}
        else:
            continue
        street = _street_before(segments, street_index)
        if street is None or _country(fields["city"]) is not None:
            continue
        fields["address1"] = street[0]
        if street[1]:
            fields["address2"] = street[1]
        for following in segments[index + 1 : index + 3]:
            if country := _country(following):
                fields["countryCode"], note = country, "the country named"
                break
        return fields, note
    return None
