"""An OpenAI-compatible chat-completions server for tests and the demo.

`POST /v1/chat/completions` answers with the next scripted outcome — a JSON answer,
a refusal, a length cut-off, a content-filter stop, raw (malformed) content, an
HTTP error, or a delay longer than the client waits — and, when the script is empty,
with whatever `default_responder` returns; `faults` makes a seeded share of those
unscripted calls fail instead (rate limits, server errors, timeouts, malformed JSON,
refusals). Responses and errors have the shapes of OpenAI's API, so the official SDK
parses them as it would the real thing.

Every request is recorded for assertions. A JSON answer is only given to a request
that asked for structured output (`response_format` json_schema, strict true) with a
schema a strict server accepts; anything else gets the 400 OpenAI would send.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header
from fastapi.responses import JSONResponse

Auth = Annotated[str | None, Header(alias="Authorization")]


# --- outcomes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """The assistant answers `content` (a JSON object, valid for the schema or not)."""

    content: dict[str, Any]


@dataclass(frozen=True)
class RawContent:
    """The assistant answers this exact text, e.g. malformed JSON."""

    text: str


@dataclass(frozen=True)
class Refusal:
    text: str = "I'm sorry, I can't help with that request."


@dataclass(frozen=True)
class LengthCutOff:
    """finish_reason "length": the answer stops partway through."""

    content: dict[str, Any]
    keep: float = 0.5  # the share of the serialized answer that is sent


@dataclass(frozen=True)
class ContentFiltered:
    """finish_reason "content_filter", with no content."""


@dataclass(frozen=True)
class HttpError:
    status: int
    message: str = ""
    retry_after: int | None = None


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` before answering `then` (by then a client with a shorter timeout
    has given up)."""

    seconds: float
    then: Outcome | None = None


Outcome = Answer | RawContent | Refusal | LengthCutOff | ContentFiltered | HttpError | Delay


@dataclass(frozen=True)
class ChatRequest:
    """One request as received: the JSON body and the bearer token it carried."""

    body: dict[str, Any]
    token: str | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def json_schema(self) -> dict[str, Any] | None:
        response_format = self.body.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            return None
        return response_format.get("json_schema")

    def text(self) -> str:
        """All message text, for assertions about what the prompt carried."""
        return "\n".join(_message_text(m) for m in self.messages)


Responder = Callable[[ChatRequest], Outcome]


def placeholder_answer(request: ChatRequest) -> Outcome:
    """The default answer: the requested schema filled with neutral values (null where
    allowed, empty lists, false, "", NONE or neutral where an enum has them, else its first
    value), or plain text without a schema."""
    spec = request.json_schema
    if spec is None or not isinstance(spec.get("schema"), dict):
        return RawContent("This is the deskpilot LLM sandbox.")
    schema = spec["schema"]
    return Answer(_placeholder(schema, schema))


def _placeholder(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _placeholder(_resolve(root, schema["$ref"]), root)
    variants = schema.get("anyOf")
    if variants:
        if any(v.get("type") == "null" for v in variants):
            return None
        return _placeholder(variants[0], root)
    if "enum" in schema:
        # Deskpilot's action type: doing nothing; its sentiment: neutral.
        neutral = [value for value in ("NONE", "neutral") if value in schema["enum"]]
        return neutral[0] if neutral else schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _placeholder(value, root) for key, value in properties.items()}
    return {"array": [], "string": "", "number": 0.5, "integer": 1, "boolean": False}.get(str(kind))


# --- fault injection ------------------------------------------------------------------------

FAULT_KINDS = ("429", "500", "timeout", "malformed", "refusal")


