"""The offline suggester's reply templates: every template in every language the replies
are written in, with the English one's placeholders, rendered into a whole letter; and
a reply-only template promises in no language what only an action does."""

from __future__ import annotations

import string

import pytest

from integrations.offline import replies

KINDS = sorted(replies._TEMPLATES)
VALUES = {
    "order": "#2001",
    "amount": "84.50",
    "currency": "EUR",
    "items": "Canvas tote",
    "address": "Rua das Flores 12, 4050-262 Porto, PT",
}

# Words that say money or goods moved, or an address changed, per language. A reply-only
# template holds none of them; the acting template for that act holds one. (Not cancelling:
# the status templates rightly say that an order already was.)
PROMISES: dict[str, dict[str, tuple[str, ...]]] = {
    "refund": {
        "en": ("refunded",),
        "es": ("reembols",),
        "de": ("erstattet",),
        "fr": ("rembours",),
        "ja": ("返金いたしました",),
        "pt": ("reembols",),
        "it": ("rimborsat",),
        "nl": ("terugbetaald",),
        "pl": ("zwróciliśmy",),
    },
    "replace": {
        "en": ("replacement",),
        "es": ("uno nuevo",),
        "de": ("ersatz",),
        "fr": ("un nouveau",),
        "ja": ("代わりの商品",),
        "pt": ("substitui",),
        "it": ("sostituzione",),
        "nl": ("vervanging",),
        "pl": ("nowy egzemplarz",),
    },
    "address": {
        "en": ("we have updated",),
        "es": ("hemos actualizado",),
        "de": ("geändert",),
        "fr": ("mis à jour",),
        "ja": ("変更いたしました",),
        "pt": ("atualizado",),
        "it": ("aggiornato",),
        "nl": ("gewijzigd in",),
        "pl": ("zaktualizowaliśmy",),
    },
}
# The templates that go with an act that moves money or goods or changes the address;
# every other one only answers ("cancelled" too, by the note above).
PROMISED_BY = {
    "refunded": "refund",
    "refunded_items": "refund",
    "replacing": "replace",
    "address_changed": "address",
}


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_is_supported_everywhere() -> None:
    assert replies.LANGUAGES == ("en", "es", "de", "fr", "ja", "pt", "it", "nl", "pl")
    assert set(replies._LETTER) == set(replies._ABOUT) == set(replies.LANGUAGES)
    assert set(PROMISES["refund"]) == set(replies.LANGUAGES)


@pytest.mark.parametrize("kind", KINDS)
def test_every_template_exists_in_every_language_with_the_english_placeholders(kind: str) -> None:
    templates = replies._TEMPLATES[kind]
    assert set(templates) == set(replies.LANGUAGES), kind
    english = _placeholders(templates["en"])
    for language, template in templates.items():
        assert _placeholders(template) == english, (kind, language)
    for language, about in replies._ABOUT.items():
        assert _placeholders(about) == {"order"}, language


@pytest.mark.parametrize("language", replies.LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_the_letter_renders_in_every_language(kind: str, language: str) -> None:
    text = replies.letter(kind, language, "Kim's Shop", **VALUES)
    greeting, sign_off = replies._LETTER[language]
    assert text.startswith(f"{greeting}\n\n") and text.endswith(f"\n\n{sign_off}\nKim's Shop")
    assert "{" not in text and "}" not in text, text
    named = _placeholders(replies._TEMPLATES[kind]["en"]) | (
        {"order"} if kind == "thanks" else set()
    )
    for name in named - {"about"}:
        assert VALUES[name] in text, (kind, language, name)


def test_a_portuguese_letter_reads_as_one() -> None:
    text = replies.letter("refunded", "pt", "Loja da Kim", **VALUES)
    assert text == (
        "Olá,\n\nLamentamos o problema com o pedido #2001. O valor de 84.50 EUR foi "
        "reembolsado para o meio de pagamento original.\n\nCordialmente,\nLoja da Kim"
    )


def test_thanks_names_the_order_only_when_there_is_one() -> None:
    assert "sull'ordine #2001!" in replies.letter("thanks", "it", "Kim", order="#2001")
    assert "wiadomość! " in replies.letter("thanks", "pl", "Kim", order="")
    assert "over bestelling" not in replies.letter("thanks", "nl", "Kim")


def test_a_language_without_templates_is_answered_in_english() -> None:
    assert replies.letter("hold", "sv", "Kim", order="#2001").startswith("Hi,\n\nThanks")


@pytest.mark.parametrize("language", replies.LANGUAGES)
def test_a_reply_only_template_promises_no_act_in_any_language(language: str) -> None:
    for kind in KINDS:
        template = replies._TEMPLATES[kind][language].lower()
        for act, words in PROMISES.items():
            promised = any(word in template for word in words[language])
            assert promised == (PROMISED_BY.get(kind) == act), (kind, language, act)
