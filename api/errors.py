"""One error hierarchy for the API, rendered as JSON by one set of handlers."""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ApiError(Exception):
    status_code = 400
    code = "bad_request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnauthorizedError(ApiError):
    status_code = 401
    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class BadRequestError(ApiError):
    status_code = 400
    code = "bad_request"


class UpstreamError(ApiError):
    """A vendor (Shopify) answered the request we made for the caller with an error."""

    status_code = 502
    code = "shopify_error"


class NotFoundError(ApiError):
    # Also the answer for another merchant's row: its existence is not revealed.
    status_code = 404
    code = "not_found"


class ConflictError(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "too_large"


class MalformedEmailApiError(ApiError):
    status_code = 422
    code = "malformed_email"


class ServiceUnavailableError(ApiError):
    status_code = 503
    code = "unavailable"


def _body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(_body("invalid_request", reasons), status_code=422)
