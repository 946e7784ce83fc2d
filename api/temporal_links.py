"""Links to the Temporal Web UI, shared by the thread and playbook pages."""

from __future__ import annotations

from urllib.parse import quote

from kernel.settings import Settings


def temporal_ui_url(settings: Settings, workflow_id: str | None) -> str | None:
    """The workflow in the Temporal Web UI, when its address is known: `deskpilot up`'s
    embedded server serves the UI on loopback; an external cluster's UI is not configured."""
    if not workflow_id or not settings.embedded_temporal:
        return None
    namespace = quote(settings.temporal_namespace, safe="")
    return (
        f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/{namespace}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )
