"""Separating new text from quoted history and signatures (integrations.quoting)."""

from __future__ import annotations

import pytest

from domain.mail.quoting import split_reply


@pytest.mark.parametrize(
    ("text", "new", "quoted_start"),
    [
        (
            "Thanks!\n\nOn Mon, Nov 2, 2026 at 9:00 AM Shop <s@x.example> wrote:\n> hi",
            "Thanks!",
            "On Mon",
        ),
        ("Yes.\n\nOn 2 Nov 2026, at 09:00, Shop <s@x.example> wrote:\n\n> hi", "Yes.", "On 2 Nov"),
        ("Ok\n\nAm 02.11.2026 um 09:00 schrieb Shop <s@x.example>:\n> hallo", "Ok", "Am 02.11"),
        ("Oui\n\nLe lun. 2 nov. 2026 à 09:00, Shop <s@x.example> a écrit :\n> x", "Oui", "Le lun."),
        (
            "Sí\n\nEl lun, 2 nov 2026 a las 9:00, Shop (<s@x.example>) escribió:\n> x",
            "Sí",
            "El lun",
        ),
        (
            "Fine\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\n\nold",
            "Fine",
            "-----Orig",
        ),
        (
            "Fine\n\n________________________________\nFrom: Shop <s@x.example>\nSent: Monday",
            "Fine",
            "____",
        ),
        (
            "Fine\n\nFrom: Shop <s@x.example>\nSent: Monday, 2 November 2026 09:00\nTo: me",
            "Fine",
            "From: Shop",
        ),
        ("Fine\n\n*From:* Shop <s@x.example>\n*Date:* Monday\n*To:* me", "Fine", "*From:*"),
        ("Note\n\n---------- Forwarded message ---------\nFrom: a\n\nbody", "Note", "----------"),
        ("Words\n\n-- \nJane\nAcme Ltd", "Words", "-- "),
        ("Words\n--\nJane", "Words", "--"),
        ("Words\n\nSent from my iPhone", "Words", "Sent from my iPhone"),
        ("Words\n\nSent from my Galaxy", "Words", "Sent from my Galaxy"),
        ("Words\n\nGet Outlook for iOS", "Words", "Get Outlook"),
        ("Words\n\nEnviado desde mi iPhone", "Words", "Enviado"),
        ("Words\n\n> quoted\n> more\n>", "Words", "> quoted"),
        # Portuguese, Italian, Dutch, Polish and Japanese clients.
        (
            "Sim\n\nEm seg., 2 de nov. de 2026 às 09:00, Shop <s@x.example> escreveu:\n> x",
            "Sim",
            "Em seg",
        ),
        (
            "Sì\n\nIl giorno lun 2 nov 2026 alle 09:00 Shop <s@x.example> ha scritto:\n> x",
            "Sì",
            "Il giorno",
        ),
        ("Ja\n\nOp ma 2 nov. 2026 om 09:00 schreef Shop <s@x.example>:\n> x", "Ja", "Op ma"),
        ("Tak\n\nW dniu 2.11.2026 o 09:00, Shop <s@x.example> napisał:\n> x", "Tak", "W dniu"),
        ("Tak\n\nAnna Nowak <a@x.example> napisała:\n> x", "Tak", "Anna Nowak"),
        ("Ok\n\n-----Messaggio originale-----\nDa: Shop\nInviato: lunedì", "Ok", "-----Mess"),
        ("Ok\n\nVan: Shop <s@x.example>\nVerzonden: maandag 2 november 2026", "Ok", "Van: Shop"),
        ("Ok\n\nOd: Shop <s@x.example>\nWysłano: poniedziałek", "Ok", "Od: Shop"),
        ("Ok\n\nDe: Shop <s@x.example>\nEnviada: segunda-feira", "Ok", "De: Shop"),
        ("はい\n\n差出人: Shop <s@x.example>\n送信日時: 2026年11月2日 9:00", "はい", "差出人"),
        ("Ok\n\n---------- Mensagem encaminhada ---------\nDe: a", "Ok", "----------"),
        ("Ok\n\n---------- Doorgestuurd bericht ---------\nVan: a", "Ok", "----------"),
        ("Words\n\nEnviado do meu iPhone", "Words", "Enviado do meu"),
        ("Words\n\nVerstuurd vanaf mijn iPhone", "Words", "Verstuurd"),
        ("Words\n\nWysłane z iPhone'a", "Words", "Wysłane"),
    ],
)
def test_split(text: str, new: str, quoted_start: str) -> None:
    got_new, quoted = split_reply(text)
    assert got_new == new
    assert quoted.startswith(quoted_start)


def test_nothing_to_split() -> None:
    assert split_reply("  Where is my order?\n") == ("Where is my order?", "")


def test_a_from_line_in_prose_is_not_a_quote() -> None:
    text = "From: my account page the order looks paid.\nCan you check?"
    assert split_reply(text) == (text, "")


def test_inline_answers_stay_in_the_new_text() -> None:
    text = "> Colour?\nBlue.\n> Size?\nL.\n\n> Thanks,\n> Shop"
    assert split_reply(text) == ("> Colour?\nBlue.\n> Size?\nL.", "> Thanks,\n> Shop")


def test_a_message_that_is_only_a_quote_keeps_its_text() -> None:
    text = "On Mon, Nov 2, 2026 at 9:00 AM Shop <s@x.example> wrote:\n> hi"
    assert split_reply(text) == (text, "")


def test_nothing_is_lost() -> None:
    text = "Hello\r\n\r\nOn Mon, Nov 2, 2026, Shop <s@x.example> wrote:\r\n> a\r\n> b"
    new, quoted = split_reply(text)
    assert (new, quoted) == ("Hello", "On Mon, Nov 2, 2026, Shop <s@x.example> wrote:\n> a\n> b")