@dataclass
class Faults:
    """Fail a share (`rate`) of the calls as a busy or broken provider does, each fault one
    of `kinds`: a 429 with Retry-After, a 500, an answer later than the client waits
    (`timeout_seconds`), JSON cut off mid-object, or a refusal.

    Deterministic: whether a call fails, and how, depends only on the seed, the prompt and
    how many times that prompt was asked before, never on the order in which concurrent
    calls arrive. `injected` counts the faults given, by kind."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_seconds: float = 31.0
    injected: Counter[str] = field(default_factory=Counter)
    _asked: Counter[str] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, not {sorted(unknown)}")

    def outcome(self, request: ChatRequest) -> Outcome | None:
        """The fault for this call, or None to answer normally."""
        prompt = hashlib.sha256(
            json.dumps(request.messages, sort_keys=True, default=str).encode()
        ).hexdigest()
        attempt = self._asked[prompt]
        self._asked[prompt] += 1
        rng = random.Random(f"{self.seed}:{prompt}:{attempt}")
        if rng.random() >= self.rate:
            return None
        kind = rng.choice(self.kinds)
        self.injected[kind] += 1
        match kind:
            case "429":
                return HttpError(429, retry_after=1)
            case "500":
                return HttpError(500)
            case "timeout":
                return Delay(self.timeout_seconds)
            case "malformed":
                return RawContent('{"intent": "other", "proposed_action": "NO')
        return Refusal()


# --- the server -----------------------------------------------------------------------------


@dataclass
class LlmSandbox:
    api_key: str | None = "sk-sandbox"  # None accepts any token, as Ollama does
    default_responder: Responder = placeholder_answer
    script: deque[Outcome] = field(default_factory=deque)
    requests: list[ChatRequest] = field(default_factory=list)
    # Unscripted calls that fail on purpose; None answers every one.
    faults: Faults | None = None

    def push(self, *outcomes: Outcome) -> None:
        self.script.extend(outcomes)

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/v1/chat/completions")
        async def chat_completions(
            body: Annotated[dict[str, Any], Body()], authorization: Auth = None
        ) -> JSONResponse:
            token = _bearer(authorization)
            if self.api_key is not None and token != self.api_key:
                return _error(
                    401,
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    "invalid_api_key",
                )
            request = ChatRequest(body=body, token=token)
            self.requests.append(request)
            if problem := _request_problem(body):
                return _error(400, problem, "invalid_request_error", None)
            return await self._respond(request, self._next(request))

        return router

    def app(self) -> FastAPI:
        app = FastAPI(title="deskpilot LLM sandbox")
        app.include_router(self.router())
        return app

    def _next(self, request: ChatRequest) -> Outcome:
        if self.script:
            return self.script.popleft()
        fault = self.faults.outcome(request) if self.faults is not None else None
        return fault or self.default_responder(request)

    async def _respond(self, request: ChatRequest, outcome: Outcome) -> JSONResponse:
        model = str(request.body.get("model"))
        match outcome:
            case Delay(seconds=seconds, then=then):
                await asyncio.sleep(seconds)
                return await self._respond(request, then or self.default_responder(request))
            case HttpError(status=status, message=message, retry_after=retry_after):
                return _http_error(status, message, retry_after)
            case Answer(content=content):
                problem = _structured_output_problem(request)
                if problem:
                    return _error(400, problem, "invalid_request_error", "invalid_schema")
                return _completion(request, model, json.dumps(content), "stop")
            case RawContent(text=text):
                return _completion(request, model, text, "stop")
            case Refusal(text=text):
                return _completion(request, model, None, "stop", refusal=text)
            case LengthCutOff(content=content, keep=keep):
                full = json.dumps(content)
                return _completion(request, model, full[: int(len(full) * keep)], "length")
            case ContentFiltered():
                return _completion(request, model, None, "content_filter")
        raise TypeError(f"not an outcome: {outcome!r}")


# --- validation -----------------------------------------------------------------------------


def _request_problem(body: dict[str, Any]) -> str | None:
    if not body.get("model"):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    return None


def _structured_output_problem(request: ChatRequest) -> str | None:
    spec = request.json_schema
    if spec is None:
        return "response_format must be json_schema to get a structured answer"
    if spec.get("strict") is not True:
        return "response_format.json_schema.strict must be true"
    if not spec.get("name"):
        return "response_format.json_schema.name is required"
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        return "response_format.json_schema.schema is required"
    problems = strict_schema_problems(schema)
    if problems:
        return f"Invalid schema for response_format '{spec['name']}': {problems[0]}"
    return None


def strict_schema_problems(schema: dict[str, Any]) -> list[str]:
    """Where a schema breaks strict structured-output rules: the root is an object,
    every object forbids additional properties and requires all of its properties,
    and no keyword supplies a default."""
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("the root schema must be an object")
    _check_strict(schema, "#", problems)
    return problems


def _check_strict(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_strict(item, f"{path}/{i}", problems)
        return
    if not isinstance(node, dict):
        return
    if "default" in node:
        problems.append(f"{path}: 'default' is not permitted")
    if node.get("type") == "object" or "properties" in node:
        if node.get("additionalProperties") is not False:
            problems.append(f"{path}: 'additionalProperties' must be false")
        properties = set(node.get("properties") or {})
        missing = properties - set(node.get("required") or [])
        if missing:
            problems.append(
                f"{path}: 'required' must list every property; missing {sorted(missing)}"
            )
    for key, value in node.items():
        if key in ("properties", "$defs"):
            for name, child in (value or {}).items():
                _check_strict(child, f"{path}/{key}/{name}", problems)
        elif key in ("items", "anyOf", "allOf"):
            _check_strict(value, f"{path}/{key}", problems)


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


# --- responses ------------------------------------------------------------------------------


def _completion(
    request: ChatRequest,
    model: str,
    content: str | None,
    finish_reason: str,
    *,
    refusal: str | None = None,
) -> JSONResponse:
    prompt_tokens = estimate_tokens(request.text())
    completion_tokens = estimate_tokens(content or refusal or "")
    return JSONResponse(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def estimate_tokens(text: str) -> int:
    """About four characters a token, as OpenAI's rule of thumb for English."""
    return (len(text) + 3) // 4


_ERROR_TYPES = {429: ("requests", "rate_limit_exceeded"), 500: ("server_error", None)}


def _http_error(status: int, message: str, retry_after: int | None) -> JSONResponse:
    kind, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    default_message = {
        429: "Rate limit reached for requests. Please try again later.",
        500: "The server had an error while processing your request. Sorry about that!",
    }.get(status, f"sandbox error {status}")
    response = _error(status, message or default_message, kind, code)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
