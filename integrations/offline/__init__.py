"""The offline suggester: keyword rules over five languages, the order's state, templates."""

from integrations.offline.rules import PROVIDER, suggest_offline

__all__ = ["PROVIDER", "suggest_offline"]
