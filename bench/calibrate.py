"""Fit the calibration table on the calibration set, and print it.

    uv run python -m bench.calibrate

Runs the offline rules and the scripted model (bench.scripted_llm) over the calibration set
only, `tests/data/ai_eval_calibration/`, through the guardrails, and pools their guarded
drafts. Not the tuned set: the rules were written against it, so how often they are right
there says little about mail they have not seen. Not the blind set: it judges the result.
For each evidence group of `domain.guardrails.calibration` and each band of the provider's
confidence, it counts the drafts and those a careful agent accepts (as
bench.ai_eval scores them), and takes a one-sided 95% Wilson lower bound of that share: the
set is small, so the point estimate is loose.
Where a higher band's bound falls below a lower one's, the two are merged and share one
value (pool-adjacent-violators), so a higher provider number never gets a lower value; an
empty band takes the value of the band below it. The printed table is pasted into
CALIBRATION_TABLE.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Iterable, Sequence

from bench.ai_eval import CALIBRATION, Outcome, evaluate
from domain.guardrails.calibration import BAND_EDGES, BAND_LABELS, CALIBRATION_TABLE, Group, band
from domain.threshold_proposal import wilson_lower_bound  # one-sided 95%, as here

# A group with no draft at all: no better than a coin.
UNKNOWN = 0.5
FIT_PROVIDERS = ("offline", "scripted-llm")

Counts = list[tuple[int, int]]  # (acceptable, count) per band, highest band first


def band_counts(outcomes: Iterable[Outcome]) -> dict[Group, Counts]:
    """Acceptable and count per group and band of the provider's (uncalibrated) number."""
    counts = {group: [(0, 0) for _ in BAND_EDGES] for group in Group}
    for outcome in outcomes:
        if outcome.error is not None or outcome.raw_confidence is None:
            continue
        rows = counts[Group(outcome.group)]
        index = band(outcome.raw_confidence)
        ok, n = rows[index]
        rows[index] = (ok + outcome.acceptable, n + 1)
    return counts


def fit_row(counts: Counts) -> tuple[float, ...]:
    """The table's row for one group: a lower bound per band, monotone in the band.

    Pool-adjacent-violators on the lower bound: going up from the lowest band, a band whose
    bound falls below the one beneath it is merged with it (their drafts counted together)
    until the bounds rise with the bands. An empty band takes the value of the nearest
    lower band with drafts, else of the nearest higher one, else UNKNOWN."""
    # Blocks from the lowest band up: (first band index, acceptable, count); indices count
    # from the highest band, as in BAND_EDGES.
    blocks: list[tuple[list[int], int, int]] = []
    for index in reversed(range(len(counts))):
        ok, n = counts[index]
        if not n:
            continue
        blocks.append(([index], ok, n))
        while len(blocks) >= 2 and wilson_lower_bound(*blocks[-1][1:]) < wilson_lower_bound(
            *blocks[-2][1:]
        ):
            upper, lower = blocks.pop(), blocks.pop()
            blocks.append((lower[0] + upper[0], lower[1] + upper[1], lower[2] + upper[2]))
    values: list[float | None] = [None] * len(counts)
    for members, ok, n in blocks:
        for index in members:
            values[index] = wilson_lower_bound(ok, n)
    filled: list[float] = []
    for index, own in enumerate(values):
        below = [v for v in values[index:] if v is not None]
        above = [v for v in reversed(values[:index]) if v is not None]
        filled.append(own if own is not None else (below or above or [UNKNOWN])[0])
    # Two decimals, rounded down: the table never claims more than the bound.
    return tuple(math.floor(value * 100 + 1e-9) / 100 for value in filled)


def fit(outcomes: Iterable[Outcome]) -> dict[Group, tuple[float, ...]]:
    return {group: fit_row(counts) for group, counts in band_counts(outcomes).items()}


def render(counts: dict[Group, Counts], table: dict[Group, tuple[float, ...]]) -> str:
    header = f"{'group':<14}" + "".join(f"{label:>22}" for label in BAND_LABELS)
    lines = [
        "Fitted on the calibration set only (offline rules and the scripted model, pooled).",
        "Per band of the provider's confidence: acceptable / drafts -> calibrated value.",
        "",
        header,
    ]
    for group in Group:
        cells = "".join(
            f"{f'{ok}/{n} -> {value:.2f}':>22}"
            for (ok, n), value in zip(counts[group], table[group], strict=True)
        )
        lines.append(f"{group.value:<14}{cells}")
    lines += ["", "CALIBRATION_TABLE: dict[Group, tuple[float, float, float, float]] = {"]
    for group in Group:
        values = ", ".join(f"{value}" for value in table[group])
        lines.append(f"    Group.{group.name}: ({values}),")
    lines.append("}")
    same = all(tuple(CALIBRATION_TABLE[group]) == table[group] for group in Group)
    lines.append("")
    lines.append(
        "the table in domain/guardrails/calibration.py is this one"
        if same
        else "the table in domain/guardrails/calibration.py differs: paste the one above"
    )
    return "\n".join(lines)


async def fit_outcomes(providers: Sequence[str] = FIT_PROVIDERS) -> list[Outcome]:
    reports = await evaluate(providers, CALIBRATION)
    return [outcome for report in reports for outcome in report.outcomes]


def main() -> int:
    outcomes = asyncio.run(fit_outcomes())
    counts = band_counts(outcomes)
    print(render(counts, fit(outcomes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
