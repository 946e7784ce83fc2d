"""A deterministic suggester: keyword rules and templates, no model.

Used when no LLM is configured (and in the demo), and labelled as such. The rules,
the extraction of items and addresses, and the reply templates live in
`integrations/offline/`; this module is the port.
"""

from __future__ import annotations

import asyncio

from integrations.offline import PROVIDER, suggest_offline
from integrations.ports import SuggesterPort
from kernel.values import SuggestionDraft, SuggestionRequest

__all__ = ["PROVIDER", "OfflineSuggester", "suggest_offline"]


class OfflineSuggester(SuggesterPort):
    async def suggest(self, request: SuggestionRequest) -> SuggestionDraft:
        # CPU work: in a thread, so the event loop it shares (API, SMTP, other steps) runs on.
        return await asyncio.to_thread(suggest_offline, request)
