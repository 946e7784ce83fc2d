"""How good and how safe the suggestions are, per provider, on the labelled sets.

    uv run python -m bench.ai_eval [--set tuned|blind|calibration|both|all]
        [--provider offline|scripted-llm|openai] [--json] [--plot PATH]

Three sets, each a store's `orders.json` (its orders as Shopify's Admin GraphQL API returns
them) and `cases.jsonl` (one customer email a line with the action and order a careful
agent would propose):

- tuned, `tests/data/ai_eval/`: the offline rules were written with this set in view;
- blind, `tests/data/ai_eval_blind/`: written before the rule changes of issue 15 and never
  used to tune;
- calibration, `tests/data/ai_eval_calibration/`: written without reading the rules or the
  other sets, and used only by `bench.calibrate` to fit the confidence table.

Each case goes the way of a real message: the email is built and parsed as RFC 5322 (an
`html` case has only a text/html part), the sender's orders are those placed with the
sender's address, the order is matched as `deskpilot suggest` matches it, and the draft
passes through the guardrails. Scored on the guarded draft (what a merchant sees): action
type, order, unsafe proposals (`is_safe`), guardrail notes fired, tokens per suggestion,
and, on cases labelled with them, the "wants a human" and "legal threat" signals.

Calibration: a suggestion is acceptable when it has the labelled action and, for an action
that moves money or goods, the labelled order (and is safe). For each provider and set, the
share acceptable and the count in the confidence bands >= 0.9, 0.8-0.9, 0.6-0.8 and < 0.6,
over all suggestions and over those that move money or goods (REFUND, CANCEL, REPLACE_ITEM
and ADDRESS_CHANGE, which decides where goods go), before calibration (the provider's number
as the guardrails left it) and after (what is stored). A reliability diagram of both is
saved as a PNG (default bench/out/ai_eval_reliability.png; the path is printed).

Providers: the offline rules and the scripted model always run (`scripted-llm`: the answers
in each set's llm_answers.jsonl, written by `bench.scripted_llm`, served by the LLM sandbox
on loopback to the real OpenAI suggester); an OpenAI-compatible model when OPENAI_API_KEY or
OPENAI_BASE_URL is set. An unsafe proposal on either set makes the run exit with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deskpilot.suggest_command import (
    guarded_suggestion,
    match_sender_order,
    suggestion_inputs,
)
from domain.guardrails import GuardedSuggestion, GuardrailContext, is_safe, placed_by
from domain.guardrails.calibration import BAND_EDGES, BAND_LABELS, MOVES_MONEY_OR_GOODS, band
from domain.guardrails.calibration import evidence as calibration_evidence
from domain.mail.mime import parse_email
from integrations.llm import suggester_from_settings
from integrations.llm.openai_suggester import OpenAISuggester
from integrations.llm.prompt import user_content
from integrations.offline_suggester import OfflineSuggester
from integrations.ports import SuggesterPort
from integrations.shopify.orders import order_snapshot
from kernel.enums import REPLY_ONLY, ActionType
from kernel.errors import IntegrationError
from kernel.settings import get_settings
from kernel.values import OrderSnapshot, SuggestionRequest
from sandbox import llm as llm_sandbox
from sandbox.server import serve_app

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "ai_eval"
BLIND_DIR = DATA_DIR.parent / "ai_eval_blind"
CALIBRATION_DIR = DATA_DIR.parent / "ai_eval_calibration"
STORE_NAME = "Northwind Goods"
# The store's support mail domain: replies quote its address, which is no injection.
STORE_DOMAIN = "northwind.example"
# Enough to keep a remote model busy without tripping a small account's rate limit.
LLM_CONCURRENCY = 4
# What a suggestion signals for the playbooks, as `SuggestionDraft` names them.
SIGNALS = ("wants_human", "legal_threat")
# The scripted model's answers, one a case, beside each set's cases (see bench.scripted_llm).
ANSWERS_FILE = "llm_answers.jsonl"
SCRIPTED_MODEL = "scripted-overconfident"
SCRIPTED_KEY = "sk-scripted"
# Relative to where the bench runs (the repository's root, as the README runs it).
PLOT_PATH = Path("bench") / "out" / "ai_eval_reliability.png"


@dataclass(frozen=True)
class EvalSet:
    """A labelled set: its directory and the store its orders and emails belong to."""

    key: str
    label: str
    directory: Path
    store_name: str
    store_domain: str


TUNED = EvalSet(
    key="tuned",
    label="tuned (rules were written with this set in view)",
    directory=DATA_DIR,
    store_name=STORE_NAME,
    store_domain=STORE_DOMAIN,
)
BLIND = EvalSet(
    key="blind",
    label="blind (never used to tune)",
    directory=BLIND_DIR,
    store_name="Fernhill Supply Co.",
    store_domain="fernhill.example",
)
CALIBRATION = EvalSet(
    key="calibration",
    label="calibration (fits the confidence table only; never used to write rules)",
    directory=CALIBRATION_DIR,
    store_name="Alder & Finch Outfitters",
    store_domain="alderfinch.example",
)
SETS = {eval_set.key: eval_set for eval_set in (TUNED, BLIND, CALIBRATION)}
# --set choices that name several sets.
GROUPS = {"both": [TUNED, BLIND], "all": [TUNED, BLIND, CALIBRATION]}


class EvalCase(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    id: str
    sender: str = Field(alias="from")  # "Name <address>"
    subject: str
    body: str = ""  # plain text; `>` lines and quoted headers are history
    html: str | None = None  # instead of `body`: the email has only a text/html part
    expected_action: ActionType
    expected_order: str | None  # the sender's order the right suggestion is about
    # The signals a careful agent reads in the message; None where the set does not say.
    wants_human: bool | None = None
    legal_threat: bool | None = None
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_body(self) -> EvalCase:
        if bool(self.body) == bool(self.html):
            raise ValueError(f"{self.id}: a case has either a plain `body` or an `html` part")
        return self

    def signal(self, name: str) -> bool | None:
        value: bool | None = getattr(self, name)
        return value


# --- the labelled sets ----------------------------------------------------------------------


def load_cases(directory: Path = DATA_DIR) -> list[EvalCase]:
    lines = (directory / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    return [EvalCase.model_validate_json(line) for line in lines if line.strip()]


def load_answers(directory: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """The scripted model's answers for a set, by case id."""
    lines = (directory / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return {row["id"]: row["answer"] for row in rows}


def load_orders(directory: Path = DATA_DIR) -> list[OrderSnapshot]:
    """The store's orders, newest first (the order Shopify's searches list them in)."""
    raw = json.loads((directory / "orders.json").read_text(encoding="utf-8"))
    raw.sort(key=lambda order: order["createdAt"], reverse=True)
    return [order_snapshot(order) for order in raw]


def case_email(case: EvalCase, store_domain: str = STORE_DOMAIN) -> bytes:
    """The email as a mail client sends it: text/plain, or for an `html` case only a
    text/html part (what many clients send when the writer never touches plain text)."""
    message = EmailMessage()
    message["From"] = case.sender
    message["To"] = f"support@{store_domain}"
    message["Subject"] = case.subject
    message["Message-ID"] = f"<{case.id}@eval.deskpilot.example>"
    message["Date"] = format_datetime(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    if case.html is not None:
        message.set_content(case.html, subtype="html")
    else:
        message.set_content(case.body)
    return bytes(message)


def case_inputs(
    case: EvalCase, orders: Sequence[OrderSnapshot], eval_set: EvalSet = TUNED
) -> tuple[SuggestionRequest, GuardrailContext]:
    """The request and guardrail context for a case, built as for a real message."""
    parsed = parse_email(case_email(case, eval_set.store_domain))
    own = [order for order in orders if placed_by(order, parsed.from_address)]
    matched = match_sender_order(f"{parsed.subject}\n{parsed.text}", own)
    return suggestion_inputs(
        parsed,
        store_name=eval_set.store_name,
        order=matched,
        sender_orders=own,
        candidates=own,
        store_domains=[eval_set.store_domain],
    )


# --- scoring (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a provider made of one case, after the guardrails."""

    case: EvalCase
    action: ActionType | None  # None: the provider failed
    order: str | None
    proposed: ActionType | None  # before the guardrails
    safe: bool
    notes: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    signals: frozenset[str] = frozenset()  # the SIGNALS the guarded draft raised
    confidence: float | None = None  # as stored: calibrated
    raw_confidence: float | None = None  # the provider's, as the guardrails left it
    group: str = ""  # the calibration's evidence group

    def signalled(self, name: str) -> bool:
        return name in self.signals

    @property
    def acceptable(self) -> bool:
        """What a careful agent accepts: the labelled action, on the labelled order when the
        action changes the store, and nothing unsafe."""
        if self.error is not None or not self.safe or self.action != self.case.expected_action:
            return False
        return self.action in REPLY_ONLY or self.order == self.case.expected_order

    @property
    def moves_money_or_goods(self) -> bool:
        return self.action in MOVES_MONEY_OR_GOODS


def outcome_of(case: EvalCase, guarded: GuardedSuggestion, context: GuardrailContext) -> Outcome:
    draft = guarded.draft
    raw = guarded.uncalibrated_confidence
    return Outcome(
        case=case,
        action=draft.action,
        order=guarded.order.name if guarded.order is not None else None,
        proposed=guarded.original.action,
        safe=is_safe(draft, context),
        notes=tuple(note.code for note in guarded.notes),
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        signals=frozenset(name for name in SIGNALS if getattr(draft, name)),
        confidence=draft.confidence,
        raw_confidence=raw if raw is not None else draft.confidence,
        group=calibration_evidence(draft, context, fired=bool(guarded.notes)).group.value,
    )


def failed(case: EvalCase, error: str) -> Outcome:
    # A failed call stores nothing, so it is safe; it still counts as a miss.
    return Outcome(case=case, action=None, order=None, proposed=None, safe=True, error=error)


@dataclass
class SignalScore:
    """One signal over the cases labelled for it (a label of True or False)."""

    labelled: int = 0  # cases with a label for the signal
    expected: int = 0  # of those, labelled True
    caught: int = 0  # labelled True and signalled
    false_alarms: int = 0  # labelled False and signalled

    def add(self, expected: bool, signalled: bool) -> None:
        self.labelled += 1
        self.expected += expected
        self.caught += expected and signalled
        self.false_alarms += signalled and not expected

    def as_dict(self) -> dict[str, int]:
        return {
            "labelled": self.labelled,
            "expected": self.expected,
            "caught": self.caught,
            "false_alarms": self.false_alarms,
        }


@dataclass
class Bucket:
    """Suggestions in one confidence band: how many, and how many were acceptable."""

    count: int = 0
    acceptable: int = 0

    @property
    def precision(self) -> float | None:
        return self.acceptable / self.count if self.count else None

    def as_dict(self, label: str) -> dict[str, Any]:
        precision = self.precision
        return {
            "band": label,
            "count": self.count,
            "acceptable": self.acceptable,
            "precision": round(precision, 4) if precision is not None else None,
        }


STAGES = ("before", "after")  # calibration
SCOPES = ("all", "money")  # every suggestion; those that move money or goods


def buckets(outcomes: Iterable[Outcome], *, stage: str, scope: str) -> list[Bucket]:
    """Count and acceptable per band of BAND_LABELS, highest first; a failed call made no
    suggestion and is left out."""
    rows = [Bucket() for _ in BAND_EDGES]
    for outcome in outcomes:
        value = outcome.confidence if stage == "after" else outcome.raw_confidence
        if outcome.error is not None or value is None:
            continue
        if scope == "money" and not outcome.moves_money_or_goods:
            continue
        row = rows[band(value)]
        row.count += 1
        row.acceptable += outcome.acceptable
    return rows


@dataclass
class Score:
    cases: int = 0
    action_correct: int = 0
    order_correct: int = 0
    unsafe: int = 0
    errors: int = 0
    changed_by_guardrails: int = 0  # cases where a guardrail fired
    notes: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    signals: dict[str, SignalScore] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.cases += 1
        self.action_correct += outcome.action == outcome.case.expected_action
        self.order_correct += outcome.error is None and outcome.order == outcome.case.expected_order
        self.unsafe += not outcome.safe
        self.errors += outcome.error is not None
        self.changed_by_guardrails += bool(outcome.notes)
        self.notes.update(outcome.notes)
        self.prompt_tokens += outcome.prompt_tokens
        self.completion_tokens += outcome.completion_tokens
        for name in SIGNALS:
            expected = outcome.case.signal(name)
            if expected is not None:
                signal = self.signals.setdefault(name, SignalScore())
                signal.add(expected, outcome.signalled(name))

    @property
    def action_accuracy(self) -> float:
        return self.action_correct / self.cases if self.cases else 0.0

    @property
    def order_accuracy(self) -> float:
        return self.order_correct / self.cases if self.cases else 0.0

    def mean_tokens(self) -> tuple[float, float]:
        """Per suggestion made: a failed call has no usage to average in."""
        made = self.cases - self.errors
        if not made:
            return 0.0, 0.0
        return self.prompt_tokens / made, self.completion_tokens / made

    def as_dict(self) -> dict[str, Any]:
        prompt, completion = self.mean_tokens()
        return {
            "cases": self.cases,
            "action_accuracy": round(self.action_accuracy, 4),
            "order_accuracy": round(self.order_accuracy, 4),
            "unsafe": self.unsafe,
            "errors": self.errors,
            "changed_by_guardrails": self.changed_by_guardrails,
            "guardrail_notes": dict(self.notes.most_common()),
            "mean_prompt_tokens": round(prompt, 1),
            "mean_completion_tokens": round(completion, 1),
            "signals": {name: signal.as_dict() for name, signal in self.signals.items()},
        }


@dataclass
class Report:
    provider: str
    overall: Score
    by_tag: dict[str, Score]
    outcomes: list[Outcome] = field(default_factory=list)
    eval_set: str = TUNED.key

    @property
    def unsafe_outcomes(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.safe]

    def buckets(self, stage: str, scope: str) -> list[Bucket]:
        return buckets(self.outcomes, stage=stage, scope=scope)

    def calibration_dict(self) -> dict[str, Any]:
        return {
            stage: {
                scope: [
                    row.as_dict(label)
                    for row, label in zip(self.buckets(stage, scope), BAND_LABELS, strict=True)
                ]
                for scope in SCOPES
            }
            for stage in STAGES
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "set": self.eval_set,
            **self.overall.as_dict(),
            "calibration": self.calibration_dict(),
            "by_tag": {tag: score.as_dict() for tag, score in sorted(self.by_tag.items())},
            "cases": [_case_dict(outcome) for outcome in self.outcomes],
        }


def _case_dict(outcome: Outcome) -> dict[str, Any]:
    def value(action: ActionType | None) -> str | None:
        return action.value if action is not None else None

    return {
        "id": outcome.case.id,
        "expected_action": outcome.case.expected_action.value,
        "action": value(outcome.action),
        "proposed": value(outcome.proposed),
        "expected_order": outcome.case.expected_order,
        "order": outcome.order,
        "safe": outcome.safe,
        "guardrails": list(outcome.notes),
        "error": outcome.error,
        "signals": sorted(outcome.signals),
        "confidence": outcome.confidence,
        "raw_confidence": outcome.raw_confidence,
        "calibration_group": outcome.group,
        "acceptable": outcome.acceptable,
    }


def score(provider: str, outcomes: Iterable[Outcome], eval_set: str = TUNED.key) -> Report:
    """The overall score and one per tag; the expected action counts as a tag too."""
    overall = Score()
    by_tag: dict[str, Score] = {}
    kept: list[Outcome] = []
    for outcome in outcomes:
        kept.append(outcome)
        overall.add(outcome)
        tags = (*outcome.case.tags, f"expect:{outcome.case.expected_action.value}")
        for tag in tags:
            by_tag.setdefault(tag, Score()).add(outcome)
    return Report(
        provider=provider, overall=overall, by_tag=by_tag, outcomes=kept, eval_set=eval_set
    )


# --- running a provider ---------------------------------------------------------------------


async def run_provider(
    suggester: SuggesterPort,
    cases: Sequence[EvalCase],
    orders: Sequence[OrderSnapshot],
    concurrency: int = 1,
    eval_set: EvalSet = TUNED,
) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)

    async def one(case: EvalCase) -> Outcome:
        request, context = case_inputs(case, orders, eval_set)
        async with gate:
            try:
                guarded = await guarded_suggestion(suggester, request, context)
            except IntegrationError as exc:
                return failed(case, str(exc))
        return outcome_of(case, guarded, context)

    return list(await asyncio.gather(*(one(case) for case in cases)))


def llm_configured() -> bool:
    settings = get_settings()
    key = settings.openai_api_key.get_secret_value().strip() if settings.openai_api_key else ""
    return bool(key or (settings.openai_base_url or "").strip())


def _prompt_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scripted_responder(
    cases: Sequence[EvalCase], orders: Sequence[OrderSnapshot], eval_set: EvalSet
) -> llm_sandbox.Responder:
    """The sandbox's answer to each case's prompt: its scripted answer, found by the user
    message the OpenAI suggester builds for the case (concurrent calls arrive in any order).
    A prompt without one gets a 404, which the bench counts as a failed call."""
    answers = load_answers(eval_set.directory)
    by_prompt: dict[str, dict[str, Any]] = {}
    for case in cases:
        request, _ = case_inputs(case, orders, eval_set)
        if case.id in answers:
            by_prompt[_prompt_key(user_content(request))] = answers[case.id]

    def respond(request: llm_sandbox.ChatRequest) -> llm_sandbox.Outcome:
        users = [m for m in request.messages if m.get("role") == "user"]
        text = str(users[-1].get("content") or "") if users else ""
        found = by_prompt.get(_prompt_key(text))
        if found is None:
            return llm_sandbox.HttpError(404, "no scripted answer for this prompt")
        return llm_sandbox.Answer(found)

    return respond


async def run_scripted(
    cases: Sequence[EvalCase], orders: Sequence[OrderSnapshot], eval_set: EvalSet
) -> tuple[str, list[Outcome]]:
    """The scripted model through the real OpenAI suggester and SDK, against the LLM
    sandbox on loopback."""
    sandbox = llm_sandbox.LlmSandbox(
        api_key=SCRIPTED_KEY, default_responder=scripted_responder(cases, orders, eval_set)
    )
    async with serve_app(sandbox.app()) as url:
        suggester = OpenAISuggester(
            api_key=SCRIPTED_KEY, model=SCRIPTED_MODEL, base_url=f"{url}/v1"
        )
        try:
            outcomes = await run_provider(suggester, cases, orders, LLM_CONCURRENCY, eval_set)
        finally:
            await suggester.aclose()
    return suggester.provider, outcomes


async def evaluate(providers: Sequence[str], eval_set: EvalSet = TUNED) -> list[Report]:
    cases, orders = load_cases(eval_set.directory), load_orders(eval_set.directory)
    reports = []
    for provider in providers:
        if provider == "offline":
            suggester: SuggesterPort = OfflineSuggester()
            outcomes = await run_provider(suggester, cases, orders, eval_set=eval_set)
            name = "offline-rules"
        elif provider == "scripted-llm":
            name, outcomes = await run_scripted(cases, orders, eval_set)
        else:
            suggester = suggester_from_settings(get_settings())
            name = str(getattr(suggester, "provider", "openai"))
            try:
                outcomes = await run_provider(
                    suggester, cases, orders, LLM_CONCURRENCY, eval_set=eval_set
                )
            finally:
                close = getattr(suggester, "aclose", None)
                if close is not None:
                    await close()
        reports.append(score(name, outcomes, eval_set.key))
    return reports


# --- output ---------------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{value * 100:5.1f}%"


def set_label(key: str) -> str:
    eval_set = SETS.get(key)
    return eval_set.label if eval_set is not None else key


def _signals_line(report: Report) -> str | None:
    signals = report.overall.signals
    if not signals:
        return None
    parts = [
        f"{name} caught {signal.caught} of {signal.expected}, "
        f"{signal.false_alarms} false alarm{'s' if signal.false_alarms != 1 else ''}"
        for name, signal in signals.items()
    ]
    return f"signals, {report.provider}: " + "; ".join(parts)


def _unsafe_line(report: Report) -> str | None:
    unsafe = report.unsafe_outcomes
    if not unsafe:
        return None

    def value(action: ActionType | None) -> str:
        return action.value if action is not None else "-"

    cases = ", ".join(f"{o.case.id} ({value(o.action)} on {o.order or 'no order'})" for o in unsafe)
    return f"unsafe, {report.provider}: {cases}"


def _tag_table(reports: Sequence[Report]) -> list[str]:
    tags = sorted({tag for report in reports for tag in report.by_tag})
    header = f"{'tag (action / order accuracy)':<32}{'n':>4}" + "".join(
        f"{report.provider[:22]:>24}" for report in reports
    )
    lines = [header]
    for tag in tags:
        n = max(r.by_tag[tag].cases for r in reports if tag in r.by_tag)
        cells = ""
        for report in reports:
            s = report.by_tag.get(tag)
            cell = f"{_pct(s.action_accuracy)} / {_pct(s.order_accuracy)}" if s else "-"
            cells += f"{cell:>24}"
        lines.append(f"{tag:<32}{n:>4}{cells}")
    return lines


def render(reports: Sequence[Report]) -> str:
    """One summary row per provider and set, then each set's notes, signals, unsafe
    proposals and per-tag figures under the set's name."""
    lines = [
        f"{'provider':<30}{'cases':>6}{'action':>8}{'order':>8}{'unsafe':>8}{'errors':>8}"
        f"{'guarded':>9}{'tokens in/out':>16}  set"
    ]
    for report in reports:
        s = report.overall
        prompt, completion = s.mean_tokens()
        lines.append(
            f"{report.provider:<30}{s.cases:>6}{_pct(s.action_accuracy):>8}"
            f"{_pct(s.order_accuracy):>8}{s.unsafe:>8}{s.errors:>8}{s.changed_by_guardrails:>9}"
            f"{f'{prompt:.0f} / {completion:.0f}':>16}  {set_label(report.eval_set)}"
        )
    keys = list(dict.fromkeys(report.eval_set for report in reports))
    for key in keys:
        in_set = [report for report in reports if report.eval_set == key]
        lines += ["", f"== {set_label(key)} =="]
        for report in in_set:
            notes = ", ".join(f"{code} {n}" for code, n in report.overall.notes.most_common())
            lines.append(f"guardrail notes, {report.provider}: {notes or 'none'}")
            lines += [line for line in (_signals_line(report), _unsafe_line(report)) if line]
        lines += ["", *_calibration_table(in_set), "", *_tag_table(in_set)]
    return "\n".join(lines)


def _bucket_cell(row: Bucket) -> str:
    precision = row.precision
    share = _pct(precision) if precision is not None else "    -"
    return f"{share} of {row.count:<3}"


def _calibration_table(reports: Sequence[Report]) -> list[str]:
    """Share acceptable and count per confidence band, before and after calibration, over
    all suggestions and over those that move money or goods."""
    header = f"{'calibration (acceptable of n)':<32}{'':<8}" + "".join(
        f"{label:>15}" for label in BAND_LABELS
    )
    lines = [header]
    for report in reports:
        for scope in SCOPES:
            for stage in STAGES:
                label = f"{report.provider[:22]} {scope}"
                cells = "".join(f"{_bucket_cell(row):>15}" for row in report.buckets(stage, scope))
                lines.append(f"{label:<32}{stage:<8}{cells}")
    return lines


RELIABILITY_BINS = 10


def reliability_points(outcomes: Iterable[Outcome], stage: str) -> list[tuple[float, float, int]]:
    """(mean confidence, share acceptable, count) per tenth of the confidence scale that
    holds a suggestion."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for outcome in outcomes:
        value = outcome.confidence if stage == "after" else outcome.raw_confidence
        if outcome.error is not None or value is None:
            continue
        index = min(int(value * RELIABILITY_BINS), RELIABILITY_BINS - 1)
        bins.setdefault(index, []).append((value, outcome.acceptable))
    points = []
    for index in sorted(bins):
        members = bins[index]
        mean = sum(value for value, _ in members) / len(members)
        share = sum(ok for _, ok in members) / len(members)
        points.append((mean, share, len(members)))
    return points


def save_reliability(reports: Sequence[Report], path: Path = PLOT_PATH) -> Path:
    """A reliability diagram, before and after calibration side by side: one curve per
    provider and set, each point a tenth of the scale sized by how many it holds."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    # One colour per provider, one line style per set.
    providers = list(dict.fromkeys(report.provider for report in reports))
    colours = {name: f"C{index % 10}" for index, name in enumerate(providers)}
    styles = {TUNED.key: "-", BLIND.key: "--"}
    for axis, stage in zip(axes, STAGES, strict=True):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="calibrated")
        for report in reports:
            points = reliability_points(report.outcomes, stage)
            if not points:
                continue
            xs, ys, ns = zip(*points, strict=True)
            colour = colours[report.provider]
            axis.plot(
                xs,
                ys,
                color=colour,
                linestyle=styles.get(report.eval_set, "-."),
                label=f"{report.provider} / {report.eval_set}",
            )
            axis.scatter(xs, ys, s=[12 + 6 * n for n in ns], color=colour, alpha=0.6)
        axis.set_title(f"{stage} calibration")
        axis.set_xlabel("confidence")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("share acceptable to a careful agent")
    axes[1].legend(loc="lower right", fontsize=8)
    figure.suptitle("deskpilot suggestions: reliability per provider and labelled set")
    figure.tight_layout()
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


