"""Calibrated confidence: the table, the evidence it is read by, its caps, and that guarding
with calibration keeps every invariant of the guardrails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.calibrate import fit, fit_outcomes, fit_row
from domain.guardrails import (
    FIRED_CONFIDENCE_CAP,
    GuardrailContext,
    apply_guardrails,
    calibrate,
    guard_suggestion,
    is_safe,
)
from domain.guardrails.calibration import (
    BAND_EDGES,
    CALIBRATION_TABLE,
    MOVES_MONEY_OR_GOODS,
    SIGNAL_CAP,
    WEAK_EVIDENCE_CAP,
    Evidence,
    Group,
    band,
    calibrated,
    evidence,
)
from domain.threshold_proposal import wilson_lower_bound
from kernel.enums import ActionType
from kernel.values import LineItem, OrderSnapshot, SuggestionDraft
from tests.test_guardrails_properties import FAST, cases

SENDER = "ana@example.com"


def order(**changes: Any) -> OrderSnapshot:
    values: dict[str, Any] = {
        "id": "gid://shopify/Order/1001",
        "name": "#1001",
        "email": SENDER,
        "currency": "USD",
        "total": Decimal("40.00"),
        "refundable": Decimal("40.00"),
        "financial_status": "PAID",
        "fulfillment_status": "UNFULFILLED",
        "cancelled": False,
        "line_items": [
            LineItem(id="gid://shopify/LineItem/1", title="Mug", quantity=1, unit_price=20),
            LineItem(id="gid://shopify/LineItem/2", title="Plate", quantity=1, unit_price=20),
        ],
    }
    return OrderSnapshot(**{**values, **changes})


def context(text: str = "My mug from order #1001 arrived cracked.", **changes: Any):
    values: dict[str, Any] = {
        "sender_email": SENDER,
        "store_name": "Mug Shop",
        "order": order(),
        "sender_orders": [order()],
        "customer_text": text,
    }
    return GuardrailContext(**{**values, **changes})


def draft(action: ActionType = ActionType.REFUND, **changes: Any) -> SuggestionDraft:
    values: dict[str, Any] = {
        "intent": "damaged_item",
        "action": action,
        "payload": {"line_items": [{"line_item_id": "gid://shopify/LineItem/1", "quantity": 1}]}
        if action is ActionType.REFUND
        else {},
        "reply": "Hi,\n\nThanks for writing.\n\nBest regards,\nMug Shop",
        "confidence": 0.95,
        "rationale": "test",
        "provider": "test",
        "language": "en",
    }
    return SuggestionDraft(**{**values, **changes})


evidences = st.builds(
    Evidence,
    action=st.sampled_from(list(ActionType)),
    fired=st.booleans(),
    order_named=st.booleans(),
    language_supported=st.booleans(),
    person_signalled=st.booleans(),
    whole_of_several=st.booleans(),
    partly_refunded=st.booleans(),
)
raw = st.floats(0, 1)


# --- the table ------------------------------------------------------------------------------


def test_the_table_is_a_probability_rising_with_the_providers_number() -> None:
    assert set(CALIBRATION_TABLE) == set(Group)
    for group, row in CALIBRATION_TABLE.items():
        assert len(row) == len(BAND_EDGES), group
        assert all(0 <= value <= 1 for value in row), group
        assert list(row) == sorted(row, reverse=True), group  # highest band first


@given(evidences, raw, raw)
def test_calibration_is_monotone_in_the_providers_number(found, a, b) -> None:
    low, high = sorted((a, b))
    assert calibrated(low, found) <= calibrated(high, found)


@given(evidences, st.floats(allow_nan=True, allow_infinity=True) | raw)
def test_calibration_is_a_probability_under_its_caps(found, value) -> None:
    result = calibrated(value, found)
    assert 0 <= result <= 1
    if found.fired:
        assert result <= FIRED_CONFIDENCE_CAP
    elif found.action in MOVES_MONEY_OR_GOODS:
        if found.person_signalled:
            assert result <= SIGNAL_CAP
        if not found.strong:
            assert result <= WEAK_EVIDENCE_CAP


def test_the_bands_are_the_benchs() -> None:
    assert [band(x) for x in (1.0, 0.9, 0.89, 0.8, 0.79, 0.6, 0.59, 0.0)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_a_models_own_number_is_only_an_input() -> None:
    # The same evidence at 0.99 and at 0.91 is the same band, so the same value.
    strong = evidence(draft(confidence=0.99), context(), fired=False)
    assert strong.group is Group.STRONG
    assert (
        calibrated(0.99, strong) == calibrated(0.91, strong) == CALIBRATION_TABLE[strong.group][0]
    )


# --- the evidence ---------------------------------------------------------------------------


def test_an_order_named_by_the_customer_is_strong_evidence_and_one_matched_by_sender_is_not():
    named = evidence(draft(), context(), fired=False)
    assert named.order_named and named.strong and named.group is Group.STRONG
    unnamed = evidence(draft(), context("My mug arrived cracked."), fired=False)
    assert not unnamed.order_named and unnamed.group is Group.WEAK
    # Naming an order in the text that is not the sender's is no evidence for theirs.
    foreign = evidence(
        draft(order_name="#1001"),
        context("order #1001", sender_orders=[], order=order(email="bob@example.com")),
        fired=False,
    )
    assert not foreign.order_named


def test_an_order_named_only_in_the_quoted_history_is_not_evidence_for_what_is_asked_now():
    quoted = "My mug arrived cracked.\n\nOn Mon, Shop <s@x.example> wrote:\n> About order #1001"
    only_quoted = context(quoted, request_text="My mug arrived cracked.")
    assert evidence(draft(), only_quoted, fired=False).group is Group.WEAK
    asked_now = context(quoted, request_text="Re: order #1001\nMy mug arrived cracked.")
    assert evidence(draft(), asked_now, fired=False).group is Group.STRONG


@pytest.mark.parametrize(
    ("changes", "weakness"),
    [
        ({"language": ""}, "language_supported"),
        ({"language": "ko"}, "language_supported"),
        ({"wants_human": True}, "person_signalled"),
        ({"legal_threat": True}, "person_signalled"),
        ({"payload": {"amount": "40.00"}}, "whole_of_several"),
        ({"payload": {}}, "whole_of_several"),
    ],
)
def test_what_makes_evidence_weak(changes: dict[str, Any], weakness: str) -> None:
    found = evidence(draft(**changes), context(), fired=False)
    assert found.group is Group.WEAK
    assert getattr(found, weakness) is (weakness != "language_supported")
    assert calibrated(0.99, found) <= WEAK_EVIDENCE_CAP


def test_money_back_on_an_order_already_partly_refunded_is_weak_evidence() -> None:
    partly = order(refundable=Decimal("20.00"))
    ctx = context(order=partly, sender_orders=[partly])
    found = evidence(draft(payload={"amount": "10.00"}), ctx, fired=False)
    assert found.partly_refunded and found.group is Group.WEAK
    cancel = evidence(draft(ActionType.CANCEL, payload={"reason": "CUSTOMER"}), ctx, fired=False)
    assert cancel.partly_refunded
    # Goods are not money: a replacement on that order is judged on the rest.
    swap = draft(
        ActionType.REPLACE_ITEM,
        payload={"line_item_id": "gid://shopify/LineItem/1", "quantity": 1},
    )
    assert not evidence(swap, ctx, fired=False).partly_refunded


def test_a_partial_refund_or_a_single_line_order_is_not_the_whole_of_several() -> None:
    part = evidence(draft(payload={"amount": "20.00"}), context(), fired=False)
    assert not part.whole_of_several
    single = order(line_items=order().line_items[:1], total=Decimal(20), refundable=Decimal(20))
    whole = evidence(
        draft(payload={"amount": "20.00"}),
        context(order=single, sender_orders=[single]),
        fired=False,
    )
    assert not whole.whole_of_several and whole.strong


def test_replies_are_their_own_group_and_fired_drafts_stay_capped() -> None:
    reply = evidence(draft(ActionType.NONE), context("Where is it?"), fired=False)
    assert reply.group is Group.REPLY
    fired = evidence(draft(), context(), fired=True)
    assert fired.group is Group.FIRED and calibrated(1.0, fired) <= FIRED_CONFIDENCE_CAP


# --- guarding with calibration ---------------------------------------------------------------


def test_guarding_keeps_the_providers_number_and_stores_the_calibrated_one() -> None:
    original = draft(confidence=0.97)
    guarded = guard_suggestion(original, context())
    assert guarded.notes == []
    assert guarded.uncalibrated_confidence == 0.97
    assert guarded.original == original
    assert guarded.draft.confidence == CALIBRATION_TABLE[Group.STRONG][0]
    assert guarded.draft.model_copy(update={"confidence": 0.97}) == original


def test_a_draft_the_guardrails_changed_is_calibrated_from_what_they_left() -> None:
    greedy = draft(payload={"amount": "5000"}, confidence=0.99)
    guarded = guard_suggestion(greedy, context())
    assert guarded.notes and guarded.draft.action is ActionType.NONE
    assert guarded.uncalibrated_confidence == FIRED_CONFIDENCE_CAP
    assert guarded.draft.confidence <= FIRED_CONFIDENCE_CAP


@FAST
@given(cases())
def test_calibrated_drafts_are_safe_and_calibrating_twice_is_calibrating_once(case) -> None:
    original, ctx = case
    guarded = guard_suggestion(original, ctx)
    assert is_safe(guarded.draft, ctx), (guarded.notes, guarded.draft)
    if guarded.notes:
        assert guarded.draft.confidence <= FIRED_CONFIDENCE_CAP
    assert calibrate(guarded, ctx) == guarded
    plain = apply_guardrails(original, ctx)
    # Calibration changes the confidence and nothing else.
    assert guarded.draft == plain.draft.model_copy(update={"confidence": guarded.draft.confidence})
    assert guarded.notes == plain.notes and guarded.order == plain.order
    assert guarded.uncalibrated_confidence == plain.draft.confidence


# --- the fit --------------------------------------------------------------------------------


def test_the_wilson_lower_bound() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(25, 25) == pytest.approx(0.9023, abs=1e-4)
    assert wilson_lower_bound(10, 10) == pytest.approx(0.7870, abs=1e-4)
    assert wilson_lower_bound(5, 10) < 0.5 < wilson_lower_bound(9, 10)


def test_fitting_a_row_merges_violators_and_fills_empty_bands() -> None:
    # Highest band first. 17/23 above 5/5: the higher band's bound is lower, so they merge.
    assert fit_row([(17, 23), (5, 5), (0, 0), (0, 0)]) == (0.63, 0.63, 0.63, 0.63)
    # Rising bounds stay apart; an empty band takes the value of the band below it.
    assert fit_row([(0, 0), (25, 25), (5, 5), (0, 0)]) == (0.9, 0.9, 0.64, 0.64)
    assert fit_row([(0, 0)] * 4) == (0.5,) * 4


async def test_the_table_in_the_code_is_the_one_fitted_on_the_calibration_set() -> None:
    """`uv run python -m bench.calibrate` prints the fit; the code must hold that table. A
    rule change that moves the calibration set's outcomes needs a re-fit."""
    fitted = fit(await fit_outcomes())
    assert {group: tuple(row) for group, row in CALIBRATION_TABLE.items()} == fitted
