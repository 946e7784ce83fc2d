"""Thanks for a remedy already made is not a request for one, sarcasm undoes thanks, and a
remedy asked about or denied stays a request. Examples written for these rules (issue 15);
the blind set in tests/data/ai_eval_blind/ is scored by the bench, never read here."""

from __future__ import annotations

import pytest

from integrations.offline.resolution import read
from integrations.offline_suggester import suggest_offline
from kernel.enums import ActionType
from tests.test_offline_suggester import request


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
