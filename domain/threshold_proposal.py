"""A proposed confidence threshold for one action type, from people's past decisions. Pure.

Given the last decisions a person took on one kind of action, each as (the suggestion's
confidence, whether it was approved as suggested, with nothing edited), propose the lowest
confidence t, among those observed, such that the decisions at or above t were approved
unedited at least `target` (98%) of the time, and say how many decisions that rests on.

The statistics, honestly:

- The rule is the observed rate over the decisions at or above t, with a minimum support
  (20 by default): a threshold is only proposed when at least that many decisions lie at
  or above it. Below 50 decisions, 98% means every one of them was approved unedited; one
  rejection in 50 is allowed, two in 100, four in 200.
- That is weak evidence, and the proposal says so rather than hiding it: each proposal
  carries the one-sided 95% Wilson lower bound of its rate (20 of 20 approved is ≥ 88% at
  95% confidence, 200 of 200 is ≥ 98.7%). We do not *require* the lower bound to reach
  98%: that needs 133 unbroken approvals (one-sided 95%), more than most
  merchants' last N of one action type, so nothing would ever be proposed. The merchant
  sees both figures and decides; nothing is applied without them.
- Picking the lowest threshold that passes is a selection over many candidates, so the
  reported rate is, if anything, optimistic; the lower bound is the figure to trust.
- Ties: every decision at a confidence equal to t counts at or above t (the playbook
  engine approves when confidence ≥ threshold), so a candidate takes its whole tie group.
- The rate is over everything at or above t together; a narrower band above t could be
  worse (few decisions there), but a playbook at t approves the whole band, so the
  whole band's rate is what the merchant is promised.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from itertools import groupby

DEFAULT_TARGET = 0.98
DEFAULT_MIN_SUPPORT = 20
# One-sided 95%: "at least this rate, with 95% confidence".
WILSON_Z = 1.6448536269514722


class ProposalStatus(enum.StrEnum):
    PROPOSED = "proposed"
    NOT_ENOUGH_HISTORY = "not_enough_history"  # fewer decisions than the minimum support
    NOT_REACHED = "not_reached"  # enough decisions, but no threshold reaches the target


@dataclass(frozen=True)
class Decision:
    confidence: float
    accepted_unedited: bool


@dataclass(frozen=True)
class Candidate:
    """A threshold that was looked at, and the decisions at or above it."""

    threshold: float
    rests_on: int
    accepted: int


@dataclass(frozen=True)
class Proposal:
    status: ProposalStatus
    decisions: int  # every decision looked at
    threshold: float | None = None  # an observed confidence; None unless PROPOSED
    rests_on: int = 0  # decisions at or above the threshold
    accepted: int = 0  # of those, approved unedited
    rate: float | None = None  # accepted / rests_on
    lower_bound: float | None = None  # one-sided 95% Wilson lower bound of the rate
    # NOT_REACHED only: of the thresholds with enough support, the one whose rate came
    # nearest the target (the lowest of equals), so the merchant sees how far off it is.
    closest: Candidate | None = None


def wilson_lower_bound(accepted: int, total: int, z: float = WILSON_Z) -> float:
    """The Wilson score interval's lower end for `accepted` successes out of `total`."""
    if total <= 0:
        return 0.0
    p = accepted / total
    z2 = z * z
    centre = p + z2 / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return max(0.0, (centre - spread) / (1 + z2 / total))


def propose_threshold(
    decisions: Iterable[Decision],
    *,
    target: float = DEFAULT_TARGET,
    min_support: int = DEFAULT_MIN_SUPPORT,
) -> Proposal:
    """The lowest observed confidence t with at least `min_support` decisions at or above
    it, of which at least `target` were approved unedited. See the module's docstring."""
    if not 0 < target <= 1 or min_support < 1:
        raise ValueError("target is in (0, 1] and min_support at least 1")
    # Compared exactly (49/50, not 0.98 * n in floating point): 49 of 50 reaches 98%.
    wanted = Fraction(str(target))
    ordered = sorted(decisions, key=lambda d: d.confidence, reverse=True)
    if len(ordered) < min_support:
        return Proposal(ProposalStatus.NOT_ENOUGH_HISTORY, decisions=len(ordered))
    best: Candidate | None = None
    closest: Candidate | None = None
    total = accepted = 0
    for confidence, group in groupby(ordered, key=lambda d: d.confidence):
        for decision in group:
            total += 1
            accepted += decision.accepted_unedited
        if total < min_support:
            continue
        if accepted >= wanted * total:
            best = Candidate(confidence, total, accepted)  # lower than any found before
        rate = Fraction(accepted, total)
        if closest is None or rate >= Fraction(closest.accepted, closest.rests_on):
            closest = Candidate(confidence, total, accepted)
    if best is None:
        return Proposal(ProposalStatus.NOT_REACHED, decisions=len(ordered), closest=closest)
    return Proposal(
        ProposalStatus.PROPOSED,
        decisions=len(ordered),
        threshold=best.threshold,
        rests_on=best.rests_on,
        accepted=best.accepted,
        rate=best.accepted / best.rests_on,
        lower_bound=wilson_lower_bound(best.accepted, best.rests_on),
    )
