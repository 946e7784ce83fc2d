"""The reason a merchant reads when a step failed: the innermost application error."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError


def failure_reason(err: ActivityError) -> str:
    cause = err.cause
    while cause is not None and not isinstance(cause, ApplicationError) and cause.cause is not None:
        cause = cause.cause
    return str(cause.message if isinstance(cause, ApplicationError) else err)
