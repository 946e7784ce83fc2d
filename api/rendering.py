"""The web pages' templates, and rendering one for a request."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from models.web_session import SignedIn

CSRF_FIELD = "csrf"

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@pass_context
def _csrf_input(context: Context) -> Markup:
    """`{{ csrf_input() }}` inside a <form method="post">."""
    token = context.get("csrf_token") or ""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


templates.globals["csrf_input"] = _csrf_input


def csrf_token_for(signed_in: SignedIn) -> str:
    """The CSRF token of a session: an HMAC of its secret, never the secret itself."""
    return hmac.new(
        bytes.fromhex(signed_in.csrf_secret), b"deskpilot/csrf/v1", hashlib.sha256
    ).hexdigest()


def render(request: Request, name: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page from api/templates with `user` (SignedIn or None) and `csrf_token` added."""
    session: SignedIn | None = getattr(request.state, "web_session", None)
    values: dict[str, Any] = {
        "request": request,
        "path": request.url.path,
        "user": session,
        "csrf_token": csrf_token_for(session) if session else "",
    }
    values.update(context)
    return HTMLResponse(templates.get_template(name).render(values), status_code=status_code)
