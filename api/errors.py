"""`kernel.errors` rendered for HTTP, once: JSON `{"error": {"code", "message", ...details}}`
for the API, the HTML error page for the web pages. Routes raise; they never translate."""

from __future__ import annotations

import logging
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException

from api.rendering import render
from kernel.errors import (
    Conflict,
    DeskpilotError,
    Forbidden,
    IntegrationError,
    Invalid,
    LimitReached,
    Malformed,
    NotFound,
    Refused,
    TooLarge,
    Transient,
    Unauthorized,
)

logger = logging.getLogger(__name__)

# Most specific first: the first class the error is an instance of decides.
STATUS: tuple[tuple[type[DeskpilotError], int], ...] = (
    (TooLarge, 413),
    (Malformed, 422),
    (Invalid, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),  # also for another merchant's row: its existence is not revealed
    (Conflict, 409),
    (Refused, 409),
    (LimitReached, 429),
    (IntegrationError, 502),  # a vendor answered the request we made for the caller
    (Transient, 503),
)


class LoginRequired(Unauthorized):
    """A page asked for without a session: the browser is sent to the sign-in form."""

    code = "login_required"

    def __init__(self, next_path: str | None) -> None:
        super().__init__("sign in to see this page")
        self.location = (
            "/login" if next_path is None else f"/login?next={quote(next_path, safe='/')}"
        )


def status_of(exc: DeskpilotError) -> int:
    if isinstance(exc, LoginRequired):
        return 303
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def headers_of(exc: DeskpilotError) -> dict[str, str]:
    if isinstance(exc, LoginRequired):
        return {"Location": exc.location}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, LimitReached) and exc.retry_after is not None:
        return {"Retry-After": str(exc.retry_after)}
    return {}


def _body(
    code: str, message: str, details: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    return {"error": {**(details or {}), "code": code, "message": message}}


def _is_page(request: Request) -> bool:
    """The web pages' routes are left out of the OpenAPI schema; everything else is API."""
    route = request.scope.get("route")
    return route is not None and getattr(route, "include_in_schema", True) is False


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DeskpilotError)
    async def on_error(request: Request, exc: DeskpilotError) -> Response:
        status, headers = status_of(exc), headers_of(exc)
        if _is_page(request) and status != 303:
            response = render(
                request, "error.html", status_code=status, code=exc.code, message=exc.message
            )
            response.headers.update(headers)
            return response
        return JSONResponse(
            _body(exc.code, exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        """FastAPI's and Starlette's own refusals (a body that cannot be parsed, an unknown
        path or method) answer in the same shape as ours, not as {"detail": ...}."""
        phrase = HTTPStatus(exc.status_code).phrase
        code = phrase.lower().replace(" ", "_")
        message = exc.detail if isinstance(exc.detail, str) else phrase
        headers = exc.headers or {}
        if _is_page(request):
            response = render(
                request, "error.html", status_code=exc.status_code, code=code, message=message
            )
            response.headers.update(headers)
            return response
        return JSONResponse(_body(code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(SQLAlchemyTimeoutError)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def on_database_unavailable(request: Request, exc: Exception) -> Response:
        # Every pooled connection busy, or the database unreachable: the same request can
        # pass in a moment, so it is a 503 with Retry-After, never a 500.
        logger.warning("database unavailable: %s", type(exc).__name__)
        busy = Transient("the database is busy or unreachable; try again shortly")
        response = await on_error(request, busy)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(_body("invalid_request", reasons), status_code=422)
