"""The offline tone signals in all nine languages the replies are written in: a request
for a person and a legal threat, each with what takes it back (or, for a threat, does
not), the words that only look like one, and the mood in the four newer languages.

Written from how customers write, not from any evaluation set. test_suggestion_signals.py
holds the first five languages' original cases and the pattern properties."""

from __future__ import annotations

import pytest

from integrations.offline.replies import LANGUAGES
from integrations.offline.tone import tone

# language -> messages that ask for a person
WANTS_HUMAN: dict[str, list[str]] = {
    "en": ["Can I speak to a real person?", "Please have someone call me today."],
    "es": ["Quiero hablar con una persona, por favor.", "Pásame con un agente, por favor."],
    "de": ["Ich möchte einen Mitarbeiter sprechen.", "Bitte rufen Sie mich zurück."],
    "fr": ["Je veux parler à un humain.", "J'aimerais avoir quelqu'un au téléphone."],
    "ja": ["人間の担当者と話したいです。", "担当者から電話をください。"],
    "pt": [
        "Quero falar com uma pessoa, não com um robô.",
        "Preciso falar com um atendente urgente.",
        "Podem ligar-me amanhã de manhã?",
        "Por favor me liguem ainda hoje.",
        "Quero falar com alguém da loja.",
        "Nao consigo falar com um atendente ha dias.",  # can't reach one: still wants one
    ],
    "it": [
        "Voglio parlare con una persona.",
        "Vorrei parlare con un operatore, grazie.",
        "Potete richiamarmi al più presto?",
        "Siete un robot o una persona?",
    ],
    "nl": [
        "Ik wil een medewerker spreken.",
        "Ik wil graag met een mens praten.",
        "Kunt u mij terugbellen?",
        "Praat ik met een bot?",
    ],
    "pl": [
        "Chcę rozmawiać z człowiekiem.",
        "Proszę o kontakt z konsultantem.",
        "chce porozmawiac z czlowiekiem",  # typed without diacritics
        "Proszę o oddzwonienie.",
        "Nie mogę się połączyć z konsultantem od tygodnia!",  # cannot, not does not want
    ],
}

# language -> messages that ask for no person: the wish taken back, or only its words
NO_HUMAN: dict[str, list[str]] = {
    "en": ["I don't want to talk to anyone, just refund me.", "I talked to someone at the depot."],
    "es": ["No quiero hablar con una persona, solo el reembolso.", "Hablé con el repartidor."],
    "de": [
        "Ich möchte nicht mit einem Mitarbeiter sprechen, eine E-Mail reicht.",
        "Der Mitarbeiter der Post hat gesagt, es kommt morgen.",
    ],
    "fr": ["Pas besoin de parler à un conseiller.", "J'ai parlé au livreur hier."],
    "ja": ["担当者と話す必要はありません。", "配送業者の担当者から連絡がありました。"],
    "pt": [
        "Não quero falar com um atendente, só quero o reembolso.",
        "Não é necessário que me liguem, o e-mail serve.",
        "Tentei falar com alguém dos correios.",
    ],
    "it": [
        "Non voglio parlare con un operatore, rispondete per e-mail.",
        "Ho parlato con una persona del corriere.",
        "Il corriere può chiamarmi prima della consegna?",
    ],
    "nl": [
        "Ik wil niet met een medewerker praten, mail is prima.",
        "Terugbellen is niet nodig.",
        "Ik heb met iemand van PostNL gebeld.",
    ],
    "pl": [
        "Nie chcę rozmawiać z konsultantem, proszę tylko o zwrot.",
        "Rozmawiałem z kurierem wczoraj.",
        "Proszę o telefon do kuriera.",
    ],
}

# language -> legal threats and payment disputes
LEGAL: dict[str, list[str]] = {
    "en": ["I'll take you to small claims court.", "I've opened a dispute with PayPal."],
    "es": ["Voy a reclamar ante Consumo.", "Pondré una reclamación en la OCU."],
    "de": ["Ich werde rechtliche Schritte einleiten.", "Ich gehe zur Verbraucherzentrale."],
    "fr": ["Je vais contacter l'UFC-Que Choisir.", "Vous recevrez une mise en demeure."],
    "ja": ["法的措置を検討します。", "消費者センターに相談します。"],
    "pt": [
        "Vou falar com o meu advogado.",
        "Vou reclamar no Procon.",
        "Vou processar a loja.",
        "Vou levar isto a tribunal.",
        "Vou abrir uma disputa no PayPal.",
    ],
    "it": [
        "Mi rivolgerò a un avvocato.",
        "Vi denuncio.",
        "Ci vediamo in tribunale.",
        "Siamo pronti a una class action.",
        "Ho aperto una contestazione con la banca.",
    ],
    "nl": [
        "Ik schakel mijn advocaat in.",
        "Ik stap naar de rechter.",
        "Ik meld dit bij de Consumentenbond.",
        "Ik onderneem juridische stappen.",
        "Ik ga de betaling storneren.",
    ],
    "pl": [
        "Sprawą zajmie się mój prawnik.",
        "Skieruję sprawę do sądu.",
        "Złożę pozew.",
        "Zgłoszę to do UOKiK.",
        "Napiszę do rzecznika konsumentów.",
    ],
}

