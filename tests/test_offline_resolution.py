"""Thanks for a remedy already made is not a request for one, sarcasm undoes thanks, and a
remedy asked about or denied stays a request. Examples written for these rules (issue 15);
the blind set in tests/data/ai_eval_blind/ is scored by the bench, never read here."""

from __future__ import annotations

import pytest

from integrations.offline.resolution import read
from integrations.offline_suggester import suggest_offline
from kernel.enums import ActionType
from tests.test_offline_suggester import order, request


@pytest.mark.parametrize(
    "text",
    [
        "Thanks so much for the quick refund, all good now!",
        "Got my refund today. Have a nice weekend.",
        "The replacement arrived this morning and it is perfect. Thank you!",
        "Gracias por el reembolso, todo resuelto.",
        "Vielen Dank für die schnelle Erstattung!",
        "Merci pour le remboursement, bonne journée.",
        "Obrigada pela troca, chegou tudo certo.",
        "Grazie per il rimborso veloce!",
        "Bedankt voor de snelle terugbetaling.",
        "Dziękuję za zwrot pieniędzy, wszystko załatwione.",
        "返金ありがとうございました。",
    ],
)
def test_thanks_for_a_remedy_already_made_asks_for_nothing(text: str) -> None:
    assert read(text).resolved and not read(text).sarcastic
    draft = suggest_offline(request(text))
    assert draft.action is ActionType.NONE, draft.rationale
    assert draft.intent == "thanks"


@pytest.mark.parametrize(
    "text",
    [
        "Thanks in advance for the refund: the tote came torn.",
        "Thanks, I would like a refund, the tote came torn.",
        "Has the refund arrived? The tote came torn and I sent it back.",
        "I never got my refund for the torn tote.",
        "My refund has not arrived yet for the torn tote.",
        "返金はまだ届きません。トートが破れていました。",
    ],
)
def test_a_remedy_asked_for_or_denied_is_still_a_request(text: str) -> None:
    assert not read(text).resolved
    draft = suggest_offline(request(text))
    assert draft.intent != "thanks" and draft.action is not ActionType.NONE, draft.rationale


def test_thanks_for_one_remedy_and_a_new_problem_is_about_the_problem() -> None:
    text = "Thanks for the refund on the shirt! But the tote arrived torn, please refund it too."
    reading = read(text)
    assert reading.resolved and "tote arrived torn" in reading.text
    assert suggest_offline(request(text)).action is ActionType.REFUND


@pytest.mark.parametrize(
    "text",
    [
        "Thanks for nothing. The tote is still torn.",
        "Oh great, thanks a lot, the tote came torn again.",
        "Gracias por nada, la bolsa llegó rota.",
        "Danke für nichts, die Tasche ist kaputt angekommen.",
    ],
)
def test_sarcasm_undoes_thanks(text: str) -> None:
    assert read(text).sarcastic and not read(text).resolved
    draft = suggest_offline(request(text))
    assert draft.intent != "thanks", draft.rationale
    assert "thanks" not in draft.rationale.split("signals: ")[1].split(";")[0]


@pytest.mark.parametrize(
    "text",
    [
        "Thanks for fixing it so quickly, have a good one.",
        "I can see the refund on my account now. Cheers!",
        "Le remboursement est bien arrivé, merci.",
        "Ya me llegó el dinero, gracias.",
        "The new ones fit perfectly - the replacement is great.",
        "Muchas gracias por actualizarla.",
        "Otrzymałam już rekompensatę, dziękuję.",
    ],
)
def test_more_ways_of_telling_a_matter_settled(text: str) -> None:
    assert read(text).resolved, text
    assert suggest_offline(request(text)).action is ActionType.NONE


@pytest.mark.parametrize(
    "text",
    [
        "The shirt arrived torn, I want a refund.",
        "La camisa llegó rota, quiero un reembolso.",
        "Please put the refund on my card.",
        "The replacement is broken too, please refund it.",
    ],
)
def test_a_remedy_still_asked_for_is_not_settled(text: str) -> None:
    assert suggest_offline(request(text)).action is ActionType.REFUND, text


def test_the_subject_of_a_reply_is_the_threads_not_a_new_request() -> None:
    # Thanks in a reply to the store's "Your refund": nothing asked.
    thanks = suggest_offline(request("Got it, thanks a lot!", subject="RE: Your refund for #2001"))
    assert thanks.action is ActionType.NONE, thanks.rationale
    # A new question in the reply is what is read, not the subject's old request.
    status = suggest_offline(
        request("Did the change go through? Nothing yet.", subject="Re: Wrong address")
    )
    assert status.action is ActionType.NONE and "status" in status.rationale
    # A reply that says nothing new of its own still reads the subject.
    bare = suggest_offline(request("Please, as soon as you can.", subject="Re: Cancel #2001"))
    assert bare.action is ActionType.CANCEL, bare.rationale


def test_cancel_without_a_number_takes_the_only_order_not_shipped() -> None:
    shipped = order("#2001", fulfillment="FULFILLED")
    waiting = order("#2002")
    done = order("#2003", cancelled=True)
    req = request(
        "Please cancel my order, I found it cheaper.",
        order=None,
        candidate_orders=[done, waiting, shipped],
    )
    draft = suggest_offline(req)
    assert draft.action is ActionType.CANCEL and draft.order_name == "#2002", draft.rationale
    # Two that could be meant: ask which.
    other = order("#2004")
    req = request("Please cancel my order.", order=None, candidate_orders=[waiting, other])
    assert suggest_offline(req).action is ActionType.INFO_REQUEST
    # An order named that is not the sender's is not theirs to guess.
    req = request("Please cancel order #9999.", order=None, candidate_orders=[waiting, shipped])
    assert suggest_offline(req).order_name is None


@pytest.mark.parametrize(
    ("address", "zip_code", "city"),
    [
        ("Rua das Flores 12\n4050-262 Porto\nPortugal", "4050-262", "Porto"),
        ("ul. Długa 8\n80-831 Gdańsk\nPolska", "80-831", "Gdańsk"),
        ("Keizersgracht 100\n1015 CV Amsterdam\nNederland", "1015 CV", "Amsterdam"),
        ("Hauptstraße 5\n10115 Berlin\nDeutschland", "10115", "Berlin"),
    ],
)
def test_postcodes_of_portugal_poland_and_the_netherlands(
    address: str, zip_code: str, city: str
) -> None:
    draft = suggest_offline(request(f"Please change the shipping address to:\n{address}"))
    assert draft.action is ActionType.ADDRESS_CHANGE, draft.rationale
    assert draft.payload["address"]["zip"] == zip_code
    assert draft.payload["address"]["city"] == city
