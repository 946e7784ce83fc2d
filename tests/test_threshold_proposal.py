"""The proposed confidence threshold, as pure logic (domain.threshold_proposal): the edge
cases by hand, and properties against a brute-force reading of the rule."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.threshold_proposal import (
    Candidate,
    Decision,
    ProposalStatus,
    propose_threshold,
    wilson_lower_bound,
)


def run(*groups: tuple[float, int, int]) -> list[Decision]:
    """Decisions from (confidence, approved unedited, not) groups."""
    out: list[Decision] = []
    for confidence, ok, bad in groups:
        out += [Decision(confidence, True)] * ok + [Decision(confidence, False)] * bad
    return out


def test_no_history_is_not_enough_history() -> None:
    found = propose_threshold([])
    assert found.status is ProposalStatus.NOT_ENOUGH_HISTORY
    assert (found.decisions, found.threshold, found.rests_on) == (0, None, 0)


def test_fewer_decisions_than_the_support_says_how_many() -> None:
    found = propose_threshold(run((0.9, 19, 0)))
    assert found.status is ProposalStatus.NOT_ENOUGH_HISTORY
    assert found.decisions == 19
    assert propose_threshold(run((0.9, 20, 0))).status is ProposalStatus.PROPOSED


def test_all_rejected_reaches_nothing() -> None:
    found = propose_threshold(run((0.95, 0, 30), (0.6, 0, 30)))
    assert found.status is ProposalStatus.NOT_REACHED
    assert (found.decisions, found.threshold) == (60, None)
    assert found.closest == Candidate(0.6, 60, 0)  # all at 0%: the lowest, with most support


def test_not_reached_says_how_close_it_came() -> None:
    # At or above 0.95: 19 of 20 (95%); at or above 0.8: 39 of 45 (86.7%).
    found = propose_threshold(run((0.95, 19, 1), (0.8, 20, 5)))
    assert found.status is ProposalStatus.NOT_REACHED
    assert found.closest == Candidate(0.95, 20, 19)
    assert propose_threshold(run((0.9, 20, 0))).closest is None  # proposed: nothing to say


def test_all_approved_proposes_the_lowest_confidence_seen() -> None:
    found = propose_threshold(run((0.99, 10, 0), (0.8, 10, 0), (0.41, 5, 0)))
    assert found.status is ProposalStatus.PROPOSED
    assert (found.threshold, found.rests_on, found.accepted, found.rate) == (0.41, 25, 25, 1.0)


def test_monotonic_history_stops_where_rejections_begin() -> None:
    # One decision at each of 0.50 .. 0.99; approved unedited from 0.70 up.
    decisions = [Decision(c / 100, c >= 70) for c in range(50, 100)]
    found = propose_threshold(decisions)
    assert (found.threshold, found.rests_on, found.accepted) == (0.7, 30, 30)
    assert found.decisions == 50


def test_exactly_the_target_counts() -> None:
    # 49 of 50 is 98% exactly (compared as a fraction, not 0.98 * 50 in floating point).
    found = propose_threshold(run((0.9, 49, 1)))
    assert (found.status, found.rests_on, found.accepted) == (ProposalStatus.PROPOSED, 50, 49)
    assert propose_threshold(run((0.9, 48, 1))).status is ProposalStatus.NOT_REACHED  # 97.96%
    assert propose_threshold(run((0.9, 48, 2))).status is ProposalStatus.NOT_REACHED


def test_a_tie_group_is_taken_whole() -> None:
    # 29 approved and 1 rejected at the same confidence: 96.7% however they are ordered,
    # although the first 29 of them alone would have looked perfect.
    decisions = run((0.9, 29, 1))
    for _ in range(5):
        random.shuffle(decisions)
        assert propose_threshold(decisions).status is ProposalStatus.NOT_REACHED
    # A tie group with a rejection is outvoted further down: 54 of 55 at or above 0.7.
    found = propose_threshold(run((0.9, 19, 0), (0.8, 5, 1), (0.7, 30, 0)))
    assert (found.threshold, found.rests_on, found.accepted) == (0.7, 55, 54)


def test_the_lowest_passing_threshold_wins_even_past_a_failing_one() -> None:
    # At or above 0.9: 40 of 40. At or above 0.8: 40 of 42 (95%). At or above 0.5: 140 of 142.
    found = propose_threshold(run((0.9, 40, 0), (0.8, 0, 2), (0.5, 100, 0)))
    assert (found.threshold, found.rests_on, found.accepted) == (0.5, 142, 140)


def test_support_is_counted_at_or_above_the_threshold() -> None:
    # 10 perfect at the top are too few alone; with the 0.7 group they are enough.
    found = propose_threshold(run((0.95, 10, 0), (0.7, 10, 0), (0.2, 0, 5)))
    assert (found.threshold, found.rests_on) == (0.7, 20)
    assert propose_threshold(run((0.95, 10, 0), (0.7, 0, 10))).status is (
        ProposalStatus.NOT_REACHED
    )


def test_wilson_lower_bound() -> None:
    assert wilson_lower_bound(20, 20) == pytest.approx(0.8808, abs=1e-4)
    assert wilson_lower_bound(200, 200) == pytest.approx(0.9867, abs=1e-4)
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(0, 0) == 0.0
    found = propose_threshold(run((0.9, 20, 0)))
    assert found.lower_bound == pytest.approx(wilson_lower_bound(20, 20))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        propose_threshold([], target=0)
    with pytest.raises(ValueError):
        propose_threshold([], min_support=0)


# --- properties ------------------------------------------------------------------------------

# Few distinct confidences, so ties are common.
confidences = st.sampled_from([0.3, 0.5, 0.6, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99, 1.0])
histories = st.lists(st.builds(Decision, confidences, st.booleans() | st.just(True)), max_size=120)


def _above(decisions: list[Decision], t: float) -> tuple[int, int]:
    """How many decisions at or above t, and how many of them were approved unedited."""
    above = [d for d in decisions if d.confidence >= t]
    return len(above), sum(d.accepted_unedited for d in above)


def _passes(decisions: list[Decision], t: float, min_support: int) -> bool:
    n, ok = _above(decisions, t)
    return n >= min_support and Fraction(ok, n) >= Fraction(49, 50)


@given(histories, st.integers(min_value=1, max_value=40))
def test_the_proposal_is_the_lowest_observed_confidence_that_passes(
    decisions: list[Decision], min_support: int
) -> None:
    found = propose_threshold(decisions, min_support=min_support)
    assert found.decisions == len(decisions)
    passing = [c for c in {d.confidence for d in decisions} if _passes(decisions, c, min_support)]
    if len(decisions) < min_support:
        assert found.status is ProposalStatus.NOT_ENOUGH_HISTORY
    elif not passing:
        assert found.status is ProposalStatus.NOT_REACHED
        supported = [
            c for c in {d.confidence for d in decisions} if _above(decisions, c)[0] >= min_support
        ]
        rates = {c: Fraction(_above(decisions, c)[1], _above(decisions, c)[0]) for c in supported}
        assert found.closest is not None
        assert found.closest.threshold == min(
            c for c in supported if rates[c] == max(rates.values())
        )
        assert (found.closest.rests_on, found.closest.accepted) == _above(
            decisions, found.closest.threshold
        )
    else:
        assert found.status is ProposalStatus.PROPOSED
        assert found.threshold == min(passing)
        above = [d for d in decisions if d.confidence >= found.threshold]
        assert found.rests_on == len(above) >= min_support
        assert found.accepted == sum(d.accepted_unedited for d in above)
        assert found.rate is not None and found.lower_bound is not None
        assert found.rate >= 0.98 - 1e-12
        assert 0 <= found.lower_bound <= found.rate


@given(histories)
def test_the_order_of_the_history_does_not_matter(decisions: list[Decision]) -> None:
    shuffled = list(decisions)
    random.Random(len(decisions)).shuffle(shuffled)
    assert propose_threshold(shuffled, min_support=5) == propose_threshold(decisions, min_support=5)


@given(histories.filter(bool), st.data())
def test_a_rejection_never_lowers_the_proposal(
    decisions: list[Decision], data: st.DataObject
) -> None:
    """More evidence against, at a confidence already seen, can only raise the threshold or
    withdraw it. (At a new confidence it adds a candidate, which may sit lower.)"""
    at = data.draw(st.sampled_from([d.confidence for d in decisions]))
    before = propose_threshold(decisions, min_support=5)
    after = propose_threshold([*decisions, Decision(at, False)], min_support=5)
    if before.threshold is None:
        assert after.threshold is None
    elif after.threshold is not None:
        assert after.threshold >= before.threshold
