"""`deskpilot suggest`, run through typer as `deskpilot` will register it: against the offline
rules, and against the LLM sandbox over loopback through the real OpenAI SDK."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from fastapi import FastAPI
from typer.testing import CliRunner

from bench.ai_eval import DATA_DIR, case_email, load_cases
from deskpilot.suggest_command import suggest, unwrap_order
from domain.guardrails.calibration import CALIBRATION_TABLE, WEAK_EVIDENCE_CAP, Group, band
from kernel.settings import get_settings
from sandbox.llm import Answer, HttpError, LlmSandbox, Outcome, Refusal
from sandbox.server import serve_app

KEY = "sk-sandbox"
MODEL = "gpt-sandbox"
ESPRESSO_LINE = "gid://shopify/LineItem/10061"
RESULT_KEYS = {
    "provider",
    "intent",
    "proposed_action",
    "confidence",
    "uncalibrated_confidence",
    "reply",
    "payload",
    "rationale",
    "order",
    "guardrails",
    "original_action",
    "tokens",
}

app = typer.Typer()


@app.callback()
def _deskpilot() -> None:
    """Stands in for `deskpilot`: with a callback typer keeps `suggest` a subcommand."""


app.command()(suggest)


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # No key or base URL from the developer's shell or a .env: the offline rules unless a
    # test points the command at the sandbox itself.
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def store_order(name: str) -> dict[str, Any]:
    orders = json.loads((DATA_DIR / "orders.json").read_text(encoding="utf-8"))
    return next(order for order in orders if order["name"] == name)


def email_file(tmp_path: Path, case_id: str) -> Path:
    case = next(case for case in load_cases() if case.id == case_id)
    path = tmp_path / f"{case_id}.eml"
    path.write_bytes(case_email(case))
    return path


def json_file(tmp_path: Path, name: str, document: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, ["suggest", *(str(a) for a in args)])


def parsed_output(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --- the offline provider -------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        lambda order: order,
        lambda order: {"order": order},
        lambda order: {"data": {"order": order}, "extensions": {"cost": {}}},
    ],
    ids=["order", "data", "response"],
)
def test_json_from_the_offline_rules_on_the_senders_order(tmp_path: Path, wrap: Any) -> None:
    eml = email_file(tmp_path, "refund-angry-espresso")  # Mike, about his order #1006
    order = json_file(tmp_path, "order.json", wrap(store_order("#1006")))
    out = parsed_output(run(eml, "--order", order, "--json"))
    assert set(out) == RESULT_KEYS
    assert out["provider"] == "offline-rules"
    assert out["proposed_action"] == "REFUND"
    assert out["original_action"] == "REFUND"
    assert out["order"] == "#1006"
    # "Refund the machine ... you can keep the descaler": that line only, not the order.
    assert out["payload"] == {
        "line_items": [{"line_item_id": "gid://shopify/LineItem/10061", "quantity": 1}]
    }
    assert out["guardrails"] == []
    assert 0 <= out["confidence"] <= 1
    assert "#1006" in out["reply"]
    assert out["tokens"] == {"prompt": 0, "completion": 0}


def test_readable_summary(tmp_path: Path) -> None:
    eml = email_file(tmp_path, "cancel-angry-not-shipped")  # Noah, #1018 not shipped
    order = json_file(tmp_path, "order.json", store_order("#1018"))
    result = run(eml, "--order", order)
    assert result.exit_code == 0, result.stderr
    assert "Suggestion from offline-rules, on order #1018" in result.stdout
    assert "action      CANCEL" in result.stdout
    assert "guardrails  none fired" in result.stdout
    assert "Reply:" in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_someone_elses_order_is_not_acted_on(tmp_path: Path) -> None:
    # Tom writes with Rachel's order file: the order is not his, whatever he asks.
    eml = email_file(tmp_path, "no-order-jacket-refund")
    order = json_file(tmp_path, "order.json", store_order("#1022"))
    out = parsed_output(run(eml, "--order", order, "--json"))
    assert out["original_action"] == "REFUND"
    assert out["proposed_action"] == "INFO_REQUEST"
    assert out["order"] is None
    assert out["payload"] == {}
    assert [note["code"] for note in out["guardrails"]] == ["ORDER_NOT_SENDERS"]
    assert "#1022" not in out["reply"]
    assert out["confidence"] <= 0.3

    summary = run(eml, "--order", order)
    assert "INFO_REQUEST (proposed REFUND, changed by the guardrails)" in summary.stdout
    assert "- ORDER_NOT_SENDERS:" in summary.stdout


def test_without_an_order_the_customer_is_asked_for_it(tmp_path: Path) -> None:
    out = parsed_output(run(email_file(tmp_path, "no-order-angry"), "--json"))
    assert out["proposed_action"] == "INFO_REQUEST"
    assert out["order"] is None
    assert out["payload"] == {}


# --- files the command cannot use -----------------------------------------------------------


def test_a_missing_email_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere.eml", "--json")
    assert result.exit_code == 2
    assert "cannot read the email" in result.stderr
    assert "nowhere.eml" in result.stderr
    assert result.stdout == ""


def test_a_directory_is_not_an_email(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.exit_code == 2
    assert "cannot read the email" in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the body is empty"),
        (b'{"from": "ana@example.com", "text": "refund"}', "not an RFC 5322 message"),
        (b"Subject: hello\r\n\r\nno sender here\r\n", "no usable From address"),
    ],
)
def test_a_malformed_email_is_a_usage_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.eml"
    path.write_bytes(content)
    result = run(path)
    assert result.exit_code == 2
    assert "is not an email we can read" in result.stderr
    assert reason in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "is not JSON"),
        ('{"data": {"order": null}}', "expected a Shopify order object"),
        ('{"errors": [{"message": "Throttled"}]}', "the order has no 'id'"),
        ('[{"id": "gid://shopify/Order/1"}]', "expected a Shopify order object"),
        ('{"id": "gid://shopify/Order/1", "name": "#1", "lineItems": {"nodes": [{}]}}', "'id'"),
        (
            '{"id": "gid://shopify/Order/1", "name": "#1", '
            '"currentTotalPriceSet": {"shopMoney": {"amount": "lots"}}}',
            "is not a Shopify order",
        ),
    ],
)
def test_a_malformed_order_is_a_usage_error(tmp_path: Path, content: str, reason: str) -> None:
    order = tmp_path / "order.json"
    order.write_text(content, encoding="utf-8")
    result = run(email_file(tmp_path, "refund-angry-espresso"), "--order", order, "--json")
    assert result.exit_code == 2
    assert reason in result.stderr
    assert result.stdout == ""


def test_a_missing_order_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(email_file(tmp_path, "refund-angry-espresso"), "--order", tmp_path / "no.json")
    assert result.exit_code == 2
    assert "cannot read the order" in result.stderr


def test_unwrap_order_keeps_an_order_that_has_a_field_named_data() -> None:
    order = {"id": "gid://shopify/Order/1", "name": "#1", "data": "x", "order": "y"}
    assert unwrap_order(order) is order


# --- the LLM, served by the sandbox on loopback ---------------------------------------------


@contextmanager
def served(sandbox: LlmSandbox) -> Iterator[str]:
    """The sandbox on a loopback port in its own thread: the command runs its own event loop."""
    ready: queue.Queue[tuple[str, asyncio.AbstractEventLoop, asyncio.Event] | BaseException]
    ready = queue.Queue()

    async def serve(app: FastAPI) -> None:
        stop = asyncio.Event()
        try:
            async with serve_app(app) as url:
                ready.put((url, asyncio.get_running_loop(), stop))
                await stop.wait()
        except BaseException as exc:  # handed to the test's thread
            ready.put(exc)

    thread = threading.Thread(target=asyncio.run, args=(serve(sandbox.app()),), daemon=True)
    thread.start()
    started = ready.get(timeout=15)
    if isinstance(started, BaseException):
        raise started
    url, loop, stop = started
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LlmSandbox]:
    sandbox = LlmSandbox(api_key=KEY)
    with served(sandbox) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_MODEL", MODEL)
        get_settings.cache_clear()
        yield sandbox


def answer(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "intent": "damaged_item",
        "proposed_action": "REFUND",
        "payload": {
            "refund_amount": None,
            "refund_line_items": [{"line_item_id": ESPRESSO_LINE, "quantity": 1}],
            "cancel_reason": None,
            "new_address": None,
            "replacements": [],
        },
        "reply": "Hi Mike,\n\nSorry about the cracked tank. We have refunded the espresso "
        "machine to your card.\n\nBest regards,\nour store",
        "confidence": 0.86,
        "rationale": "The machine arrived damaged; the customer wants a refund for it only.",
        "order_name": "#1006",
    }
    return {**values, **changes}


def test_the_llm_drafts_through_the_openai_sdk(tmp_path: Path, llm: LlmSandbox) -> None:
    llm.push(Answer(answer()))
    eml = email_file(tmp_path, "refund-angry-espresso")
    order = json_file(tmp_path, "order.json", {"data": {"order": store_order("#1006")}})
    out = parsed_output(run(eml, "--order", order, "--json"))
    assert out["provider"] == f"openai:{MODEL}"
    assert out["proposed_action"] == "REFUND"
    assert out["payload"] == {"line_items": [{"line_item_id": ESPRESSO_LINE, "quantity": 1}]}
    assert out["order"] == "#1006"
    # Calibrated: the model's 0.86 is an input. It named no language, which is weak
    # evidence for moving money, so the draft stays below every money playbook threshold.
    assert out["uncalibrated_confidence"] == 0.86
    assert out["confidence"] == CALIBRATION_TABLE[Group.WEAK][band(0.86)] <= WEAK_EVIDENCE_CAP
    assert out["guardrails"] == []
    assert out["tokens"]["prompt"] > 0 and out["tokens"]["completion"] > 0

    (request,) = llm.requests
    assert request.token == KEY
    assert request.body["model"] == MODEL
    prompt = request.text()
    assert "cracked water tank" in prompt  # the customer's words
    assert ESPRESSO_LINE in prompt and "#1006" in prompt  # the order, mapped from Shopify
    assert '"our store"' in prompt  # no store name in the settings


def test_an_llm_proposal_beyond_the_order_is_held(tmp_path: Path, llm: LlmSandbox) -> None:
    greedy = answer(
        payload={**answer()["payload"], "refund_amount": "5000.00", "refund_line_items": []}
    )
    llm.push(Answer(greedy))
    eml = email_file(tmp_path, "inject-admin-mode-refund")
    order = json_file(tmp_path, "order.json", store_order("#1006"))
    out = parsed_output(run(eml, "--order", order, "--json"))
    assert out["original_action"] == "REFUND"
    assert out["proposed_action"] != "REFUND"
    assert out["payload"] == {}
    codes = {note["code"] for note in out["guardrails"]}
    assert {"REFUND_EXCEEDS_REFUNDABLE", "PROMPT_INJECTION"} & codes
    assert "5000" not in out["reply"] and "5,000" not in out["reply"]
    assert out["confidence"] <= 0.3


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (HttpError(500), "HTTP 500"),
        (HttpError(429, retry_after=7), "HTTP 429"),
        (Refusal("I can't help with that."), "refused"),
    ],
)
def test_an_llm_failure_exits_1_with_the_reason(
    tmp_path: Path, llm: LlmSandbox, outcome: Outcome, message: str
) -> None:
    llm.push(outcome)
    result = run(email_file(tmp_path, "refund-angry-espresso"), "--json")
    assert result.exit_code == 1
    assert "the suggestion failed" in result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_a_wrong_api_key_exits_1(
    tmp_path: Path, llm: LlmSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    get_settings.cache_clear()
    result = run(email_file(tmp_path, "refund-angry-espresso"))
    assert result.exit_code == 1
    assert "HTTP 401" in result.stderr


def test_a_broken_configuration_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKPILOT_API_PORT", "not-a-port")
    get_settings.cache_clear()
    result = run(email_file(tmp_path, "refund-angry-espresso"))
    assert result.exit_code == 2
    assert "the configuration is not valid" in result.stderr
    assert "DESKPILOT_API_PORT" in result.stderr
