"""The one mapping from `kernel.errors` to Temporal, applied to every activity by the worker.

A final error (anything not retryable) becomes a non-retryable ApplicationError whose
type is the error's class name, so the workflow stops retrying at once and the API can
map it back; a retryable one passes through and Temporal retries it with backoff. A
KeyError, ValueError or TypeError is final too (type `Invalid`), with its message.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from kernel.errors import DeskpilotError, Invalid

# Data that does not fit the code (a payload without a key, a value of the wrong kind) is
# as wrong on the fortieth attempt as on the first: final, with what was wrong.
_BAD_DATA = (KeyError, ValueError, TypeError)


def to_application_error(exc: DeskpilotError) -> ApplicationError:
    """The details travel as the error's one detail, so the API can answer with them."""
    details = [exc.details] if exc.details else []
    return ApplicationError(
        exc.message, *details, type=type(exc).__name__, non_retryable=not exc.retryable
    )


def bad_data_error(exc: BaseException) -> ApplicationError:
    return ApplicationError(
        f"{type(exc).__name__}: {exc}"[:500], type=Invalid.__name__, non_retryable=True
    )


class _MapErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except DeskpilotError as exc:
            if exc.retryable:
                raise
            raise to_application_error(exc) from exc
        except _BAD_DATA as exc:
            raise bad_data_error(exc) from exc


class ErrorMapping(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MapErrors(next)