async def evaluate_sets(providers: Sequence[str], eval_sets: Sequence[EvalSet]) -> list[Report]:
    reports: list[Report] = []
    for eval_set in eval_sets:
        reports += await evaluate(providers, eval_set)
    return reports


def exit_code(reports: Sequence[Report]) -> int:
    """Unsafe proposals are the one figure that must be zero, on either set: a run with one
    exits with 1."""
    return 1 if any(report.overall.unsafe for report in reports) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--provider",
        choices=("offline", "scripted-llm", "openai"),
        help="run only this provider (default: offline and scripted-llm, and openai when "
        "configured)",
    )
    parser.add_argument(
        "--set",
        dest="eval_set",
        choices=("tuned", "blind", "calibration", "both", "all"),
        default="both",
        help="the labelled set to run: tuned, blind (never used to tune), calibration (fits "
        "the confidence table), both (tuned and blind; the default) or all",
    )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        default=PLOT_PATH,
        help="where to save the reliability diagram (default: bench/out/ai_eval_reliability.png)",
    )
    args = parser.parse_args(argv)
    if args.provider == "openai" and not llm_configured():
        print("error: set OPENAI_API_KEY or OPENAI_BASE_URL to evaluate an LLM", file=sys.stderr)
        return 2
    if args.provider:
        providers = [args.provider]
    else:
        providers = ["offline", "scripted-llm", *(["openai"] if llm_configured() else [])]
    eval_sets = GROUPS.get(args.eval_set) or [SETS[args.eval_set]]
    reports = asyncio.run(evaluate_sets(providers, eval_sets))
    plot = save_reliability(reports, args.plot)
    if args.json:
        print(json.dumps([report.as_dict() for report in reports], indent=2))
        print(f"reliability diagram: {plot}", file=sys.stderr)  # stdout stays JSON
    else:
        print(render(reports))
        print(f"\nreliability diagram: {plot}")
    return exit_code(reports)


if __name__ == "__main__":
    sys.exit(main())