# A threat is never taken back (see tone.py): it is phrased as a condition with a
# negation in it, or as reluctance that still names the lawyer.
LEGAL_DESPITE_A_NEGATION = [
    "No need for a lawyer yet, but refund me this week.",
    "No quiero acudir a un abogado, pero lo haré.",
    "Ich will keinen Anwalt einschalten, aber wenn nötig, tue ich es.",
    "Não quero chegar a um advogado, mas se não houver reembolso vou ao Procon.",
    "Non voglio arrivare a fare causa, ma non mi lasciate scelta.",
    "Ik wil niet naar de rechter, maar als het moet, doe ik het.",
    "Nie chcę iść do sądu, ale jeśli nie dostanę zwrotu, złożę pozew.",
]

# language -> words that only look legal
NOT_LEGAL: dict[str, list[str]] = {
    "en": ["Please deliver to Court Street 5.", "I'm so sad the mug broke."],
    "es": ["El consumo de batería es muy alto.", "Hay mucha demanda de este modelo?"],
    "de": ["Das Gericht war lecker, danke."],
    "fr": ["L'avocat était abîmé dans le colis.", "J'adore mon t-shirt UFC."],
    "ja": ["裁縫セットが届きません。"],
    "pt": ["Podem processar o reembolso hoje?", "Podem fazer o estorno no cartão?"],
    "it": ["Qual è la causa del ritardo?", "La stufa è arrivata rotta."],
    "nl": [
        "De rechter schoen is te klein.",
        "De fles advocaat was lek.",
        "Kunt u het bedrag terugboeken?",
    ],
    "pl": ["Pozwolę sobie zapytać o status.", "Sądzę, że paczka zaginęła."],
}

SENTIMENT: list[tuple[str, str]] = [
    ("Isto é inaceitável!", "angry"),
    ("Estou farta, nunca mais compro aqui.", "angry"),
    ("Estou muito desapontado com a qualidade.", "negative"),
    ("Adorei, chegou em perfeito estado!", "positive"),
    ("Não estou irritado, só quero saber onde está o pedido.", "neutral"),
    ("È inaccettabile, sono furioso.", "angry"),
    ("Sono molto deluso.", "negative"),
    ("Perfetto, grazie mille!", "positive"),
    ("Non sono arrabbiata, vorrei solo sapere dov'è il pacco.", "neutral"),
    ("La stufa è arrivata, quando arriva il tubo?", "neutral"),  # the stove
    ("Dit is schandalig!", "angry"),
    ("Ik ben erg teleurgesteld.", "negative"),
    ("Geweldig, ik ben erg tevreden!", "positive"),
    ("Ik ben niet boos, maar waar blijft mijn pakket?", "neutral"),
    ("Ik ben niet erg tevreden over de kwaliteit.", "negative"),
    ("To skandal, jestem wściekły!", "angry"),
    ("Jestem bardzo rozczarowana.", "negative"),
    ("Polecam, wszystko dotarło w idealnym stanie!", "positive"),
    ("Nie jestem wściekła, tylko pytam, gdzie jest paczka.", "neutral"),
    ("Byłbym bardzo zadowolony, gdyby paczka dotarła przed piątkiem.", "neutral"),
]


def _cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(language, text) for language, texts in table.items() for text in texts]


@pytest.mark.parametrize("table", [WANTS_HUMAN, NO_HUMAN, LEGAL, NOT_LEGAL])
def test_every_language_has_cases(table: dict[str, list[str]]) -> None:
    assert set(table) == set(LANGUAGES)


@pytest.mark.parametrize(("language", "text"), _cases(WANTS_HUMAN))
def test_a_request_for_a_person_is_read(language: str, text: str) -> None:
    assert tone("", text).wants_human, (language, text)


@pytest.mark.parametrize(("language", "text"), _cases(NO_HUMAN))
def test_no_person_is_asked_for_when_the_wish_is_taken_back_or_absent(
    language: str, text: str
) -> None:
    assert not tone("", text).wants_human, (language, text)


@pytest.mark.parametrize(("language", "text"), _cases(LEGAL))
def test_a_legal_threat_is_read(language: str, text: str) -> None:
    read = tone("", text)
    assert read.legal_threat, (language, text)
    assert read.sentiment in ("negative", "angry"), (language, text)


@pytest.mark.parametrize("text", LEGAL_DESPITE_A_NEGATION)
def test_a_negation_does_not_take_a_legal_threat_back(text: str) -> None:
    assert tone("", text).legal_threat, text


@pytest.mark.parametrize(("language", "text"), _cases(NOT_LEGAL))
def test_words_that_only_look_legal_are_no_threat(language: str, text: str) -> None:
    assert not tone("", text).legal_threat, (language, text)


@pytest.mark.parametrize(("text", "sentiment"), SENTIMENT)
def test_the_mood_is_read_in_the_newer_languages(text: str, sentiment: str) -> None:
    assert tone("", text).sentiment == sentiment, text


def test_the_rationale_names_what_was_read() -> None:
    read = tone("Reclamação", "Isto é inaceitável. Quero falar com um atendente ou vou ao Procon.")
    assert (read.sentiment, read.wants_human, read.legal_threat) == ("angry", True, True)
    assert read.cues == (
        "angry (inaceitável)",
        "asks for a person (falar com um atendente)",
        "legal threat (procon)",
    )
