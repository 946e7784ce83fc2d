"""The offline rules in Portuguese, Italian, Dutch and Polish: the request is read, the
order number is found without "#", and the reply is written in the customer's language.
Written from how customers write, not from the blind evaluation set."""

from __future__ import annotations

import pytest

from integrations.offline import lexicon
from integrations.offline_suggester import suggest_offline
from kernel.enums import ActionType
from kernel.values import OrderSnapshot, SuggestionRequest
from tests.test_guardrails import order

SHIPPED = order(fulfillment_status="FULFILLED")
OPEN = order()


def _draft(text: str, matched: OrderSnapshot) -> tuple[str, ActionType]:
    request = SuggestionRequest(
        store_name="Mug Shop",
        customer_email="ana@example.com",
        subject="",
        text=text,
        order=matched,
    )
    draft = suggest_offline(request)
    return draft.language or "", draft.action


@pytest.mark.parametrize(
    ("text", "matched", "language", "action"),
    [
        (
            "A caneca do pedido 1001 chegou partida. Quero o reembolso, por favor.",
            SHIPPED,
            "pt",
            ActionType.REFUND,
        ),
        ("Olá, quero cancelar a encomenda 1001.", OPEN, "pt", ActionType.CANCEL),
        ("Onde está a minha encomenda 1001? Ainda não chegou.", SHIPPED, "pt", ActionType.NONE),
        (
            "Buongiorno, la tazza dell'ordine 1001 è arrivata rotta. Vorrei un rimborso.",
            SHIPPED,
            "it",
            ActionType.REFUND,
        ),
        ("Vorrei annullare l'ordine 1001, grazie.", OPEN, "it", ActionType.CANCEL),
        ("Dov'è il mio ordine 1001? Non è ancora arrivato.", SHIPPED, "it", ActionType.NONE),
        (
            "De mok van bestelling 1001 is kapot aangekomen. Ik wil graag mijn geld terug.",
            SHIPPED,
            "nl",
            ActionType.REFUND,
        ),
        ("Ik wil bestelling 1001 annuleren alstublieft.", OPEN, "nl", ActionType.CANCEL),
        (
            "Waar blijft mijn bestelling 1001? Nog steeds niet ontvangen.",
            SHIPPED,
            "nl",
            ActionType.NONE,
        ),
        (
            "Dzień dobry, kubek z zamówienia 1001 dotarł rozbity. Proszę o zwrot pieniędzy.",
            SHIPPED,
            "pl",
            ActionType.REFUND,
        ),
        ("Chcę anulować zamówienie 1001.", OPEN, "pl", ActionType.CANCEL),
        (
            "Gdzie jest moje zamówienie 1001? Paczka wciąż nie dotarła.",
            SHIPPED,
            "pl",
            ActionType.NONE,
        ),
    ],
)
def test_requests_are_read_and_answered_in_the_customers_language(
    text: str, matched: OrderSnapshot, language: str, action: ActionType
) -> None:
    assert _draft(text, matched) == (language, action)


@pytest.mark.parametrize(
    ("signal", "text", "affirmed"),
    [
        # A negation reaches to the end of its clause, not past a comma or an "and".
        ("refund", "It doesn't work, please refund it.", True),
        ("refund", "Nie działa i proszę o zwrot pieniędzy.", True),
        ("refund", "I don't want a refund.", False),
        ("refund", "Não quero o reembolso.", False),
        ("refund", "Non voglio un rimborso.", False),
        ("refund", "Ik wil geen geld terug.", False),
        ("refund", "Nie chcę zwrotu pieniędzy.", False),
        ("exchange", "Prefiero que me devolváis el dinero en lugar de cambiarlas.", False),
        ("exchange", "I don't think I want a replacement.", False),
    ],
)
def test_negation_stops_at_the_end_of_its_clause(signal: str, text: str, affirmed: bool) -> None:
    assert lexicon.affirmed(signal, text) is affirmed


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Obrigado, a encomenda chegou bem.", "pt"),
        ("Grazie, il pacco è arrivato.", "it"),
        ("Bedankt, het pakket is goed aangekomen.", "nl"),
        ("Dziękuję, paczka już dotarła.", "pl"),
        ("Gracias, el pedido llegó bien.", "es"),
        ("Danke, die Bestellung ist angekommen.", "de"),
        ("Tack, paketet har kommit.", "en"),  # Swedish: no language we answer in
    ],
)
def test_the_language_is_told_apart_from_its_neighbours(text: str, language: str) -> None:
    assert lexicon.language(text) == language


@pytest.mark.parametrize(
    ("signal", "text"),
    [
        ("refund", "pls refnd me"),
        ("refund", "quiero un rembolso"),
        ("damaged", "the mug arived damged"),
        ("exchange", "can you send a replacemnt"),
        ("status", "wheres my order"),
        ("status", "I have not recieved it"),
        ("missing", "the lid is mising"),
        ("cancel", "plz cansel it"),
        ("thanks", "thanx a lot"),
    ],
)
def test_common_misspellings_are_read(signal: str, text: str) -> None:
    assert lexicon.affirmed(signal, text)
