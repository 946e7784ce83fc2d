"""The one mapping from `kernel.errors` to Temporal, applied to every activity by the worker.

A final error (anything not retryable) becomes a non-retryable ApplicationError whose
type is the error's class name, so the workflow stops retrying at once and the API can
map it back; a retryable one passes through and Temporal retries it with backoff.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from kernel.errors import DeskpilotError


def to_application_error(exc: DeskpilotError) -> ApplicationError:
    return ApplicationError(exc.message, type=type(exc).__name__, non_retryable=not exc.retryable)


class _MapErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except DeskpilotError as exc:
            if exc.retryable:
                raise
            raise to_application_error(exc) from exc


class ErrorMapping(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MapErrors(next)
