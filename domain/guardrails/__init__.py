"""Guardrails: every suggestion, from any provider, is checked here before it is stored.

Pure functions over values. `apply_guardrails` returns the draft made safe and the notes
saying why it changed; `is_safe` is the invariant its result always satisfies;
`guard_suggestion` adds the calibrated confidence, and is what every caller stores.
"""

from domain.guardrails.calibration import calibrate, guard_suggestion
from domain.guardrails.context import context_for, placed_by
from domain.guardrails.engine import apply_guardrails, is_safe
from domain.guardrails.model import (
    FIRED_CONFIDENCE_CAP,
    Code,
    GuardedSuggestion,
    GuardrailContext,
    GuardrailNote,
)

__all__ = [
    "FIRED_CONFIDENCE_CAP",
    "Code",
    "GuardedSuggestion",
    "GuardrailContext",
    "GuardrailNote",
    "apply_guardrails",
    "calibrate",
    "context_for",
    "guard_suggestion",
    "is_safe",
    "placed_by",
]
