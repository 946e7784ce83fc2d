"""Calibrated confidence: the chance that a careful agent accepts a guarded draft. Pure.

Whatever a provider reports (the offline rules' fixed numbers, a model's self-assessment)
is one input. The stored confidence is read from a table of how often drafts like it were
acceptable, looked up by the provider's number and by evidence any provider's draft
carries: what it does, whether the customer named the order it acts on, whether a
guardrail fired, the language, the signals that a person should look, and how much of the
order a refund takes. Money and goods never move on weak evidence at a high confidence,
whatever the table says, and a draft a guardrail fired on stays at FIRED_CONFIDENCE_CAP.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.guardrails.engine import apply_guardrails
from domain.guardrails.model import FIRED_CONFIDENCE_CAP, GuardedSuggestion, GuardrailContext
from domain.guardrails.orders import acting_order, is_trusted
from domain.order_names import order_names_in
from kernel.enums import ActionType
from kernel.values import OrderSnapshot, SuggestionDraft

# Actions that move money or goods. ADDRESS_CHANGE is one: it decides where the goods go,
# and a wrong address loses them as surely as a wrong refund loses money.
MOVES_MONEY_OR_GOODS = frozenset(
    {ActionType.REFUND, ActionType.CANCEL, ActionType.REPLACE_ITEM, ActionType.ADDRESS_CHANGE}
)
# The languages deskpilot replies in; a draft in another (or none read) is weaker evidence.
SUPPORTED_LANGUAGES = frozenset({"en", "es", "de", "fr", "ja", "pt", "it", "nl", "pl"})
# Lower edges of the confidence bands, highest first: >= 0.9, 0.8-0.9, 0.6-0.8, < 0.6. The
# bench reports in the same bands.
BAND_EDGES = (0.9, 0.8, 0.6, 0.0)
BAND_LABELS = (">=0.9", "0.8-0.9", "0.6-0.8", "<0.6")
# Ceilings that are policy, not fit, whatever a later fit says: below every default
# playbook threshold for money (0.85 and up), so weak evidence never moves money on its
# own; lower still when the customer asks for a person or threatens a dispute.
WEAK_EVIDENCE_CAP = 0.75
SIGNAL_CAP = 0.6


class Group(enum.StrEnum):
    """The evidence classes the table is fitted for."""

    REPLY = "reply"  # NONE or INFO_REQUEST, no guardrail fired
    STRONG = "moves:strong"  # moves money or goods on strong evidence
    WEAK = "moves:weak"  # moves money or goods on anything less
    FIRED = "fired"  # a guardrail fired: a person decides


# Fitted on the calibration set only (tests/data/ai_eval_calibration, offline rules and
# the scripted model pooled) by `uv run python -m bench.calibrate`, which prints this table:
# not on the tuned set, whose cases the rules were written against (a table fitted there
# claimed 0.87 for drafts the blind set found 80% acceptable), and never on the blind set,
# which judges it. Each row: the calibrated value for a provider's confidence in the bands
# of BAND_LABELS, highest first; a one-sided 95% Wilson lower bound of the share acceptable
# in that band, bands merged where a higher one's bound fell below a lower one's. FIRED is
# capped at FIRED_CONFIDENCE_CAP whatever its row says.
CALIBRATION_TABLE: dict[Group, tuple[float, float, float, float]] = {
    Group.REPLY: (0.61, 0.24, 0.24, 0.17),
    Group.STRONG: (0.76, 0.76, 0.62, 0.62),
    Group.WEAK: (0.63, 0.63, 0.63, 0.26),
    Group.FIRED: (0.44, 0.44, 0.44, 0.44),
}


@dataclass(frozen=True)
class Evidence:
    """What a guarded draft shows about itself, whichever provider wrote it."""

    action: ActionType
    fired: bool  # a guardrail fired on the draft
    order_named: bool  # the customer's text names the (trusted) order it acts on
    language_supported: bool
    person_signalled: bool  # wants a human, or a legal threat
    whole_of_several: bool  # a refund of an order's whole rest, though it has several lines
    # Money back on an order already partly refunded: what is left to give is the question.
    partly_refunded: bool = False

    @property
    def moves(self) -> bool:
        return self.action in MOVES_MONEY_OR_GOODS

    @property
    def strong(self) -> bool:
        return (
            self.order_named
            and self.language_supported
            and not self.person_signalled
            and not self.whole_of_several
            and not self.partly_refunded
        )

    @property
    def group(self) -> Group:
        if self.fired:
            return Group.FIRED
        if not self.moves:
            return Group.REPLY
        return Group.STRONG if self.strong else Group.WEAK

    def cap(self) -> float:
        if self.fired:
            return FIRED_CONFIDENCE_CAP
        if not self.moves:
            return 1.0
        if self.person_signalled:
            return SIGNAL_CAP
        return 1.0 if self.strong else WEAK_EVIDENCE_CAP


def band(confidence: float) -> int:
    """The index in BAND_EDGES of the band the confidence falls in (0 is the highest)."""
    for index, edge in enumerate(BAND_EDGES):
        if confidence >= edge:
            return index
    return len(BAND_EDGES) - 1


def evidence(draft: SuggestionDraft, context: GuardrailContext, *, fired: bool) -> Evidence:
    action = ActionType(draft.action)
    target = acting_order(draft, context)
    trusted = target if target is not None and is_trusted(target, context) else None
    # Named in what was asked now: an order named only in the quoted history may be last
    # time's. (A context built without the split falls back on all of the customer's text.)
    asked = context.request_text or context.customer_text
    named = trusted is not None and trusted.name in order_names_in(asked)
    return Evidence(
        action=action,
        fired=fired,
        order_named=named,
        language_supported=draft.language.strip().lower() in SUPPORTED_LANGUAGES,
        person_signalled=draft.wants_human or draft.legal_threat,
        whole_of_several=_whole_of_several(draft, trusted),
        partly_refunded=action in (ActionType.REFUND, ActionType.CANCEL)
        and trusted is not None
        and trusted.refundable < trusted.total,
    )


def _whole_of_several(draft: SuggestionDraft, order: OrderSnapshot | None) -> bool:
    """A refund by amount (or of everything) that takes all that is left of an order with
    several lines: the customer often meant one of them."""
    if draft.action is not ActionType.REFUND or order is None or len(order.line_items) < 2:
        return False
    if draft.payload.get("line_items"):
        return False
    amount = draft.payload.get("amount")
    if amount is None:
        return True
    try:
        return Decimal(str(amount)) >= order.refundable
    except InvalidOperation:
        return False


def calibrated(raw: float, found: Evidence) -> float:
    """The calibrated confidence for a provider's `raw` one: the table's value for the
    evidence and band, under the evidence's cap. Non-decreasing in `raw`."""
    if not (isinstance(raw, int | float) and math.isfinite(raw)):
        raw = 0.0
    value = CALIBRATION_TABLE[found.group][band(min(max(raw, 0.0), 1.0))]
    return round(min(value, found.cap()), 3)


def calibrate(guarded: GuardedSuggestion, context: GuardrailContext) -> GuardedSuggestion:
    """The guarded draft with its confidence calibrated; the provider's number (as the
    guardrails left it) is kept in `uncalibrated_confidence`. Calibrating a calibrated
    suggestion changes nothing more."""
    if guarded.uncalibrated_confidence is not None:
        return guarded
    raw = guarded.draft.confidence
    found = evidence(guarded.draft, context, fired=bool(guarded.notes))
    draft = guarded.draft.model_copy(update={"confidence": calibrated(raw, found)})
    return guarded.model_copy(update={"draft": draft, "uncalibrated_confidence": raw})


def guard_suggestion(draft: SuggestionDraft, context: GuardrailContext) -> GuardedSuggestion:
    """What every caller stores or shows, from any provider: the guardrails, then the
    calibrated confidence. Calibration is a step of its own so that the guardrails stay
    idempotent and `is_safe` stays exact about what they leave alone."""
    return calibrate(apply_guardrails(draft, context), context)
