"""Suggestions from a language model, and the choice between it and the offline rules."""

from __future__ import annotations

from integrations.offline_suggester import OfflineSuggester
from integrations.ports import SuggesterPort
from kernel.settings import Settings

__all__ = ["suggester_from_settings"]


def suggester_from_settings(settings: Settings) -> SuggesterPort:
    """The LLM when one is configured — a key for OpenAI, or just a base URL for a local
    server such as Ollama or vLLM — and otherwise the offline rules."""
    api_key = settings.openai_api_key.get_secret_value().strip() if settings.openai_api_key else ""
    base_url = (settings.openai_base_url or "").strip()
    if not api_key and not base_url:
        return OfflineSuggester()
    # Imported only when used: the SDK takes over half a second to load.
    from integrations.llm.openai_suggester import OpenAISuggester

    return OpenAISuggester(
        api_key=api_key or None,
        model=settings.openai_model,
        base_url=base_url or None,
        timeout_s=settings.openai_timeout_seconds,
    )
