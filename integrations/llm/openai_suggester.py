"""Suggestions from any OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM).

The SDK never retries (`max_retries=0`): Temporal retries the activity, and only
when `IntegrationError.retryable` says trying again can help. An answer that cannot
be used (refused, cut off, filtered, not valid for the schema) is not retried — the
same prompt would most likely fail the same way — so the message waits for a person.
"""

from __future__ import annotations

import openai
import pydantic
from openai import AsyncOpenAI

from integrations.llm.prompt import build_messages
from integrations.llm.schema import LlmSuggestion, to_draft
from integrations.ports import SuggesterPort
from kernel.errors import IntegrationError
from kernel.values import SuggestionDraft, SuggestionRequest

OPENAI_API = "https://api.openai.com/v1"
# Local servers take no key, but the SDK insists on one.
NO_KEY = "no-key"
# Status codes a later attempt can get past: timeout, conflict (OpenAI uses it for
# transient locks), rate limit, and any server error.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})


class OpenAISuggester(SuggesterPort):
    def __init__(
        self,
        api_key: str | None,
        model: str,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_completion_tokens: int = 1500,
    ) -> None:
        # base_url and api_key are always passed: the SDK would otherwise read them
        # from the environment, behind the settings' back.
        self._client = AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url or OPENAI_API,
            timeout=timeout_s,
            max_retries=0,
        )
        self.model = model
        self.provider = f"openai:{model}"
        self._timeout_s = timeout_s
        self._max_completion_tokens = max_completion_tokens

    async def suggest(self, request: SuggestionRequest) -> SuggestionDraft:
        messages = build_messages(request)
        try:
            completion = await self._client.chat.completions.parse(
                model=self.model,
                messages=messages,
                response_format=LlmSuggestion,
                max_completion_tokens=self._max_completion_tokens,
            )
        except (openai.OpenAIError, pydantic.ValidationError) as exc:
            raise classify_error(exc, provider=self.provider, timeout_s=self._timeout_s) from exc
        except (AttributeError, TypeError) as exc:
            # The SDK does not validate the response's shape (strict validation would also
            # refuse the small deviations of compatible servers), so a 200 that is not a
            # chat completion at all — a base URL that points at a web page — fails inside
            # its parsing. Only the SDK runs in this block.
            raise IntegrationError(
                f"{self.provider}: the server at {self._client.base_url} did not answer "
                f"with a chat completion ({type(exc).__name__}: {exc})",
                retryable=False,
            ) from exc
        if not completion.choices:
            raise IntegrationError(f"{self.provider} answered with no choices", retryable=False)
        message = completion.choices[0].message
        if message.refusal:
            raise IntegrationError(
                f"{self.provider} refused to suggest: {message.refusal}", retryable=False
            )
        if message.parsed is None:
            raise IntegrationError(f"{self.provider} answered with no content", retryable=False)
        usage = completion.usage
        return to_draft(
            message.parsed,
            provider=self.provider,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        await self._client.close()


def classify_error(
    exc: openai.OpenAIError | pydantic.ValidationError, *, provider: str, timeout_s: float
) -> IntegrationError:
    """What a failed call means for the workflow: retry, or wait for a person."""
    if isinstance(exc, openai.APITimeoutError):
        return IntegrationError(f"{provider} did not answer within {timeout_s:g}s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return IntegrationError(f"{provider} could not be reached: {exc}", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in _TRANSIENT_STATUSES or status >= 500
        detail = f"{provider} answered HTTP {status}: {exc.message}"
        if retry_after := exc.response.headers.get("retry-after"):
            detail += f" (Retry-After: {retry_after}s)"
        return IntegrationError(detail, retryable=retryable)
    if isinstance(exc, openai.LengthFinishReasonError):
        used = exc.completion.usage.completion_tokens if exc.completion.usage else "?"
        return IntegrationError(
            f"{provider}'s answer was cut off at its length limit ({used} tokens)", retryable=False
        )
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return IntegrationError(f"{provider}'s content filter stopped the answer", retryable=False)
    if isinstance(exc, pydantic.ValidationError):
        return IntegrationError(f"{provider}: {_invalid_output(exc)}", retryable=False)
    return IntegrationError(f"{provider}: the call failed: {exc}", retryable=False)


def _invalid_output(exc: pydantic.ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return f"the answer is not valid JSON: {errors[0]['msg']}"
    where = "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(root)'}: {error['msg']}"
        for error in errors[:3]
    )
    return f"the answer does not fit the suggestion schema: {where}"
